package webhooks_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/webhooks"
)

// TestReconcileAfterRedisLoss: events recorded and queued, then the
// test's Redis database flushed (as the chaos suite replaces Redis) before
// any worker ran: the worker's reconciler queues the lost deliveries
// again and the receiver, verifying every signature, gets every event,
// with a repeat only ever under the same webhook-id. Before the flush the
// reconciler finds every task and queues nothing.
func TestReconcileAfterRedisLoss(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testReconcileAfterRedisLoss(t, eng) })
	}
}

func testReconcileAfterRedisLoss(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	ctx := context.Background()
	cfg := fastConfig()
	cfg.MaintainEvery, cfg.ReconcileAfter = 50*time.Millisecond, 100*time.Millisecond
	svc := webhooks.New(e.store, e.rdb, cfg, nil)
	defer svc.Close()
	secret := webhooks.NewSecret()
	recv := testutil.StartWebhookReceiver(t, secret, 1) // each message refused once: retries run too
	ep, err := svc.AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	const events = 30
	for i := range events {
		svc.Emit(ctx, webhooks.EventTypes[i%len(webhooks.EventTypes)], map[string]any{"n": i, "name": "山田 花子"})
	}
	if n, err := svc.Dispatch(ctx); err != nil || n != events {
		t.Fatalf("Dispatch = %d, %v; want %d tasks queued", n, err, events)
	}
	ds, err := svc.Deliveries(ctx, ep.ID, 100)
	if err != nil || len(ds) != events {
		t.Fatalf("Deliveries = %d, %v", len(ds), err)
	}
	want := map[string]bool{}
	for _, d := range ds {
		want[d.MsgID] = true
	}
	time.Sleep(cfg.ReconcileAfter + 20*time.Millisecond)
	if n, err := svc.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("Reconcile with every task in Redis = %d, %v; want 0", n, err)
	}

	if err := e.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	runService(t, svc)
	got := recv.WaitAccepted(t, events, 30*time.Second)
	if bad := recv.BadRequests(); bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	seen := map[string]int{}
	for _, a := range got {
		if !want[a.ID] {
			t.Errorf("accepted an unknown id %s", a.ID)
		}
		seen[a.ID]++
	}
	if len(seen) != events {
		t.Errorf("%d distinct ids accepted, want %d", len(seen), events)
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("event %s never arrived", id)
		}
		if b := recv.Bodies(id); len(b) > 1 && b[0] != b[len(b)-1] {
			t.Errorf("event %s: the body changed between attempts", id)
		}
	}
	waitFor(t, "every delivery recorded as delivered", func() bool {
		ds, _ := svc.Deliveries(ctx, ep.ID, 100)
		n := 0
		for _, d := range ds {
			if d.State == "delivered" {
				n++
			}
		}
		return n == events
	})
}

// TestReconcileSkipsDisabledAndFresh: the reconciler leaves alone a
// delivery younger than ReconcileAfter (the dispatcher is about to queue
// it) and a delivery to an endpoint turned off; once the endpoint is on
// again its lost delivery is queued.
func TestReconcileSkipsDisabledAndFresh(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := setup(t, eng)
			ctx := context.Background()
			now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
			cfg := fastConfig()
			cfg.ReconcileAfter = time.Minute
			cfg.Now = func() time.Time { return now }
			svc := webhooks.New(e.store, e.rdb, cfg, nil)
			defer svc.Close()
			ep, err := svc.AddEndpoint(ctx, webhooks.Endpoint{URL: "http://127.0.0.1:1/hook"})
			if err != nil {
				t.Fatal(err)
			}
			svc.Emit(ctx, webhooks.SubscriberCreated, map[string]string{"public_id": "a"})
			if n, err := svc.Dispatch(ctx); err != nil || n != 1 {
				t.Fatalf("Dispatch = %d, %v", n, err)
			}
			if err := e.rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if n, err := svc.Reconcile(ctx); err != nil || n != 0 {
				t.Errorf("Reconcile of a fresh delivery = %d, %v; want 0", n, err)
			}
			now = now.Add(2 * time.Minute)
			if err := svc.SetEnabled(ctx, ep.ID, false); err != nil {
				t.Fatal(err)
			}
			if n, err := svc.Reconcile(ctx); err != nil || n != 0 {
				t.Errorf("Reconcile with the endpoint off = %d, %v; want 0", n, err)
			}
			if err := svc.SetEnabled(ctx, ep.ID, true); err != nil {
				t.Fatal(err)
			}
			if n, err := svc.Reconcile(ctx); err != nil || n != 1 {
				t.Errorf("Reconcile with the endpoint on = %d, %v; want 1", n, err)
			}
			if n, err := svc.Reconcile(ctx); err != nil || n != 0 {
				t.Errorf("second Reconcile = %d, %v; want 0 (the task is there)", n, err)
			}
			keys, _ := e.rdb.Keys(ctx, "asynq:{webhooks}:t:*").Result()
			if len(keys) != 1 || keys[0] != fmt.Sprintf("asynq:{webhooks}:t:webhook:%d", firstDelivery(t, svc, ep.ID)) {
				t.Errorf("tasks in Redis: %v, want the delivery's webhook:<id>", keys)
			}
		})
	}
}

func firstDelivery(t *testing.T, svc *webhooks.Service, endpointID int64) int64 {
	t.Helper()
	ds, err := svc.Deliveries(context.Background(), endpointID, 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Deliveries = %+v, %v", ds, err)
	}
	return ds[0].ID
}

// TestTrimKeepsConfiguredDays: Service.Trim keeps Config.KeepLog of
// delivered deliveries by the service's clock.
func TestTrimKeepsConfiguredDays(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := setup(t, eng)
			ctx := context.Background()
			var now atomic.Int64             // the worker reads the clock while the test moves it
			now.Store(time.Now().UnixNano()) // the receiver checks webhook-timestamp against its own clock
			cfg := fastConfig()
			cfg.KeepLog = 10 * 24 * time.Hour
			// The worker's own rounds would trim too once the clock moves,
			// racing with the test's Trim calls for the rows they count:
			// after its first round (at start, nothing old yet) the next
			// is an hour away.
			cfg.MaintainEvery = time.Hour
			cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
			svc := webhooks.New(e.store, e.rdb, cfg, nil)
			defer svc.Close()
			secret := webhooks.NewSecret()
			recv := testutil.StartWebhookReceiver(t, secret, 0)
			ep, err := svc.AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			svc.Emit(ctx, webhooks.SubscriberCreated, map[string]string{"public_id": "a"})
			runService(t, svc)
			// The dispatcher marks the event dispatched after it queues the
			// delivery, so the delivery can be done before the mark is:
			// wait for both, or Trim rightly keeps the event.
			waitFor(t, "the delivery and the event's dispatched mark", func() bool {
				ds, _ := svc.Deliveries(ctx, ep.ID, 10)
				left, err := e.store.Undispatched(ctx, 10)
				return len(ds) == 1 && ds[0].State == "delivered" && err == nil && len(left) == 0
			})
			now.Add(int64(10*24*time.Hour - time.Second))
			if nd, _, err := svc.Trim(ctx); err != nil || nd != 0 {
				t.Errorf("Trim within KeepLog = %d, %v; want 0", nd, err)
			}
			now.Add(int64(2 * time.Second))
			if nd, ne, err := svc.Trim(ctx); err != nil || nd != 1 || ne != 1 {
				t.Errorf("Trim past KeepLog = %d deliveries, %d events, %v; want 1, 1", nd, ne, err)
			}
			if ds, _ := svc.Deliveries(ctx, ep.ID, 10); len(ds) != 0 {
				t.Errorf("deliveries left: %+v", ds)
			}
		})
	}
}
