package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// redisFaultEnv is an env on a private redis-server, with a relay slow
// enough (10 ms a message) that a send of 200 readers lasts a few
// seconds, and readers r000…r199 on the test list.
func redisFaultEnv(t *testing.T, aof bool, cfg queue.Config) (*env, *testutil.RedisServer) {
	t.Helper()
	srv := testutil.StartRedis(t, aof)
	client := srv.Client()
	t.Cleanup(func() { client.Close() })
	slow := testutil.FailFunc(func(string, int) *testutil.Fault { f := testutil.Slow(10 * time.Millisecond); return &f })
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 20
	}
	e := newEnv(t, envOpts{noWorker: true, redis: client, smtp: []testutil.SMTPOption{slow}, cfg: cfg})
	for i := range 200 {
		e.addReader(fmt.Sprintf("r%03d@example.jp", i), "", audience.All())
	}
	return e, srv
}

// waitMessages waits until the relay has accepted n messages.
func (e *env) waitMessages(n int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(e.smtp.Messages()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("only %d of %d messages after %v", len(e.smtp.Messages()), n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkOnce checks that each of the readers got the issue, at most bound
// of them twice, and returns the number of duplicates.
func (e *env) checkOnce(addrs []string, bound int) int {
	e.t.Helper()
	dups := 0
	for _, a := range addrs {
		n := len(e.smtp.MessagesTo(a))
		if n == 0 {
			e.t.Errorf("%s lost: no message", a)
		}
		dups += max(n-1, 0)
	}
	if dups > bound {
		e.t.Errorf("%d duplicates, more than the %d copies that can be in flight", dups, bound)
	}
	return dups
}

func readerAddrs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d@example.jp", prefix, i)
	}
	return out
}

// Redis crashes mid-send and comes back with its append-only file: the
// send finishes by itself, every reader gets one copy (a few more at most,
// for the copies in flight when Redis lost its last second of writes).
func TestRedisRestartedWithItsDataSendFinishes(t *testing.T) {
	e, srv := redisFaultEnv(t, true, queue.Config{ReconcileInterval: 3 * time.Second})
	is := loadIssue(t, "aisi-monthly-2025-11.txt")
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	e.waitMessages(60, 30*time.Second)
	srv.Crash()
	time.Sleep(time.Second)
	srv.Restart()
	t.Logf("Redis restarted with its data after %d messages", len(e.smtp.Messages()))
	done := e.waitState(snd.ID, queue.Done, 90*time.Second)
	if done.Counts.Sent != 200 {
		t.Errorf("counts %+v, want 200 sent", done.Counts)
	}
	dups := e.checkOnce(readerAddrs("r", 200), e.concurrency*(mailer.MaxInFlight+1))
	t.Logf("%d duplicates", dups)
}

// Redis is replaced by an empty server mid-send: the worker notices that
// the send's tasks are gone and re-creates them from the store; the send
// finishes with every reader served once (the running batches, whose
// runs live on, are not sent again). A send scheduled for later and the
// monthly schedule survive too.
func TestRedisReplacedByAnEmptyOneSendFinishes(t *testing.T) {
	e, srv := redisFaultEnv(t, false, queue.Config{ReconcileInterval: 3 * time.Second})
	is := loadIssue(t, "aisi-monthly-2025-11.txt")
	for _, l := range []string{"later", "monthly-rule"} {
		if _, err := e.store.CreateList(e.ctx, l, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range readerAddrs("l", 5) {
		p := audience.All()
		if _, err := e.store.Add(e.ctx, subscribers.NewSubscriber{Email: a, Prefs: &p, Lists: []string{"later"},
			Method: subscribers.API, Cause: "test",
			Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, FormVersion: "test", Text: "同意します"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	later, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: "later", At: time.Now().Add(8 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int32
	sch := queue.Schedule{Spec: "@every 1s", List: "monthly-rule",
		Load: func(context.Context, string) (*compose.Issue, error) { ticks.Add(1); return is, nil }}
	go e.svc.RunScheduler(e.ctx, sch)
	e.startWorker()
	e.waitMessages(60, 30*time.Second)
	srv.Replace()
	replaced := time.Now()
	ticks.Store(0)
	t.Logf("Redis replaced by an empty one after %d messages", len(e.smtp.Messages()))

	done := e.waitState(snd.ID, queue.Done, 60*time.Second)
	t.Logf("send done %v after the replacement", time.Since(replaced).Round(time.Millisecond))
	if done.Counts.Sent != 200 {
		t.Errorf("counts %+v, want 200 sent", done.Counts)
	}
	if dups := e.checkOnce(readerAddrs("r", 200), 0); dups > 0 {
		t.Errorf("%d duplicates", dups)
	}
	e.waitState(later.ID, queue.Done, 30*time.Second)
	e.checkOnce(readerAddrs("l", 5), 0)
	if n := ticks.Load(); n == 0 {
		t.Errorf("the monthly schedule did not tick after Redis was replaced")
	}
}

// Requeue re-creates from the store what Redis lost, with the tasks'
// own TaskIDs: once only, and nothing that Redis still holds.
func TestRequeueRecreatesWhatRedisLost(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true, cfg: queue.Config{BatchSize: 2}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for _, a := range readerAddrs("q", 5) {
			e.addReader(a, "", audience.All())
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		// Another issue: one send of an issue per list.
		later, err := e.svc.Create(e.ctx, queue.NewSend{Issue: loadIssue(t, "aisi-monthly-2025-07.txt"), List: testList,
			At: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// Nothing is missing yet.
		if r, err := e.svc.Requeue(e.ctx, snd.ID); err != nil || r.Any() {
			t.Fatalf("requeue with every task in Redis: %+v, %v", r, err)
		}
		if _, err := e.svc.Plan(e.ctx, snd.ID); err != nil {
			t.Fatal(err)
		}
		if r, err := e.svc.Requeue(e.ctx, snd.ID); err != nil || r.Any() {
			t.Fatalf("requeue of a planned send with its batches in Redis: %+v, %v", r, err)
		}
		if err := e.rdb.FlushDB(e.ctx).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := e.svc.Requeue(e.ctx, snd.ID)
		if err != nil || r != (queue.Requeued{Batches: 3}) {
			t.Fatalf("requeue after Redis lost everything: %+v, %v; want 3 batches", r, err)
		}
		r, err = e.svc.Requeue(e.ctx, later.ID)
		if err != nil || r != (queue.Requeued{Plan: true}) {
			t.Fatalf("requeue of the scheduled send: %+v, %v; want its planning", r, err)
		}
		if r, err := e.svc.Requeue(e.ctx, snd.ID); err != nil || r.Any() {
			t.Fatalf("second requeue: %+v, %v; want nothing", r, err)
		}
		insp := asynq.NewInspectorFromRedisClient(e.rdb)
		info, err := insp.GetQueueInfo(queue.QueueNewsletter)
		if err != nil {
			t.Fatal(err)
		}
		if info.Pending != 3 || info.Scheduled != 1 {
			t.Errorf("%d pending and %d scheduled tasks, want 3 batches and the later send's planning", info.Pending, info.Scheduled)
		}
		e.startWorker()
		e.waitState(snd.ID, queue.Done, 20*time.Second)
		e.checkOnce(readerAddrs("q", 5), 0)
		if _, err := e.svc.Requeue(e.ctx, snd.ID); err == nil {
			t.Error("requeue of a finished send: no error")
		}
	})
}

// A monthly tick lost (its task gone with Redis, or no process running
// at the time) is caught up when a process takes the scheduler lease,
// within the schedule's NotAfter: the month's send is created from the
// store's view (none exists), once.
func TestMonthlyTickLostIsCaughtUp(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		tick := time.Now().UTC().Add(-2 * time.Minute)
		sch := queue.Schedule{Spec: fmt.Sprintf("%d %d * * *", tick.Minute(), tick.Hour()), Location: time.UTC, List: testList,
			Load: func(context.Context, string) (*compose.Issue, error) { return is, nil }}
		for range 2 { // two `tayori run`s
			go e.svc.RunScheduler(e.ctx, sch)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			sends, err := e.svc.List(e.ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(sends) == 1 {
				e.waitState(sends[0].ID, queue.Done, 20*time.Second)
				break
			}
			if len(sends) > 1 || time.Now().After(deadline) {
				t.Fatalf("%d sends %v after the lost tick of %s, want 1", len(sends), sends, tick.Format(time.TimeOnly))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		if sends, _ := e.svc.List(e.ctx, 10); len(sends) != 1 {
			t.Errorf("%d sends, want the one caught up", len(sends))
		}
		if n := len(e.smtp.MessagesTo("a@example.jp")); n != 1 {
			t.Errorf("%d copies, want 1", n)
		}
	})
}
