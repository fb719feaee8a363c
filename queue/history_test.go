package queue_test

import (
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

// A subscriber's data export lists every send that concerned them: sent,
// and (for a reader nothing matched) not planned at all.
func TestDeliveryHistoryListsEachSendToTheSubscriber(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng})
		reader := e.addReader("hist@example.jp", "", audience.All())
		other := e.addReader("other@example.jp", "", prefs("us", "reports"))
		var ids []int64
		for _, name := range []string{"aisi-monthly-2025-07.txt", "aisi-monthly-2025-11.txt"} {
			snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: loadIssue(t, name), List: testList})
			if err != nil {
				t.Fatal(err)
			}
			e.waitState(snd.ID, queue.Done, 20*time.Second)
			ids = append(ids, snd.ID)
		}
		h, err := e.svc.DeliveryHistory(e.ctx, reader.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 {
			t.Fatalf("history %+v, want the two sends", h)
		}
		for i, want := range []string{"2025-07", "2025-11"} {
			if d := h[i]; d.SendID != ids[i] || d.Issue != want || d.List != testList || d.Status != "sent" || d.At.IsZero() {
				t.Errorf("history[%d] = %+v, want send %d of %s, sent", i, d, ids[i], want)
			}
		}
		// July has US reports, November none: one delivery only.
		h, err = e.svc.DeliveryHistory(e.ctx, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h[0].Issue != "2025-07" {
			t.Errorf("history of the US-reports reader %+v, want July only", h)
		}
	})
}
