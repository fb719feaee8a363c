package queue_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// One-click unsubscribes during a send take effect for every copy not yet
// handed to the relay: 100 readers, each in the later half of a batch
// already running, unsubscribe through the store's one-click method (what
// the web handler calls) while the send goes on. None of them gets a copy
// accepted by the relay more than a second after the unsubscribe
// answered, and the ledger records those not sent as skipped.
func TestUnsubscribeMidSendTakesEffectWithinASecond(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		const readers, batch = 1000, 500
		slow := testutil.FailFunc(func(string, int) *testutil.Fault { f := testutil.Slow(5 * time.Millisecond); return &f })
		e := newEnv(t, envOpts{engine: eng, noWorker: true, smtp: []testutil.SMTPOption{slow}, cfg: queue.Config{BatchSize: batch},
			concurrency: 2})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		subs := make([]subscribers.Subscriber, readers)
		for i := range readers {
			subs[i] = e.addReader(fmt.Sprintf("u%04d@example.jp", i), "", audience.All())
		}
		// 50 readers from the second half of each batch, every fifth.
		var leavers []subscribers.Subscriber
		for b := range readers / batch {
			for i := batch/2 + 2; i < batch && len(leavers) < 50*(b+1); i += 5 {
				leavers = append(leavers, subs[b*batch+i])
			}
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		e.startWorker()
		e.waitMessages(100, 30*time.Second) // both batches under way

		answered := make(map[string]time.Time, len(leavers))
		var mu sync.Mutex
		for _, sub := range leavers {
			tok, err := e.store.UnsubscribeToken(sub.PublicID, testList)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.UnsubscribeByToken(e.ctx, tok, "one-click"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			answered[sub.Email] = time.Now()
			mu.Unlock()
			time.Sleep(15 * time.Millisecond)
		}
		t.Logf("100 unsubscribes done after %d messages", len(e.smtp.Messages()))
		done := e.waitState(snd.ID, queue.Done, 60*time.Second)

		late, got, worst := 0, 0, time.Duration(0)
		for _, sub := range leavers {
			msgs := e.smtp.MessagesTo(sub.Email)
			d := e.delivery(snd.ID, sub.Email)
			switch {
			case len(msgs) == 0 && d.status != "skipped":
				t.Errorf("%s: no copy, ledger says %s, want skipped", sub.Email, d.status)
			case len(msgs) > 0 && d.status != "sent":
				t.Errorf("%s: got a copy, ledger says %s", sub.Email, d.status)
			}
			for _, m := range msgs {
				got++
				after := m.Received.Sub(answered[sub.Email])
				worst = max(worst, after)
				if after > time.Second {
					late++
					t.Errorf("%s got a copy %v after the unsubscribe answered", sub.Email, after.Round(time.Millisecond))
				}
			}
		}
		t.Logf("of 100 readers who unsubscribed mid-send: %d got a copy (at worst %v after the answer), %d late; counts %+v",
			got, worst.Round(time.Millisecond), late, done.Counts)
		if done.Counts.Skipped < 50 {
			t.Errorf("%d skipped: most unsubscribes came before their copy was due", done.Counts.Skipped)
		}
	})
}
