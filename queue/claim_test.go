package queue

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// testDB is a test's database: queries are written with ? and rebound
// for the engine.
type testDB struct {
	*sql.DB
	engine string
}

func (d testDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, Rebind(d.engine, q), args...)
}

func (d testDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, Rebind(d.engine, q), args...)
}

func (d testDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, Rebind(d.engine, q), args...)
}

// migratedDB is a fresh SQLite database with the schema, and its ledger.
func migratedDB(tb testing.TB) (Ledger, testDB) {
	tb.Helper()
	return openEngine(tb, TestEngines[0])
}

func openEngine(tb testing.TB, e TestEngine) (Ledger, testDB) {
	tb.Helper()
	if len(TestEngines) == 0 {
		tb.Fatal("no test engines (engines_test.go sets them)")
	}
	l, db := e.Open(tb)
	return l, testDB{DB: db, engine: e.Name}
}

// forEachEngine runs test once per engine, as subtests.
func forEachEngine(t *testing.T, test func(t *testing.T, e TestEngine)) {
	for _, e := range TestEngines {
		t.Run(e.Name, func(t *testing.T) { test(t, e) })
	}
}

// recordFixture is a send (id 1) with deliveries for readers 10–14 in
// batch 0 and 15 in batch 1, a Service on it, and flush, which commits
// outcomes as one group.
func recordFixture(t *testing.T, e TestEngine) (ctx context.Context, db testDB, now int64, mustExec func(string, ...any), s *Service, flush func(...outcome)) {
	ctx = context.Background()
	var ledger Ledger
	ledger, db = openEngine(t, e)
	now = time.Now().UnixMilli()
	mustExec = func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at)
		VALUES (1, 'u1', 'x', '{}', 'monthly', 'sending', ?, ?, ?)`, now, now, now)
	for id := 10; id < 15; id++ {
		mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at) VALUES (1, ?, 0, 'v', ?)`, id, now)
	}
	mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at) VALUES (1, 15, 1, 'v', ?)`, now)
	// Rows inserted here, not by planning, are counted here.
	mustExec(`UPDATE send_counts SET planned = 6, queued = 6 WHERE send_id = 1`)
	s = &Service{ledger: ledger, cfg: Config{Now: time.Now}}
	rec := newRecorder(ledger, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { rec.close() })
	flush = func(os ...outcome) {
		t.Helper()
		if err := rec.flushOnce(os); err != nil {
			t.Fatal(err)
		}
	}
	return
}

// The claim/record protocol on a real SQLite file: a run records outcomes
// only under its batch's current claim and only for unfinished rows; a
// reply survives the JSON round trip byte for byte (invalid UTF-8 becomes
// U+FFFD); attempts count recorded tries.
func TestClaimAndRecord(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, db, _, mustExec, s, flush := recordFixture(t, e)
		row := func(id int64) (status, reply string, attempts int) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT status, reply, attempts FROM delivery_state WHERE send_id = 1 AND subscriber_id = ?`, id).
				Scan(&status, &reply, &attempts); err != nil {
				t.Fatal(err)
			}
			return
		}

		p := &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}
		s.cfg.LeaseTTL = time.Minute
		a, until, err := s.claim(ctx, p, "run-a")
		if err != nil || len(a) != 5 || until < time.Now().Add(50*time.Second).UnixMilli() {
			t.Fatalf("claim by run a: %v, lease until %d, %v", a, until, err)
		}
		// While run a's lease lives, no other run claims the batch.
		if b, _, err := s.claim(ctx, p, "run-b"); !errors.Is(err, errBusy) || b != nil {
			t.Fatalf("claim by run b under run a's live lease: %v, %v; want errBusy", b, err)
		}
		flush(outcome{SendID: 1, SubscriberID: 10, Claim: "run-a", Status: "sent", Reply: "250 2.0.0 \"ok\" \\ 受付 \xff\n"},
			outcome{SendID: 1, SubscriberID: 11, Claim: "run-a", Status: "retry", Reply: "451 later"})
		if st, reply, n := row(10); st != "sent" || reply != "250 2.0.0 \"ok\" \\ 受付 \uFFFD\n" || n != 1 {
			t.Errorf("row 10 = %s %q %d", st, reply, n)
		}

		// Run a's lease lapses (its process died) and run b takes the batch
		// over: it gets the unfinished rows, and run a's later outcomes no
		// longer count.
		mustExec(`UPDATE batch_claims SET lease_until = ? WHERE send_id = 1 AND batch = 0`, time.Now().Add(-time.Second).UnixMilli())
		b, _, err := s.claim(ctx, p, "run-b")
		if err != nil || len(b) != 4 || b[0].SubscriberID != 11 || b[0].Attempts != 1 {
			t.Fatalf("claim by run b: %+v, %v", b, err)
		}
		flush(outcome{SendID: 1, SubscriberID: 12, Claim: "run-a", Status: "sent", Reply: "250 stale"},
			outcome{SendID: 1, SubscriberID: 11, Claim: "run-b", Status: "sent", Reply: "250 b"},
			outcome{SendID: 1, SubscriberID: 10, Claim: "run-b", Status: "failed", Permanent: true, Reply: "550 again"})
		if st, _, _ := row(12); st != "queued" {
			t.Errorf("row 12 after a stale run's outcome = %s, want queued", st)
		}
		if st, reply, n := row(11); st != "sent" || reply != "250 b" || n != 2 {
			t.Errorf("row 11 = %s %q %d, want sent by run b after 2 attempts", st, reply, n)
		}
		if st, _, n := row(10); st != "sent" || n != 1 {
			t.Errorf("row 10 = %s after %d, want a finished row left alone", st, n)
		}
		// A copy in flight when the editor cancelled is recorded as what it was.
		mustExec(`UPDATE deliveries SET status = 'cancelled' WHERE send_id = 1 AND subscriber_id IN (13, 14)`)
		flush(outcome{SendID: 1, SubscriberID: 13, Claim: "run-b", Status: "sent", Reply: "250 in flight"})
		if st, _, _ := row(13); st != "sent" {
			t.Errorf("row 13, sent while the send was cancelled = %s", st)
		}
		if st, _, _ := row(14); st != "cancelled" {
			t.Errorf("row 14 = %s, want cancelled", st)
		}
		// Another batch's rows are neither claimed nor recorded by this one.
		if st, _, _ := row(15); st != "queued" {
			t.Errorf("row 15 of batch 1 = %s", st)
		}
		flush(outcome{SendID: 1, SubscriberID: 15, Claim: "run-b", Status: "sent"})
		if st, _, _ := row(15); st != "queued" {
			t.Errorf("row 15 recorded without its batch's claim: %s", st)
		}
		checkKept(t, s.ledger, 1)
	})
}

// A batch is done only under its current claim and with no open
// delivery, and the send is done once every batch is.
func TestBatchDone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx := context.Background()
		ledger, db := openEngine(t, e)
		mustExec := func(q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UnixMilli()
		mustExec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, plan_done, batches)
		VALUES (1, 'u1', 'x', '{}', 'monthly', 'sending', ?, ?, ?, 1, 3)`, now, now, now)
		for id, st := range map[int]string{1: "sent", 2: "sent", 3: "sent", 4: "queued", 5: "skipped", 6: "failed"} {
			mustExec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, updated_at) VALUES (1, ?, ?, 'v', ?, ?)`,
				id, (id-1)/2, st, now)
		}
		// Batches 0 and 2 have no open delivery: done.
		mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at, done) VALUES (1, 0, '', 0, 1), (1, 1, 'old', ?, 0), (1, 2, '', 0, 1)`, now)
		state := func() (string, int) {
			t.Helper()
			var st string
			var done int
			if err := db.QueryRowContext(ctx, `SELECT state, (SELECT count(*) FROM batch_claims WHERE send_id = 1 AND done = 1)
			FROM sends WHERE id = 1`).Scan(&st, &done); err != nil {
				t.Fatal(err)
			}
			return st, done
		}
		s := &Service{ledger: ledger, cfg: Config{Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := s.maybeFinish(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if st, _ := state(); st != "sending" {
			t.Fatalf("send is %s with a batch open, want sending", st)
		}
		b1 := &BatchPayload{SendID: 1, Batch: 1, IDs: []int64{3, 4}}
		if err := s.finishBatch(ctx, b1, "old", false); err != nil {
			t.Fatal(err)
		}
		if _, done := state(); done != 2 {
			t.Fatal("a batch with a queued delivery counted as done")
		}
		mustExec(`UPDATE batch_claims SET claim = 'new' WHERE send_id = 1 AND batch = 1`)
		mustExec(`UPDATE deliveries SET status = 'sent' WHERE send_id = 1 AND subscriber_id = 4`)
		if err := s.finishBatch(ctx, b1, "old", false); err != nil {
			t.Fatal(err)
		}
		if _, done := state(); done != 2 {
			t.Fatal("a stale run marked the batch done")
		}
		if err := s.finishBatch(ctx, b1, "new", false); err != nil {
			t.Fatal(err)
		}
		if _, done := state(); done != 3 {
			t.Fatalf("after the current run %d batches done, want 3", done)
		}
		if err := s.maybeFinish(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if st, _ := state(); st != "done" {
			t.Fatalf("send is %s, want done", st)
		}
	})
}

// First copies that were sent go to batch_sent (migration 0007), not to
// their rows: delivery_state, the claim, the counts, the batch's end, a
// cancel racing copies in flight and the history all read them, a stale
// run cannot add any.
func TestFirstCopiesInBatchSent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, db, now, mustExec, s, flush := recordFixture(t, e)
		mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (1, 0, '', 0), (1, 1, '', 0)`)
		sent := func(id int64, claim, reply string) outcome {
			return outcome{SendID: 1, SubscriberID: id, Batch: 0, Claim: claim, Status: "sent", Reply: reply, First: true}
		}
		type state struct {
			raw, status, reply string
			attempts           int
		}
		get := func(id int64) (st state) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT d.status, s.status, s.reply, s.Attempts FROM deliveries d
				JOIN delivery_state s USING (send_id, subscriber_id) WHERE send_id = 1 AND subscriber_id = ?`, id).
				Scan(&st.raw, &st.status, &st.reply, &st.attempts); err != nil {
				t.Fatal(err)
			}
			return st
		}
		counts := func(want Counts) {
			t.Helper()
			if c := checkKept(t, s.ledger, 1); c != want {
				t.Errorf("counts %+v, want %+v", c, want)
			}
		}
		batchDone := func() (done bool) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT done FROM batch_claims WHERE send_id = 1 AND batch = 0`).Scan(&done); err != nil {
				t.Fatal(err)
			}
			return done
		}
		p := &BatchPayload{SendID: 1, Batch: 0, IDs: []int64{10, 11, 12, 13, 14}}

		if a, _, err := s.claim(ctx, p, "run-a"); err != nil || len(a) != 5 {
			t.Fatalf("claim by run a: %v, %v", a, err)
		}
		// Two first copies sent and one retry in one group: one transaction,
		// one batch_sent row, the retry in its row.
		flush(sent(10, "run-a", "250 2.0.0 Ok: queued as 受付A \xff"),
			outcome{SendID: 1, SubscriberID: 11, Batch: 0, Claim: "run-a", Status: "retry", Reply: "451 later", First: true},
			sent(12, "run-a", "250 ok 12"))
		if st := get(10); st != (state{"queued", "sent", "250 2.0.0 Ok: queued as 受付A \uFFFD", 1}) {
			t.Errorf("reader 10: %+v", st)
		}
		if st := get(11); st != (state{"retry", "retry", "451 later", 1}) {
			t.Errorf("reader 11: %+v", st)
		}
		var rows, n int
		if err := db.QueryRowContext(ctx, `SELECT count(*), sum(n) FROM batch_sent`).Scan(&rows, &n); err != nil || rows != 1 || n != 2 {
			t.Errorf("batch_sent: %d rows holding %d copies (%v), want 1 holding 2", rows, n, err)
		}
		counts(Counts{Planned: 6, Sent: 2, Retrying: 1, Queued: 3})

		// Run b takes over (run a's lease, of LeaseTTL 0, has lapsed): the
		// copies in batch_sent are done, and run a can add no more.
		b, _, err := s.claim(ctx, p, "run-b")
		if err != nil || len(b) != 3 || b[0].SubscriberID != 11 || b[0].Attempts != 1 || b[1].SubscriberID != 13 || b[2].SubscriberID != 14 {
			t.Fatalf("claim by run b: %+v, %v", b, err)
		}
		flush(sent(13, "run-a", "250 stale"))
		if st := get(13); st.status != "queued" {
			t.Errorf("reader 13 after a stale run's copy: %+v", st)
		}
		flush(sent(13, "run-b", "250 ok 13"),
			outcome{SendID: 1, SubscriberID: 11, Batch: 0, Claim: "run-b", Status: "sent", Reply: "250 ok 11"})
		if st := get(11); st != (state{"sent", "sent", "250 ok 11", 2}) {
			t.Errorf("reader 11, sent on its second attempt: %+v", st)
		}
		if err := s.finishBatch(ctx, p, "run-b", false); err != nil || batchDone() {
			t.Errorf("batch done with reader 14 open (%v)", err)
		}
		counts(Counts{Planned: 6, Sent: 4, Queued: 2})

		// A cancel leaves the sent copies' rows alone; a copy in flight then
		// is sent, and counted once.
		if ok, err := s.ledger.Cancel(ctx, 1, "test", time.UnixMilli(now)); err != nil || !ok {
			t.Fatalf("cancel: %v, %v", ok, err)
		}
		for id, want := range map[int64]string{10: "queued", 12: "queued", 13: "queued", 14: "cancelled", 15: "cancelled"} {
			if st := get(id); st.raw != want {
				t.Errorf("reader %d's row after the cancel: %s, want %s", id, st.raw, want)
			}
		}
		counts(Counts{Planned: 6, Sent: 4, Cancelled: 2})
		flush(sent(14, "run-b", "250 ok 14"))
		if st := get(14); st != (state{"cancelled", "sent", "250 ok 14", 1}) {
			t.Errorf("reader 14, in flight during the cancel: %+v", st)
		}
		counts(Counts{Planned: 6, Sent: 5, Cancelled: 1})
		// A run that gave every claimed row a final outcome marks the batch
		// done without reading its rows, but only under the current claim.
		if err := s.finishBatch(ctx, p, "run-a", true); err != nil || batchDone() {
			t.Errorf("batch done by a stale run (%v)", err)
		}
		if err := s.finishBatch(ctx, p, "run-b", false); err != nil || !batchDone() {
			t.Errorf("batch not done with every copy sent (%v)", err)
		}
		if h, err := DeliveryHistory(ctx, s.ledger, 12); err != nil || len(h) != 1 || h[0].Status != "sent" || h[0].Attempts != 1 {
			t.Errorf("history of reader 12: %+v, %v", h, err)
		}
		o := NewOutcomes(s.ledger)
		if a, err := o.LastAttempts(ctx, 13, 5); err != nil || len(a) != 1 || !a[0].Sent || a[0].Reply != "250 ok 13" {
			t.Errorf("last attempts of reader 13: %+v, %v", a, err)
		}
		if n, err := o.SentBetween(ctx, time.UnixMilli(now-1000), time.Now().Add(time.Minute)); err != nil || n != 5 {
			t.Errorf("sent between: %d, %v, want 5", n, err)
		}
	})
}

// A group commit that fails is not dropped: the recorder stalls (ready
// blocks, so batch runs send nothing more), keeps the outcomes and writes
// them once it can. Only a recorder closing while stalled gives them up,
// after its grace period: counted, and waiting on them returns the error.
func TestRecorderKeepsOutcomesItCannotCommit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e TestEngine) {
		ctx, db, _, mustExec, s, _ := recordFixture(t, e)
		// Commits of copies fail, as on a full disk, until the trigger goes.
		fill := func() {
			t.Helper()
			if e.Name == "postgres" {
				mustExec(`CREATE OR REPLACE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$
					BEGIN RAISE EXCEPTION 'could not extend file: No space left on device (disk full)' USING ERRCODE = 'disk_full'; END $$`)
				mustExec(`CREATE TRIGGER full_disk BEFORE INSERT ON batch_sent FOR EACH ROW EXECUTE FUNCTION full_disk()`)
				return
			}
			mustExec(`CREATE TRIGGER full_disk BEFORE INSERT ON batch_sent BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
		}
		empty := func() {
			t.Helper()
			if e.Name == "postgres" {
				mustExec(`DROP TRIGGER full_disk ON batch_sent`)
				return
			}
			mustExec(`DROP TRIGGER full_disk`)
		}
		mustExec(`INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (1, 0, 'c', 0)`)
		fill()
		// PostgreSQL's disk_full is the domain's ErrStoreFull (SQLite's is
		// checked on a real full disk, diskfull_test.go).
		err := s.ledger.Record(ctx, []outcome{{SendID: 1, SubscriberID: 10, Claim: "c", Status: "sent", First: true}}, time.Now())
		if err == nil || e.Name == "postgres" && !errors.Is(err, ErrStoreFull) {
			t.Fatalf("record on a full store: %v, want ErrStoreFull", err)
		}
		rec := newRecorder(s.ledger, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer rec.close()
		if err := rec.ready(ctx); err != nil {
			t.Fatalf("ready before any commit: %v", err)
		}
		sent := func(id int64) outcome {
			return outcome{SendID: 1, SubscriberID: id, Batch: 0, Claim: "c", Status: "sent", Reply: "250 ok", First: true}
		}
		tk := rec.add(sent(10))
		short := func() context.Context {
			c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			t.Cleanup(cancel)
			return c
		}
		if err := rec.wait(short(), tk); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("wait on an outcome that cannot be committed: %v, want it to go on waiting", err)
		}
		if err := rec.ready(short()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ready while outcomes wait: %v, want it to block", err)
		}
		tk = rec.add(sent(11)) // answered meanwhile (a copy in flight)
		empty()
		if err := rec.wait(ctx, tk); err != nil {
			t.Errorf("wait once there is room: %v", err)
		}
		if err := rec.ready(short()); err != nil {
			t.Errorf("ready after the commit: %v", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sent_copies WHERE send_id = 1`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d copies recorded (%v), want 2", n, err)
		}
		if n := rec.failures(); n != 0 {
			t.Errorf("%d groups given up, want none", n)
		}

		// Closing while stalled: the outcomes are given up after the grace.
		fill()
		rec.grace = 50 * time.Millisecond
		tk = rec.add(sent(12))
		for !rec.stalled.Load() {
			time.Sleep(time.Millisecond)
		}
		if err := rec.close(); err == nil || !strings.Contains(err.Error(), "full") {
			t.Errorf("close: %v, want the commit's error", err)
		}
		if err := rec.wait(ctx, tk); err == nil {
			t.Error("wait on an outcome given up: no error")
		}
		if n := rec.failures(); n != 1 {
			t.Errorf("%d groups given up, want 1", n)
		}
	})
}

// checkKept compares a send's kept counts with a full recount.
func checkKept(t *testing.T, l Ledger, id int64) Counts {
	t.Helper()
	kept, live, err := l.Recount(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if kept != live {
		t.Errorf("send %d: kept counts %+v, recount %+v", id, kept, live)
	}
	return live
}
