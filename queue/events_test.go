package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/queue"
)

type sendEvents struct {
	mu  sync.Mutex
	got []sendEvent
}

type sendEvent struct {
	typ string
	e   queue.SendEvent
}

func (l *sendEvents) Emit(_ context.Context, typ string, data any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, sendEvent{typ, data.(queue.SendEvent)})
}

func (l *sendEvents) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, g := range l.got {
		out = append(out, g.typ)
	}
	return out
}

// TestSendEvents: a send emits started when its planning begins, paused
// when the editor pauses it, and finished once every copy has an outcome,
// each with the send's issue, list and counts.
func TestSendEvents(t *testing.T) {
	log := &sendEvents{}
	e := newEnv(t, envOpts{events: log, noWorker: true})
	is := loadIssue(t, "aisi-monthly-2025-11.txt")
	for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp"} {
		e.addReader(a, "", audience.All())
	}
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Pause(e.ctx, snd.ID, "確認のため一時停止"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Resume(e.ctx, snd.ID); err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	e.waitState(snd.ID, queue.Done, 20*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for len(log.types()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := log.types()
	want := []string{queue.EventSendStarted, queue.EventSendPaused, queue.EventSendFinished}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, g := range log.got {
		if g.e.Send.ID != snd.ID || g.e.Send.Issue != is.Slug || g.e.Send.List != testList {
			t.Errorf("%s: %+v, want send %d of %s to %s", g.typ, g.e.Send, snd.ID, is.Slug, testList)
		}
	}
	if p := log.got[1].e.Send; p.State != queue.Paused || p.PauseReason != "確認のため一時停止" {
		t.Errorf("paused event: state %s, reason %q", p.State, p.PauseReason)
	}
	if f := log.got[2].e.Send; f.State != queue.Done || f.Counts.Sent != 3 || f.FinishedAt.IsZero() {
		t.Errorf("finished event: %+v, want done with 3 sent", f)
	}
}
