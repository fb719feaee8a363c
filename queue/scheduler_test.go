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
