package queue_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
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

// TestListMessageLostTask: a list mail (the welcome mail) whose task Redis
// lost before any worker ran is still sent, once: the outbox keeps it and
// the worker's reconciler queues it again under the same task id. Once
// sent it is marked so, and neither another flush nor a re-created task
// sends it again; a second mail with the same key is ErrDuplicate. On each
// engine.
func TestListMessageLostTask(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{noWorker: true, engine: eng, cfg: queue.Config{ReconcileInterval: 200 * time.Millisecond}})
		r := e.addReader("hanako@example.jp", "山田 花子", audience.All())
		m := queue.ListMessage{List: testList, Kind: "welcome", SubscriberID: r.ID, To: "hanako@example.jp", Subject: "ようこそ",
			Text: []byte("ようこそ。\n"), UnsubscribeURL: testBaseURL + "/u/x", Key: "welcome:" + r.PublicID + ":" + testList}
		id, err := e.svc.EnqueueListMessage(e.ctx, m)
		if err != nil || id != "message:"+m.Key {
			t.Fatalf("EnqueueListMessage = %q, %v", id, err)
		}
		if _, err := e.svc.EnqueueListMessage(e.ctx, m); !errors.Is(err, queue.ErrDuplicate) {
			t.Errorf("the same key again: %v, want ErrDuplicate", err)
		}
		state := func() string {
			t.Helper()
			var s string
			if err := e.queryRow(`SELECT state FROM list_mail WHERE key = ?`, m.Key).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if s := state(); s != queue.ListMailPending {
			t.Fatalf("outbox state %q before the worker, want pending", s)
		}
		if err := e.rdb.FlushDB(e.ctx).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond) // older than ReconcileInterval
		e.startWorker()
		e.smtp.WaitFor(1, 20*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for state() != queue.ListMailSent {
			if time.Now().After(deadline) {
				t.Fatalf("outbox state %q after the mail went, want sent", state())
			}
			time.Sleep(20 * time.Millisecond)
		}
		var payload []byte
		if err := e.queryRow(`SELECT payload FROM list_mail WHERE key = ?`, m.Key).Scan(&payload); err != nil || payload != nil {
			t.Errorf("payload kept after sending (%d bytes, %v): the address stays for nothing", len(payload), err)
		}

		// Redis lost again, and a task re-created by hand: neither sends.
		if err := e.rdb.FlushDB(e.ctx).Err(); err != nil {
			t.Fatal(err)
		}
		task, err := queue.NewMessageTask(queue.TransactionalMessage{To: m.To, Subject: m.Subject, Text: m.Text, Key: m.Key,
			SubscriberID: m.SubscriberID, List: m.List, ListUnsubscribe: m.UnsubscribeURL})
		if err != nil {
			t.Fatal(err)
		}
		client := asynq.NewClientFromRedisClient(e.rdb)
		defer client.Close()
		if _, err := client.EnqueueContext(e.ctx, task); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // room for a second copy to show
		if n := len(e.smtp.MessagesTo("hanako@example.jp")); n != 1 {
			t.Errorf("%d welcome mails, want 1", n)
		}
	})
}
