package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/queue"
)

// TestListMessage: a list mail goes out with the list headers and is
// skipped, as a success, for a reader who left the list before the worker
// took it.
func TestListMessage(t *testing.T) {
	e := newEnv(t, envOpts{noWorker: true})
	stay := e.addReader("stay@example.jp", "", audience.All())
	gone := e.addReader("gone@example.jp", "", audience.All())
	for _, r := range []struct {
		id int64
		to string
	}{{stay.ID, "stay@example.jp"}, {gone.ID, "gone@example.jp"}} {
		if _, err := e.svc.EnqueueListMessage(e.ctx, queue.ListMessage{List: testList, Kind: "welcome", SubscriberID: r.id,
			To: r.to, Subject: "ようこそ", Text: []byte("ようこそ。\n"), UnsubscribeURL: testBaseURL + "/u/x", Key: "w:" + r.to}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.EnqueueListMessage(e.ctx, queue.ListMessage{List: testList, To: "x@example.jp"}); err == nil {
		t.Error("a list message without reader or unsubscribe URL was queued")
	}
	if err := e.store.Unsubscribe(e.ctx, gone.ID, "", "test"); err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	msgs := e.smtp.WaitFor(1, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := len(e.smtp.MessagesTo("gone@example.jp")); n != 0 {
		t.Errorf("%d messages to a reader who left the list", n)
	}
	raw := string(msgs[0].Raw)
	for _, h := range []string{"List-Unsubscribe: <" + testBaseURL + "/u/x>", "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
		"Feedback-ID: welcome:" + testList + ":list:jpaipol01", "Message-ID:"} {
		if !strings.Contains(raw, h) {
			t.Errorf("the list message lacks %q:\n%s", h, raw)
		}
	}
}
