package welcome_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/welcome"
)

// fakeQueue records the list mails queued.
type fakeQueue struct {
	mu  sync.Mutex
	got []queue.ListMessage
}

func (q *fakeQueue) EnqueueListMessage(_ context.Context, m queue.ListMessage) (string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got = append(q.got, m)
	return "message:" + m.Key, nil
}

type fakeTokens struct{}

func (fakeTokens) UnsubscribeToken(publicID, list string) (string, error) {
	return "u-" + publicID + "-" + list, nil
}
func (fakeTokens) PreferencesToken(publicID, list string) (string, error) {
	return "p-" + publicID + "-" + list, nil
}

// TestEmitWelcomesToTheConfirmedList: subscriber.confirmed welcomes the
// reader to the list the event names, under the key
// welcome:<public id>:<list>, not to another of their lists; a list whose
// welcome is off gets none; other events send nothing.
func TestEmitWelcomesToTheConfirmedList(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testEmitWelcomesToTheConfirmedList(t, eng) })
	}
}

func testEmitWelcomesToTheConfirmedList(t *testing.T, eng testutil.Engine) {
	ctx := context.Background()
	st := store.Welcome(testutil.OpenStore(t, eng))
	q := &fakeQueue{}
	svc, err := welcome.New(st, q, fakeTokens{}, nil, welcome.Config{BaseURL: "https://n.example.jp", SenderName: "便り"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribers.EventSubscriber{ID: 7, PublicID: "pub1", Email: "hanako@example.jp", Name: "山田 花子",
		Status: subscribers.Active, Lists: []string{"alerts", "monthly"}}
	svc.Emit(ctx, subscribers.EventConfirmed, subscribers.EventData{Subscriber: sub, PreviousStatus: subscribers.Active, List: "monthly"})
	if len(q.got) != 1 || q.got[0].List != "monthly" || q.got[0].Key != "welcome:pub1:monthly" || q.got[0].SubscriberID != 7 ||
		q.got[0].UnsubscribeURL != "https://n.example.jp/u/u-pub1-monthly" {
		t.Fatalf("queued %+v, want one welcome to monthly", q.got)
	}
	off := welcome.Default("alerts")
	off.Enabled = false
	if err := svc.SaveTemplate(ctx, off); err != nil {
		t.Fatal(err)
	}
	q.got = nil
	svc.Emit(ctx, subscribers.EventConfirmed, subscribers.EventData{Subscriber: sub, PreviousStatus: subscribers.Pending, List: "alerts"})
	svc.Emit(ctx, subscribers.EventUnsubscribed, subscribers.EventData{Subscriber: sub, List: "alerts"})
	if len(q.got) != 0 {
		t.Errorf("queued %+v for a list whose welcome is off, or for another event", q.got)
	}
}
