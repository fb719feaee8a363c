package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/webhooks"
)

type env struct {
	store webhooks.Store
	svc   *webhooks.Service
	rdb   *redis.Client
}

func setup(t *testing.T, eng testutil.Engine) env {
	t.Helper()
	st := store.Webhooks(testutil.OpenStore(t, eng))
	rdb := testutil.RedisDB(t)
	svc := webhooks.New(st, rdb, fastConfig(), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { svc.Close() })
	return env{store: st, svc: svc, rdb: rdb}
}

func fastConfig() webhooks.Config {
	return webhooks.Config{
		RetryDelay:               func(int) time.Duration { return 50 * time.Millisecond },
		DispatchEvery:            50 * time.Millisecond,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
	}
}

func runService(t *testing.T, svc *webhooks.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeliveryAtLeastOnceSigned emits events of several types to an
// endpoint that refuses the first two attempts of every message: each
// event arrives, signed, with the same webhook-id on every attempt and a
// different one per event, and the delivery log holds the endpoint's
// answers.
func TestDeliveryAtLeastOnceSigned(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testDeliveryAtLeastOnceSigned(t, eng) })
	}
}

func testDeliveryAtLeastOnceSigned(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	ctx := context.Background()
	secret := webhooks.NewSecret()
	recv := testutil.StartWebhookReceiver(t, secret, 2)
	ep, err := e.svc.AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL + "/hook", Description: "CRM", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	// An endpoint that takes only send events gets none of the subscriber events.
	otherSecret := webhooks.NewSecret()
	other := testutil.StartWebhookReceiver(t, otherSecret, 0)
	if _, err := e.svc.AddEndpoint(ctx, webhooks.Endpoint{URL: other.URL, Events: []string{webhooks.SendFinished}, Secret: otherSecret}); err != nil {
		t.Fatal(err)
	}
	types := []string{webhooks.SubscriberCreated, webhooks.SubscriberConfirmed, webhooks.SubscriberPreferencesChanged,
		webhooks.SubscriberUnsubscribed, webhooks.SendStarted}
	for i, typ := range types {
		e.svc.Emit(ctx, typ, map[string]any{"n": i, "name": "山田 花子"})
	}
	runService(t, e.svc)
	accepted := recv.WaitAccepted(t, len(types), 20*time.Second)
	if bad := recv.BadRequests(); bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	seen := map[string]bool{}
	for _, a := range accepted {
		id := a.ID
		if seen[id] {
			t.Errorf("message %s accepted twice without a replay", id)
		}
		seen[id] = true
		if n := recv.Attempts(id); n != 3 {
			t.Errorf("message %s: %d attempts, want 3 (two refused, one accepted)", id, n)
		}
		bodies := recv.Bodies(id)
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("message %s: body changed between attempts:\n%s\n%s", id, bodies[0], b)
			}
		}
		var got struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal([]byte(a.Body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Data["name"] != "山田 花子" {
			t.Errorf("message %s: name %q, want 山田 花子 byte for byte", id, got.Data["name"])
		}
	}
	if len(seen) != len(types) {
		t.Errorf("%d distinct ids for %d events", len(seen), len(types))
	}
	if o := other.Accepted(); len(o) != 0 {
		t.Errorf("the send.finished-only endpoint got %d subscriber events", len(o))
	}

	// The worker records the 200 just after the endpoint answered it.
	var ds []webhooks.Delivery
	waitFor(t, "every delivery recorded as delivered", func() bool {
		ds, _ = e.svc.Deliveries(ctx, ep.ID, 50)
		n := 0
		for _, d := range ds {
			if d.State == "delivered" {
				n++
			}
		}
		return n == len(types)
	})
	if len(ds) != len(types) {
		t.Fatalf("%d deliveries logged, want %d", len(ds), len(types))
	}
	for _, d := range ds {
		if d.State != "delivered" || d.Attempts != 3 || d.LastStatus != 200 || d.LastResponse != `{"ok":true}` || !seen[d.MsgID] {
			t.Errorf("delivery %+v: want delivered after 3 attempts, last answer 200 {\"ok\":true}", d)
		}
		as, err := e.svc.Attempts(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 3 || as[0].Status != 503 || as[0].Response != "エラー: まだ受け取れません" || as[2].Status != 200 {
			t.Errorf("attempts of %s: %+v", d.MsgID, as)
		}
	}

	// A replay is a duplicate: the same id again.
	if err := e.svc.Replay(ctx, ep.ID+1, ds[0].ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("replay under another endpoint: %v", err)
	}
	if err := e.svc.Replay(ctx, ep.ID, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	again := recv.WaitAccepted(t, len(types)+1, 20*time.Second)
	if last := again[len(again)-1]; last.ID != ds[0].MsgID {
		t.Errorf("replay came with id %s, want the original %s", last.ID, ds[0].MsgID)
	}
}

// TestEmitWithRedisDown: an event emitted while Redis is unreachable is
// kept in the outbox (Emit neither waits nor fails), and delivered once
// Redis answers.
func TestEmitWithRedisDown(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testEmitWithRedisDown(t, eng) })
	}
}

func testEmitWithRedisDown(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	ctx := context.Background()
	secret := webhooks.NewSecret()
	recv := testutil.StartWebhookReceiver(t, secret, 0)
	if _, err := e.svc.AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	db := e.store
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	offline := webhooks.New(db, down, fastConfig(), nil)
	defer offline.Close()
	start := time.Now()
	offline.Emit(ctx, webhooks.SubscriberConfirmed, map[string]string{"public_id": "abc"})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Emit took %v with Redis down", d)
	}
	if _, err := offline.Dispatch(ctx); err == nil {
		t.Fatal("Dispatch with Redis down: no error")
	}
	pending, err := db.Undispatched(ctx, 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("outbox after a failed dispatch: %v, %v; want the event kept", pending, err)
	}
	runService(t, e.svc) // Redis is back
	recv.WaitAccepted(t, 1, 20*time.Second)
	waitFor(t, "the outbox emptied", func() bool { pending, _ := db.Undispatched(ctx, 10); return len(pending) == 0 })
}

// TestGivesUp: an endpoint that always fails gets MaxRetry+1 attempts and
// the delivery ends failed, with each answer logged.
func TestGivesUp(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testGivesUp(t, eng) })
	}
}

func testGivesUp(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	ctx := context.Background()
	cfg := fastConfig()
	cfg.MaxRetry = 2
	svc := webhooks.New(e.store, e.rdb, cfg, nil)
	defer svc.Close()
	secret := webhooks.NewSecret()
	recv := testutil.StartWebhookReceiver(t, secret, 1000)
	ep, err := svc.AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	svc.Emit(ctx, webhooks.SubscriberBounced, map[string]string{"public_id": "x"})
	runService(t, svc)
	var ds []webhooks.Delivery
	waitFor(t, "the delivery to fail", func() bool {
		ds, _ = svc.Deliveries(ctx, ep.ID, 10)
		return len(ds) == 1 && ds[0].State == "failed"
	})
	if ds[0].Attempts != 3 || ds[0].LastStatus != 503 {
		t.Errorf("failed delivery: %+v, want 3 attempts, last 503", ds[0])
	}
	time.Sleep(200 * time.Millisecond)
	if n := recv.Attempts(ds[0].MsgID); n != 3 {
		t.Errorf("endpoint saw %d attempts, want 3", n)
	}
}

// TestNoEventWithoutEndpoint: with no endpoint listening nothing is kept.
func TestNoEventWithoutEndpoint(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testNoEventWithoutEndpoint(t, eng) })
	}
}

func testNoEventWithoutEndpoint(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	ctx := context.Background()
	e.svc.Emit(ctx, webhooks.SubscriberCreated, map[string]string{"email": "a@example.jp"})
	if pending, _ := e.store.Undispatched(ctx, 10); len(pending) != 0 {
		t.Errorf("kept %d events with no endpoint", len(pending))
	}
}

func TestAddEndpointInvalid(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testAddEndpointInvalid(t, eng) })
	}
}

func testAddEndpointInvalid(t *testing.T, eng testutil.Engine) {
	e := setup(t, eng)
	_, err := e.svc.AddEndpoint(context.Background(), webhooks.Endpoint{URL: "ftp://x", Events: []string{"nope"}, Secret: "abc"})
	var ee *webhooks.EndpointError
	if !errorsAs(err, &ee) || len(ee.Problems) != 3 {
		t.Fatalf("err = %v, want problems with url, events and secret", err)
	}
}
