package subscribers_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
)

func TestFeedbackEvents(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, eng)
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "fb@example.jp"})
			now := e.clock.Now()
			evs := []subscribers.FeedbackEvent{
				{ReportKey: "r1", Seq: 0, ReceivedAt: now.Add(-8 * 24 * time.Hour), Kind: "soft", Status: "4.2.2", SubscriberID: sub.ID, SendID: 3, MatchedBy: "return-path"},
				{ReportKey: "r2", Seq: 0, ReceivedAt: now.Add(-2 * time.Hour), Kind: "soft", Status: "4.4.1", SubscriberID: sub.ID, SendID: 5, MatchedBy: "return-path"},
				{ReportKey: "r2", Seq: 1, ReceivedAt: now.Add(-2 * time.Hour), Kind: "policy", Status: "5.7.26", Auth: true, Domain: "gmail.com"}, // matched no copy
				{ReportKey: "r3", Kind: "complaint", Status: "abuse", SubscriberID: sub.ID, SendID: 5, Detail: strings.Repeat("長", 500), MatchedBy: "message-id"},
			}
			n, err := e.store.RecordFeedback(ctx, evs)
			if err != nil || n != 4 {
				t.Fatalf("RecordFeedback = %d, %v", n, err)
			}
			// Idempotent per (report, seq).
			if n, err := e.store.RecordFeedback(ctx, evs[1:3]); err != nil || n != 0 {
				t.Errorf("recording again = %d, %v; want 0 new", n, err)
			}
			if seen, err := e.store.FeedbackSeen(ctx, "r2"); err != nil || !seen {
				t.Errorf("FeedbackSeen(r2) = %v, %v", seen, err)
			}
			if seen, _ := e.store.FeedbackSeen(ctx, "r9"); seen {
				t.Error("FeedbackSeen of an unknown report")
			}
			// Bad input records nothing.
			for _, bad := range []subscribers.FeedbackEvent{{ReportKey: "x", Kind: "bogus"}, {Kind: "hard"}} {
				if _, err := e.store.RecordFeedback(ctx, []subscribers.FeedbackEvent{{ReportKey: "ok", Kind: "hard"}, bad}); !errors.Is(err, subscribers.ErrInvalid) {
					t.Errorf("RecordFeedback(%+v) = %v; want ErrInvalid", bad, err)
				}
			}
			if seen, _ := e.store.FeedbackSeen(ctx, "ok"); seen {
				t.Error("a failed batch left an event behind")
			}

			all, err := e.store.FeedbackEvents(ctx, subscribers.FeedbackQuery{})
			if err != nil || len(all) != 4 || all[0].ReportKey != "r3" || all[3].ReportKey != "r1" {
				t.Fatalf("FeedbackEvents = %+v, %v; want 4, newest first", all, err)
			}
			if all[0].ReceivedAt != now || len(all[0].Detail) > 1000 || !strings.HasPrefix(all[0].Detail, "長長") {
				t.Errorf("defaults: received %v, detail %d bytes", all[0].ReceivedAt, len(all[0].Detail))
			}
			// Paging: each page goes on after the last event of the one before,
			// in the same order, until every event was listed once.
			var paged []string
			for q := (subscribers.FeedbackQuery{Limit: 3}); ; {
				page, err := e.store.FeedbackEvents(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range page {
					paged = append(paged, ev.ReportKey+"/"+strconv.Itoa(ev.Seq))
				}
				if len(page) < q.Limit {
					break
				}
				q.BeforeID = page[len(page)-1].ID
			}
			var whole []string
			for _, ev := range all {
				whole = append(whole, ev.ReportKey+"/"+strconv.Itoa(ev.Seq))
			}
			if !slices.Equal(paged, whole) {
				t.Errorf("pages of 3 list %v; want %v", paged, whole)
			}
			pol, _ := e.store.FeedbackEvents(ctx, subscribers.FeedbackQuery{Kinds: []string{"policy"}})
			if len(pol) != 1 || !pol[0].Auth || pol[0].SubscriberID != 0 || pol[0].Domain != "gmail.com" {
				t.Errorf("policy events = %+v", pol)
			}
			recent, _ := e.store.FeedbackEvents(ctx, subscribers.FeedbackQuery{Since: now.Add(-24 * time.Hour), SubscriberID: sub.ID, Limit: 1})
			if len(recent) != 1 || recent[0].ReportKey != "r3" {
				t.Errorf("recent events of the reader = %+v", recent)
			}

			sends, err := e.store.SoftBouncedSends(ctx, sub.ID)
			if err != nil || !slices.Equal(sends, []int64{3, 5}) {
				t.Errorf("SoftBouncedSends = %v, %v", sends, err)
			}
			tot, err := e.store.FeedbackTotals(ctx, now.Add(-7*24*time.Hour), now.Add(time.Second))
			// Matched events and unmatched ones (r2's policy refusal) apart.
			if err != nil || tot.ByKind["complaint"] != 1 || tot.ByKind["soft"] != 1 || tot.Auth != 0 || tot.ByKind["policy"] != 0 ||
				tot.Unmatched["policy"] != 1 || tot.UnmatchedAuth != 1 || len(tot.Unmatched) != 1 {
				t.Errorf("FeedbackTotals = %+v, %v", tot, err)
			}
		})
	}
}
