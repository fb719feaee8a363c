package queue

import (
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// The watchdog on a real SQLite file and Redis: a batch whose lease
// lapsed is enqueued again once, under a TaskID of its own; while that
// task waits in Redis, later rounds add none; if Redis loses it, the next
// round enqueues it again; a lapsed batch with nothing left to send is
// marked done instead.
func TestWatchdogReclaimsLapsedBatchesOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, db, now, mustExec, s, _ := recordFixture(t, e)
		rdb := TestRedis(t)
		s.rdb, s.client = rdb, asynq.NewClientFromRedisClient(rdb)
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		s.cfg = Config{From: "a@example.jp", BaseURL: "https://example.jp"}
		if err := s.cfg.fill(); err != nil {
			t.Fatal(err)
		}
		// Run a claimed batch 0 (readers 10–14) and died: its lease lapsed.
		if _, _, err := s.claim(ctx, &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}, "run-a"); err != nil {
			t.Fatal(err)
		}
		lapse := func() {
			t.Helper()
			mustExec(`UPDATE batch_claims SET lease_until = ? WHERE send_id = 1 AND lease_until > 0`, now-1)
		}
		lapse()
		insp := asynq.NewInspectorFromRedisClient(rdb)
		pending := func() []string {
			t.Helper()
			tasks, err := insp.ListPendingTasks(QueueNewsletter)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ti := range tasks {
				ids = append(ids, ti.ID)
			}
			return ids
		}
		if n, err := s.reclaimLapsed(ctx); err != nil || n != 1 {
			t.Fatalf("first round: %d reclaimed, %v; want 1", n, err)
		}
		want := BatchTaskID(1, "u1", 0) + "~run-a"
		if ids := pending(); len(ids) != 1 || ids[0] != want {
			t.Fatalf("pending tasks %v, want [%s]", ids, want)
		}
		if n, err := s.reclaimLapsed(ctx); err != nil || n != 0 {
			t.Errorf("second round: %d reclaimed, %v; want none (the batch waits for its task)", n, err)
		}
		// The pickup wait lapses with the task still waiting: no second task.
		lapse()
		if n, err := s.reclaimLapsed(ctx); err != nil || n != 0 || len(pending()) != 1 {
			t.Errorf("pickup wait over, task waiting: %d reclaimed (%v), %d pending; want 0 and 1", n, err, len(pending()))
		}
		var until int64
		db.QueryRowContext(ctx, `SELECT lease_until FROM batch_claims WHERE send_id = 1 AND batch = 0`).Scan(&until)
		if until < time.Now().Add(pickupGrace/2).UnixMilli() {
			t.Errorf("pickup wait not extended: lease until %d", until)
		}
		// Redis lost the task: enqueued again, under the same TaskID.
		rdb.FlushDB(ctx)
		lapse()
		if n, err := s.reclaimLapsed(ctx); err != nil || n != 1 {
			t.Errorf("task lost: %d reclaimed, %v; want 1", n, err)
		}
		// Any run may claim a batch waiting for its new task.
		if _, _, err := s.claim(ctx, &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}, "run-b"); err != nil {
			t.Errorf("claim of a reclaimed batch: %v", err)
		}

		// Batch 1 (reader 15): its run recorded everything, then died.
		if _, _, err := s.claim(ctx, &BatchPayload{SendID: 1, Batch: 1, IDs: []int64{15}}, "run-c"); err != nil {
			t.Fatal(err)
		}
		mustExec(`UPDATE deliveries SET status = 'sent' WHERE send_id = 1 AND subscriber_id = 15`)
		mustExec(`UPDATE batch_claims SET lease_until = ? WHERE send_id = 1 AND batch = 1`, now-1)
		if n, err := s.reclaimLapsed(ctx); err != nil || n != 1 {
			t.Errorf("finished batch: %d reclaimed, %v", n, err)
		}
		var done bool
		db.QueryRowContext(ctx, `SELECT done FROM batch_claims WHERE send_id = 1 AND batch = 1`).Scan(&done)
		if !done {
			t.Error("a lapsed batch with nothing open is not marked done")
		}
	})
}

// A send's planning has a lease too: a second run does not plan while
// the first holds it, a run that lost it records no more pages, and a
// planning whose run died is enqueued again once.
func TestPlanningLease(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, _, now, mustExec, s, _ := recordFixture(t, e)
		rdb := TestRedis(t)
		s.rdb, s.client = rdb, asynq.NewClientFromRedisClient(rdb)
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		s.cfg = Config{From: "a@example.jp", BaseURL: "https://example.jp"}
		if err := s.cfg.fill(); err != nil {
			t.Fatal(err)
		}
		mustExec(`UPDATE sends SET state = 'planning' WHERE id = 1`)
		if _, err := s.claimPlan(ctx, 1, "plan-a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.claimPlan(ctx, 1, "plan-b"); !errors.Is(err, errBusy) {
			t.Fatalf("second planner under a live lease: %v, want errBusy", err)
		}
		page := func(claim string) error {
			t.Helper()
			_, err := s.ledger.InsertDeliveries(ctx, PlanPage{SendID: 1, BatchSize: 200, Now: now, PlanClaim: claim})
			return err
		}
		if err := page("plan-a"); err != nil {
			t.Errorf("a page by the holder: %v", err)
		}
		if err := page("plan-b"); !errors.Is(err, errLeaseLost) {
			t.Errorf("a page by a run without the claim: %v, want errLeaseLost", err)
		}
		// plan-a's worker died.
		mustExec(`UPDATE sends SET plan_lease_until = ? WHERE id = 1`, now-1)
		if n, err := s.reclaimLapsedPlans(ctx); err != nil || n != 1 {
			t.Fatalf("reclaim: %d, %v; want 1", n, err)
		}
		tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(QueueNewsletter)
		if err != nil || len(tasks) != 1 || tasks[0].ID != "plan:1.u1~plan-a" {
			t.Fatalf("pending %v (%v), want the planning under plan:1.u1~plan-a", tasks, err)
		}
		if n, err := s.reclaimLapsedPlans(ctx); err != nil || n != 0 {
			t.Errorf("second round: %d, %v; want none", n, err)
		}
		if err := page("plan-a"); !errors.Is(err, errLeaseLost) {
			t.Errorf("a page by the dead run after the takeover: %v, want errLeaseLost", err)
		}
		if _, err := s.claimPlan(ctx, 1, "plan-c"); err != nil {
			t.Errorf("the new run's claim: %v", err)
		}
	})
}

// Issue 18, disk full (seen in the chaos suite): while the store refused
// writes, no run could renew its lease, so the live runs' leases lapsed
// too. The watchdog must not take their batches over the moment the store
// takes writes again: the live runs still hold outcomes of copies the
// relay accepted, which a takeover would refuse (the claim changed) and
// send again. After a failed write it waits one lease period, then takes
// over what is still lapsed.
func TestWatchdogWaitsOutStoreTrouble(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, db, now, mustExec, s, _ := recordFixture(t, e)
		rdb := TestRedis(t)
		s.rdb, s.client = rdb, asynq.NewClientFromRedisClient(rdb)
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		s.cfg = Config{From: "a@example.jp", BaseURL: "https://example.jp", LeaseTTL: 6 * time.Second,
			Now: func() time.Time { return time.Unix(0, clock.Load()) }}
		if err := s.cfg.fill(); err != nil {
			t.Fatal(err)
		}
		s.trouble = &storeTrouble{now: s.cfg.Now}
		if _, _, err := s.claim(ctx, &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}, "run-a"); err != nil {
			t.Fatal(err)
		}
		mustExec(`UPDATE batch_claims SET lease_until = ? WHERE send_id = 1 AND lease_until > 0`, now-1)
		claimNow := func() string {
			t.Helper()
			var c string
			if err := db.QueryRowContext(ctx, `SELECT claim FROM batch_claims WHERE send_id = 1 AND batch = 0`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		// A renewal failed a moment ago (the disk was full).
		s.trouble.note()
		s.watchdogRound(ctx)
		if c := claimNow(); c != "run-a" {
			t.Fatalf("taken over right after a failed write: claim %q, want run-a kept", c)
		}
		clock.Add(int64(5 * time.Second))
		s.watchdogRound(ctx)
		if c := claimNow(); c != "run-a" {
			t.Fatalf("taken over within the lease period after a failed write: claim %q", c)
		}
		// A lease period after the last failure, a batch still lapsed is
		// one whose run is gone: taken over.
		clock.Add(int64(2 * time.Second))
		s.watchdogRound(ctx)
		if c := claimNow(); c == "run-a" {
			t.Fatalf("still not taken over a lease period after the trouble")
		}
	})
}
