package queue_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tayori-news/tayori/queue"
)

// A worker (the Asynq server, the lease watchdog, the reconciler, the
// outcome writer) that delivered a send and was stopped, and its Service
// closed, leave no goroutine behind.
func TestServerStartStopLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Run("worker", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp"} {
			e.addReader(a, "", prefs("jp", "policy"))
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: loadIssue(t, "aisi-monthly-2025-11.txt"), List: testList})
		if err != nil {
			t.Fatal(err)
		}
		if s := e.waitState(snd.ID, queue.Done, 20*time.Second); s.Counts.Sent != 3 {
			t.Fatalf("sent %d, want 3", s.Counts.Sent)
		}
		e.stop()
	})
	goleak.VerifyNone(t, ignore)
}
