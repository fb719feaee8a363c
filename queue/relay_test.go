package queue_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
)

// TestSendRelayDownMidSend: the relay goes down (connections refused)
// part way through a send and comes back. The send slows, retries and
// finishes by itself: every reader gets their copy, no delivery fails, the
// copies that met the relay down cost no attempt, and while it is down
// the relay's state says so.
func TestSendRelayDownMidSend(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		var e *env
		e = newEnv(t, envOpts{engine: eng,
			cfg: queue.Config{BatchSize: 40, RelayRetry: 200 * time.Millisecond},
			pool: func(o *mailer.PoolOptions) {
				o.BreakerCooldown = 150 * time.Millisecond
				o.OnRelayState = func(st mailer.RelayState) {
					_ = e.svc.SetRelayState(e.ctx, queue.RelayState{Relay: st.Relay, Down: !st.Up, Since: st.Since,
						Kind: st.Kind, Cause: st.Cause, Retry: st.Retry})
				}
			},
		})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		const n = 400
		for i := range n {
			e.addReader(fmt.Sprintf("reader%03d@example.jp", i), "", prefs("jp", "policy"))
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		e.smtp.WaitFor(60, 20*time.Second)
		restored := make(chan error, 1)
		e.smtp.DownFor(1500*time.Millisecond, restored)
		var down queue.RelayState
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if down, err = e.svc.RelayState(e.ctx); err != nil {
				t.Fatal(err)
			}
			// The dropped connections may be seen first ("closed"); the
			// dials that follow are refused.
			if down.Down && down.Kind == "refused" {
				break
			}
		}
		if !down.Down || down.Kind != "refused" || down.Cause != "connection refused" || down.Since.IsZero() ||
			!strings.HasPrefix(down.Relay, "127.0.0.1:") {
			t.Errorf("relay state while down: %+v, want down, refused", down)
		}
		if err := <-restored; err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 60*time.Second)
		if c := done.Counts; c.Sent != n || c.FailedPerm+c.FailedTemp != 0 {
			t.Errorf("counts %+v, want all %d sent", c, n)
		}
		got := map[string]int{}
		for _, m := range e.smtp.Messages() {
			got[m.To[0]]++
		}
		dups := 0
		for i := range n {
			r := fmt.Sprintf("reader%03d@example.jp", i)
			switch {
			case got[r] == 0:
				t.Errorf("%s got no copy", r)
			case got[r] > 1:
				dups += got[r] - 1
			}
		}
		// Only copies whose replies the drop cut off can go twice.
		if bound := e.concurrency * mailer.MaxInFlight; dups > bound {
			t.Errorf("%d duplicates, more than the %d copies that can be in flight", dups, bound)
		}
		var maxAttempts, retried int
		if err := e.queryRow(`SELECT max(attempts), count(*) FILTER (WHERE attempts > 1) FROM delivery_state WHERE send_id = ?`,
			snd.ID).Scan(&maxAttempts, &retried); err != nil {
			t.Fatal(err)
		}
		if maxAttempts > 2 {
			t.Errorf("a delivery took %d attempts: the relay being down was counted against readers", maxAttempts)
		}
		t.Logf("%d readers, %d duplicates, %d deliveries with a second attempt (copies in flight at the drop), %d connections",
			n, dups, retried, e.smtp.Connections())
		if st, err := e.svc.RelayState(e.ctx); err != nil || st.Down {
			t.Errorf("relay state after the send: %+v %v, want up", st, err)
		}
	})
}
