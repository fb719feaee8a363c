package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

func TestMonthlyScheduleOneSchedulerOneSendPerMonth(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			slugs []string
		)
		sch := queue.Schedule{
			Spec: "@every 1s", Location: tokyo, List: testList,
			Load: func(_ context.Context, slug string) (*compose.Issue, error) {
				mu.Lock()
				slugs = append(slugs, slug)
				mu.Unlock()
				return is, nil
			},
		}
		// Two `tayori run`s: both try to schedule; one lease lets one tick.
		ctx, cancel := context.WithCancel(e.ctx)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); e.svc.RunScheduler(ctx, sch) }()
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			mu.Lock()
			n := len(slugs)
			mu.Unlock()
			if n >= 3 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// asynq writes scheduler entries on its heartbeat, so wait for the
		// first beats of both schedulers (had both registered, both would show).
		var entries []*asynq.SchedulerEntry
		for end := time.Now().Add(3 * queue.SchedulerHeartbeat); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			entries, err = asynq.NewInspectorFromRedisClient(e.rdb).SchedulerEntries()
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(entries) != 1 {
			t.Errorf("%d scheduler entries in Redis with two schedulers running, want 1 (the lease holder's)", len(entries))
		}
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(slugs) < 2 {
			t.Fatalf("%d ticks ran", len(slugs))
		}
		if want := time.Now().In(tokyo).Format("2006-01"); slugs[0] != want {
			t.Errorf("tick looked for issue %q, want this month in Tokyo, %q", slugs[0], want)
		}
		sends, err := e.svc.List(e.ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(sends) != 1 {
			t.Fatalf("%d sends after %d ticks, want 1 for the month", len(sends), len(slugs))
		}
		e.waitState(sends[0].ID, queue.Done, 10*time.Second)
		if n := len(e.smtp.Messages()); n != 1 {
			t.Errorf("%d messages, want 1", n)
		}
	})
}

// TestMonthlyLeaseLostMidFire: the scheduler lease runs out while its
// holder is in the middle of firing (its catch-up waits on the issue),
// as it would for a holder starved of CPU, and a second process takes
// the lease and fires the same month. The month still gets one send: the
// old holder, on finding its lease gone, stops, and what it still does
// finds the month's send in the store.
func TestMonthlyLeaseLostMidFire(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		queue.SetSchedulerLeaseTTL(e.svc, 3*time.Second)
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		var (
			mu    sync.Mutex
			loads int
		)
		firing, release := make(chan struct{}), make(chan struct{})
		sch := queue.Schedule{
			// A tick in the last hour: each holder's catch-up fires it.
			Spec: "@every 1h", List: testList,
			Load: func(_ context.Context, slug string) (*compose.Issue, error) {
				mu.Lock()
				loads++
				first := loads == 1
				mu.Unlock()
				if first {
					close(firing)
					<-release // the first holder, mid-fire, whatever its context says
				}
				return is, nil
			},
		}
		ctxA, cancelA := context.WithCancel(e.ctx)
		ctxB, cancelB := context.WithCancel(e.ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); e.svc.RunScheduler(ctxA, sch) }()
		<-firing
		// The lease runs out under the first holder; the second takes it.
		if err := e.rdb.Del(e.ctx, queue.SchedulerLeaseKey).Err(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); e.svc.RunScheduler(ctxB, sch) }()
		sends := func() int {
			l, err := e.svc.List(e.ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(l)
		}
		for deadline := time.Now().Add(15 * time.Second); sends() == 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the second holder created no send")
			}
		}
		// The first holder goes on with its fire: give it the time to
		// create a second send if it were to.
		close(release)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && sends() == 1; {
			time.Sleep(50 * time.Millisecond)
		}
		cancelA()
		cancelB()
		wg.Wait()
		if n := sends(); n != 1 {
			t.Errorf("%d sends after the lease ran out mid-fire, want the month's one", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if loads < 2 {
			t.Errorf("the issue was loaded %d times: the second holder did not fire", loads)
		}
	})
}

// TestSchedulerLeaseOutlivesASlowStep: the holder's Every (the console's
// send rules, which wait on the store) takes longer than the lease's
// TTL. The holder still renews its lease meanwhile, so the other process
// never takes it over and never fires alongside.
func TestSchedulerLeaseOutlivesASlowStep(t *testing.T) {
	e := newEnv(t, envOpts{noWorker: true})
	// Renewed every 1.33 s, given up 3.33 s after the last renewal: a
	// loaded machine's late ticks do not lose it.
	const ttl = 4 * time.Second
	queue.SetSchedulerLeaseTTL(e.svc, ttl)
	var (
		mu           sync.Mutex
		slowRuns     int
		otherRuns    int
		cancelledEnd bool
	)
	slowDone := make(chan struct{})
	slow := queue.Schedule{Every: func(ctx context.Context) {
		mu.Lock()
		slowRuns++
		first := slowRuns == 1
		mu.Unlock()
		if !first {
			return
		}
		defer close(slowDone)
		select {
		case <-time.After(3 * ttl / 2):
		case <-ctx.Done():
			mu.Lock()
			cancelledEnd = true
			mu.Unlock()
		}
	}}
	other := queue.Schedule{Every: func(context.Context) {
		mu.Lock()
		otherRuns++
		mu.Unlock()
	}}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.svc.RunScheduler(ctx, slow) }()
	for {
		mu.Lock()
		started := slowRuns > 0
		mu.Unlock()
		if started {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Add(1)
	go func() { defer wg.Done(); e.svc.RunScheduler(ctx, other) }()
	<-slowDone
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if cancelledEnd {
		t.Error("the holder lost its lease while its Every was slow")
	}
	if otherRuns > 0 {
		t.Errorf("the other process ran Every %d times while the holder was alive", otherRuns)
	}
}
