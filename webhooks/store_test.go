package webhooks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/webhooks"
)

// TestStore: the storage behind the Service, on each engine: endpoints
// round-trip (Japanese byte for byte), an event fans out once to the
// enabled endpoints that take its type, attempts are logged in order, a
// replay requeues, deleting an endpoint takes its deliveries, and missing
// rows are ErrNotFound.
func TestStore(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			st := store.Webhooks(testutil.OpenStore(t, eng))
			now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
			all, err := st.AddEndpoint(ctx, webhooks.Endpoint{URL: "https://a.example.jp/hook", Description: "読者台帳の同期",
				Secret: "whsec_a", Enabled: true}, now)
			if err != nil {
				t.Fatal(err)
			}
			some, err := st.AddEndpoint(ctx, webhooks.Endpoint{URL: "https://b.example.jp/hook", Secret: "whsec_b",
				Events: []string{webhooks.SubscriberCreated, webhooks.SendFinished}, Enabled: true}, now)
			if err != nil {
				t.Fatal(err)
			}
			off, err := st.AddEndpoint(ctx, webhooks.Endpoint{URL: "https://c.example.jp/hook", Secret: "whsec_c", Enabled: true}, now)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetEnabled(ctx, off.ID, false, now); err != nil {
				t.Fatal(err)
			}
			got, err := st.Endpoint(ctx, some.ID)
			if err != nil || got.URL != some.URL || len(got.Events) != 2 || got.Events[1] != webhooks.SendFinished || !got.Enabled ||
				!got.CreatedAt.Equal(now) {
				t.Fatalf("Endpoint = %+v, %v", got, err)
			}
			if got, _ := st.Endpoint(ctx, all.ID); got.Description != "読者台帳の同期" || len(got.Events) != 0 {
				t.Errorf("Endpoint(all) = %+v", got)
			}
			if eps, err := st.Endpoints(ctx); err != nil || len(eps) != 3 || eps[2].Enabled {
				t.Errorf("Endpoints = %+v, %v; want 3, the last off", eps, err)
			}
			if _, err := st.Endpoint(ctx, 999); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("Endpoint(999): %v, want ErrNotFound", err)
			}
			if err := st.SetEnabled(ctx, 999, true, now); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("SetEnabled(999): %v, want ErrNotFound", err)
			}

			body := []byte(`{"type":"subscriber.confirmed","data":{"email":"花子@example.jp"}}`)
			if err := st.AddEvent(ctx, "msg_1", webhooks.SubscriberConfirmed, body, now); err != nil {
				t.Fatal(err)
			}
			if err := st.AddEvent(ctx, "msg_2", webhooks.SubscriberCreated, []byte(`{}`), now); err != nil {
				t.Fatal(err)
			}
			if err := st.AddEvent(ctx, "msg_1", webhooks.SubscriberCreated, []byte(`{}`), now); err == nil {
				t.Error("a second event with the same msg_id was stored")
			}
			evs, err := st.Undispatched(ctx, 10)
			if err != nil || len(evs) != 2 || evs[0].Type != webhooks.SubscriberConfirmed {
				t.Fatalf("Undispatched = %+v, %v", evs, err)
			}
			// subscriber.confirmed: only the endpoint taking every type.
			ids, err := st.FanOut(ctx, evs[0], now)
			if err != nil || len(ids) != 1 {
				t.Fatalf("FanOut(confirmed) = %v, %v; want one delivery", ids, err)
			}
			if again, err := st.FanOut(ctx, evs[0], now); err != nil || len(again) != 1 || again[0] != ids[0] {
				t.Errorf("second FanOut = %v, %v; want the same delivery", again, err)
			}
			// subscriber.created: both enabled endpoints.
			created, err := st.FanOut(ctx, evs[1], now)
			if err != nil || len(created) != 2 {
				t.Fatalf("FanOut(created) = %v, %v; want two deliveries", created, err)
			}
			for _, e := range evs {
				if err := st.MarkDispatched(ctx, e.ID, now); err != nil {
					t.Fatal(err)
				}
			}
			if evs, _ := st.Undispatched(ctx, 10); len(evs) != 0 {
				t.Errorf("Undispatched after MarkDispatched = %+v", evs)
			}

			j, err := st.Job(ctx, ids[0])
			if err != nil || j.MsgID != "msg_1" || string(j.Body) != string(body) || j.EndpointID != all.ID || j.Secret != "whsec_a" ||
				!j.Enabled || j.State != "pending" {
				t.Fatalf("Job = %+v, %v", j, err)
			}
			t1 := now.Add(time.Second)
			if err := st.RecordAttempt(ctx, ids[0], webhooks.Attempt{At: t1, Status: 503, Response: "混雑中", Duration: 1500 * time.Millisecond}, "pending"); err != nil {
				t.Fatal(err)
			}
			t2 := now.Add(time.Minute)
			if err := st.RecordAttempt(ctx, ids[0], webhooks.Attempt{At: t2, Status: 204, Duration: 20 * time.Millisecond}, "delivered"); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordAttempt(ctx, 999, webhooks.Attempt{At: t2}, "failed"); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("RecordAttempt(999): %v, want ErrNotFound", err)
			}
			as, err := st.Attempts(ctx, ids[0])
			if err != nil || len(as) != 2 || as[0].Status != 503 || as[0].Response != "混雑中" || as[0].Duration != 1500*time.Millisecond ||
				!as[0].At.Equal(t1) || as[1].Status != 204 {
				t.Fatalf("Attempts = %+v, %v", as, err)
			}
			ds, err := st.Deliveries(ctx, all.ID, 10)
			if err != nil || len(ds) != 2 {
				t.Fatalf("Deliveries = %+v, %v", ds, err)
			}
			// Newest first: created's delivery, then confirmed's.
			if d := ds[1]; d.ID != ids[0] || d.State != "delivered" || d.Attempts != 2 || d.LastStatus != 204 || d.LastResponse != "" ||
				d.MsgID != "msg_1" || !d.UpdatedAt.Equal(t2) || !d.CreatedAt.Equal(now) {
				t.Errorf("delivery = %+v", d)
			}
			if ds, _ := st.Deliveries(ctx, all.ID, 1); len(ds) != 1 || ds[0].State != "pending" {
				t.Errorf("Deliveries(limit 1) = %+v", ds)
			}
			// The reconciler's candidates: pending, to an enabled endpoint,
			// untouched before the cutoff; created's delivery to all is
			// pending since now.
			if ps, err := st.Pending(ctx, now.Add(time.Millisecond), 0, 10); err != nil || len(ps) != 2 || ps[0].ID != created[0] || ps[0].TaskID != "" {
				t.Errorf("Pending = %+v, %v; want created's two deliveries, no task id yet", ps, err)
			}
			if ps, _ := st.Pending(ctx, now.Add(time.Millisecond), created[0], 10); len(ps) != 1 || ps[0].ID != created[1] {
				t.Errorf("Pending after %d = %+v, want the next page", created[0], ps)
			}
			if ps, _ := st.Pending(ctx, now, 0, 10); len(ps) != 0 {
				t.Errorf("Pending before they were made = %+v", ps)
			}
			if err := st.Requeue(ctx, ids[0], "webhook:1:replay:7", t2); err != nil {
				t.Fatal(err)
			}
			if j, _ := st.Job(ctx, ids[0]); j.State != "pending" {
				t.Errorf("after Requeue: state %q", j.State)
			}
			if ps, _ := st.Pending(ctx, t2.Add(time.Millisecond), 0, 1); len(ps) != 1 || ps[0].ID != ids[0] || ps[0].TaskID != "webhook:1:replay:7" {
				t.Errorf("Pending after a replay = %+v, want it with the replay's task id", ps)
			}
			if err := st.Requeue(ctx, 999, "x", t2); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("Requeue(999): %v, want ErrNotFound", err)
			}

			if err := st.DeleteEndpoint(ctx, all.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Job(ctx, ids[0]); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("Job of a deleted endpoint's delivery: %v, want ErrNotFound", err)
			}
			if as, _ := st.Attempts(ctx, ids[0]); len(as) != 0 {
				t.Errorf("attempts kept after the endpoint was deleted: %+v", as)
			}
			if err := st.DeleteEndpoint(ctx, all.ID); !errors.Is(err, webhooks.ErrNotFound) {
				t.Errorf("second DeleteEndpoint: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestStoreTrim: Trim deletes the delivered deliveries last changed
// before the cutoff, with their attempts, then the dispatched events left
// without a delivery; pending and failed deliveries, newer ones and
// undispatched events stay, on each engine.
func TestStoreTrim(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			st := store.Webhooks(testutil.OpenStore(t, eng))
			old := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
			recent := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
			cutoff := time.Date(2026, 11, 7, 0, 0, 0, 0, time.UTC)
			ep, err := st.AddEndpoint(ctx, webhooks.Endpoint{URL: "https://a.example.jp/hook", Secret: "whsec_a", Enabled: true}, old)
			if err != nil {
				t.Fatal(err)
			}
			// One event, one delivery each, ended (or not) as named.
			deliver := func(msgID string, at time.Time, state string) int64 {
				t.Helper()
				if err := st.AddEvent(ctx, msgID, webhooks.SubscriberCreated, []byte(`{}`), at); err != nil {
					t.Fatal(err)
				}
				evs, err := st.Undispatched(ctx, 1)
				if err != nil || len(evs) != 1 {
					t.Fatalf("Undispatched = %v, %v", evs, err)
				}
				ids, err := st.FanOut(ctx, evs[0], at)
				if err != nil || len(ids) != 1 {
					t.Fatalf("FanOut = %v, %v", ids, err)
				}
				if err := st.MarkDispatched(ctx, evs[0].ID, at); err != nil {
					t.Fatal(err)
				}
				if state != "pending" {
					if err := st.RecordAttempt(ctx, ids[0], webhooks.Attempt{At: at, Status: 200}, state); err != nil {
						t.Fatal(err)
					}
				}
				return ids[0]
			}
			oldDelivered := deliver("msg_old_delivered", old, "delivered")
			oldPending := deliver("msg_old_pending", old, "pending")
			oldFailed := deliver("msg_old_failed", old, "failed")
			newDelivered := deliver("msg_new_delivered", recent, "delivered")
			// An old event never dispatched stays in the outbox.
			if err := st.AddEvent(ctx, "msg_old_waiting", webhooks.SubscriberCreated, []byte(`{}`), old); err != nil {
				t.Fatal(err)
			}

			nd, ne, err := st.Trim(ctx, cutoff)
			if err != nil || nd != 1 || ne != 1 {
				t.Fatalf("Trim = %d deliveries, %d events, %v; want 1 and 1", nd, ne, err)
			}
			ds, err := st.Deliveries(ctx, ep.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			kept := map[int64]bool{}
			for _, d := range ds {
				kept[d.ID] = true
			}
			if kept[oldDelivered] || !kept[oldPending] || !kept[oldFailed] || !kept[newDelivered] || len(ds) != 3 {
				t.Errorf("kept %v; want the old pending and failed and the new delivered, not the old delivered", kept)
			}
			if as, _ := st.Attempts(ctx, oldDelivered); len(as) != 0 {
				t.Errorf("the trimmed delivery's attempts stayed: %+v", as)
			}
			if as, _ := st.Attempts(ctx, oldFailed); len(as) != 1 {
				t.Errorf("the failed delivery's attempts: %+v, want its one", as)
			}
			if evs, _ := st.Undispatched(ctx, 10); len(evs) != 1 {
				t.Errorf("undispatched events after Trim: %+v, want the old one kept", evs)
			}
			if nd, ne, err := st.Trim(ctx, cutoff); err != nil || nd != 0 || ne != 0 {
				t.Errorf("second Trim = %d, %d, %v; want nothing", nd, ne, err)
			}
		})
	}
}
