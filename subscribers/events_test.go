package subscribers_test

import (
	"context"
	"slices"
	"sync"

	"github.com/tayori-news/tayori/internal/testutil"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/subscribers"
)

// eventLog records the events a store emits.
type eventLog struct {
	mu  sync.Mutex
	got []emitted
}

type emitted struct {
	typ  string
	data subscribers.EventData
}

func (l *eventLog) Emit(_ context.Context, typ string, data any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, emitted{typ, data.(subscribers.EventData)})
}

func (l *eventLog) take() []emitted {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

// TestEvents: each committed change of status or preferences emits one
// event with the subscriber as they are after it; a refused change and a
// save that changes nothing emit none.
func TestEvents(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testEvents(t, eng) })
	}
}

func testEvents(t *testing.T, eng testutil.Engine) {
	e := newEnv(t, eng)
	log := &eventLog{}
	e.store.SetEvents(log)
	one := func(want string, prev subscribers.Status) subscribers.EventData {
		t.Helper()
		got := log.take()
		if len(got) != 1 || got[0].typ != want {
			t.Fatalf("events = %+v, want one %s", got, want)
		}
		if got[0].data.PreviousStatus != prev {
			t.Errorf("%s: previous status %q, want %q", want, got[0].data.PreviousStatus, prev)
		}
		return got[0].data
	}

	sub := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "hanako@example.jp", Name: "山田 花子",
		Prefs: &audience.Prefs{Regions: []audience.Region{"jp"}}, Cause: "web signup"})
	d := one(subscribers.EventCreated, "")
	if d.Subscriber.PublicID != sub.PublicID || d.Subscriber.Email != "hanako@example.jp" || d.Subscriber.Name != "山田 花子" ||
		d.Subscriber.Status != subscribers.Pending {
		t.Errorf("created: %+v", d.Subscriber)
	}
	// The same address again: nothing is created.
	mustAdd(t, e.store, subscribers.NewSubscriber{Email: "hanako@example.jp", Cause: "web signup"})
	if got := log.take(); len(got) != 0 {
		t.Errorf("signing up a known address emitted %+v", got)
	}

	tok, err := e.store.ConfirmToken(ctx, sub.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Confirm(ctx, tok, subscribers.Consent{FormVersion: "v1", Text: "同意します"}); err != nil {
		t.Fatal(err)
	}
	if d := one(subscribers.EventConfirmed, subscribers.Pending); d.Subscriber.Status != subscribers.Active {
		t.Errorf("confirmed: status %s", d.Subscriber.Status)
	}
	// A used token is refused: the transaction rolls back, nothing is emitted.
	if _, err := e.store.Confirm(ctx, tok, subscribers.Consent{FormVersion: "v1", Text: "同意します"}); err == nil {
		t.Fatal("second confirm succeeded")
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a refused confirm emitted %+v", got)
	}

	prefs := audience.Prefs{Regions: []audience.Region{"jp", "us"}}
	if _, err := e.store.Update(ctx, sub.ID, subscribers.Update{Prefs: &prefs}); err != nil {
		t.Fatal(err)
	}
	if d := one(subscribers.EventPreferencesChanged, ""); d.Subscriber.Prefs.Key() != prefs.Key() {
		t.Errorf("preferences_changed carries %s, want %s", d.Subscriber.Prefs.Key(), prefs.Key())
	}
	same := audience.Prefs{Regions: []audience.Region{"us", "jp"}}
	if _, err := e.store.Update(ctx, sub.ID, subscribers.Update{Prefs: &same}); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("saving the same preferences emitted %+v", got)
	}

	if err := e.store.Unsubscribe(ctx, sub.ID, "", "reader"); err != nil {
		t.Fatal(err)
	}
	one(subscribers.EventUnsubscribed, subscribers.Active)
	if err := e.store.Unsubscribe(ctx, sub.ID, "", "reader"); err != nil {
		t.Fatal(err)
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a second unsubscribe emitted %+v", got)
	}

	b := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "b@example.jp", Method: subscribers.API,
		Consent: &subscribers.Consent{At: e.clock.Now(), FormVersion: "api", Text: "ok"}})
	one(subscribers.EventCreated, "")
	if err := e.store.MarkBounced(ctx, b.ID, "5.1.1"); err != nil {
		t.Fatal(err)
	}
	one(subscribers.EventBounced, subscribers.Active)
	if err := e.store.MarkComplained(ctx, b.ID, "abuse"); err != nil {
		t.Fatal(err)
	}
	one(subscribers.EventComplained, subscribers.Bounced)
}

// TestListEvents: a change of lists that keeps the status is an event
// too, naming the list: leaving one list while staying on another is
// subscriber.unsubscribed with the status still active; an active reader
// confirming another list is subscriber.confirmed with previous status
// active; leaving the last list is subscriber.unsubscribed with the
// status unsubscribed and the list named. A second leave emits nothing.
func TestListEvents(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			if _, err := e.store.CreateList(ctx, "alerts", "速報"); err != nil {
				t.Fatal(err)
			}
			log := &eventLog{}
			e.store.SetEvents(log)
			one := func(want string, prev subscribers.Status, list string, status subscribers.Status, lists ...string) {
				t.Helper()
				got := log.take()
				if len(got) != 1 || got[0].typ != want {
					t.Fatalf("events = %+v, want one %s", got, want)
				}
				d := got[0].data
				if d.PreviousStatus != prev || d.List != list || d.Subscriber.Status != status || !slices.Equal(d.Subscriber.Lists, lists) {
					t.Errorf("%s: previous %q, list %q, status %q, lists %v; want %q, %q, %q, %v", want,
						d.PreviousStatus, d.List, d.Subscriber.Status, d.Subscriber.Lists, prev, list, status, lists)
				}
			}

			sub := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "hanako@example.jp", Cause: "web signup"})
			one(subscribers.EventCreated, "", "", subscribers.Pending, "monthly")
			tok, err := e.store.ConfirmToken(ctx, sub.ID, "monthly")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Confirm(ctx, tok, subscribers.Consent{FormVersion: "v1", Text: "同意します"}); err != nil {
				t.Fatal(err)
			}
			one(subscribers.EventConfirmed, subscribers.Pending, "monthly", subscribers.Active, "monthly")

			// Signs up for alerts too, and confirms it: a second confirmed.
			mustAdd(t, e.store, subscribers.NewSubscriber{Email: "hanako@example.jp", Lists: []string{"alerts"}, Cause: "web signup"})
			if got := log.take(); len(got) != 0 {
				t.Errorf("the signup of a known address emitted %+v", got)
			}
			tok, err = e.store.ConfirmToken(ctx, sub.ID, "alerts")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Confirm(ctx, tok, subscribers.Consent{FormVersion: "v1", Text: "同意します"}); err != nil {
				t.Fatal(err)
			}
			one(subscribers.EventConfirmed, subscribers.Active, "alerts", subscribers.Active, "alerts", "monthly")

			// Leaves alerts, stays on monthly.
			if err := e.store.Unsubscribe(ctx, sub.ID, "alerts", "one-click"); err != nil {
				t.Fatal(err)
			}
			one(subscribers.EventUnsubscribed, subscribers.Active, "alerts", subscribers.Active, "monthly")
			if err := e.store.Unsubscribe(ctx, sub.ID, "alerts", "one-click"); err != nil {
				t.Fatal(err)
			}
			if got := log.take(); len(got) != 0 {
				t.Errorf("leaving a list again emitted %+v", got)
			}
			// Leaves the last list.
			if err := e.store.Unsubscribe(ctx, sub.ID, "monthly", "one-click"); err != nil {
				t.Fatal(err)
			}
			one(subscribers.EventUnsubscribed, subscribers.Active, "monthly", subscribers.Unsubscribed)
		})
	}
}
