package subscribers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

var ctx = context.Background()

func recipients(tb testing.TB, s *subscribers.Store, q subscribers.RecipientQuery) []subscribers.Recipient {
	tb.Helper()
	var out []subscribers.Recipient
	for r, err := range s.Recipients(ctx, q) {
		if err != nil {
			tb.Fatalf("Recipients: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func ids(rs []subscribers.Recipient) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestAddNormalisesAndDefaults(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "  Hanako.Y@Example.JP\t", Name: " 花子 "})
			if sub.Email != "Hanako.Y@example.jp" {
				t.Errorf("Email = %q, want local part kept and domain lower-cased", sub.Email)
			}
			if sub.Name != "花子" || sub.Status != subscribers.Pending {
				t.Errorf("Name, Status = %q, %q", sub.Name, sub.Status)
			}
			if sub.Prefs.Key() != audience.All().Key() {
				t.Errorf("Prefs = %v, want all", sub.Prefs)
			}
			if !slices.Equal(sub.Lists, []string{"monthly"}) {
				t.Errorf("Lists = %v", sub.Lists)
			}
			if len(sub.PublicID) != 22 || strings.ContainsAny(sub.PublicID, "+/=") {
				t.Errorf("PublicID %q is not 22 base64url characters", sub.PublicID)
			}
			if !sub.CreatedAt.Equal(e.clock.Now()) {
				t.Errorf("CreatedAt = %v, want the injected clock", sub.CreatedAt)
			}
			// Lookups by every key.
			for name, get := range map[string]func() (subscribers.Subscriber, error){
				"Get":           func() (subscribers.Subscriber, error) { return e.store.Get(ctx, sub.ID) },
				"GetByPublicID": func() (subscribers.Subscriber, error) { return e.store.GetByPublicID(ctx, sub.PublicID) },
				"FindByEmail":   func() (subscribers.Subscriber, error) { return e.store.FindByEmail(ctx, "hanako.y@EXAMPLE.jp ") },
			} {
				got, err := get()
				if err != nil || got.ID != sub.ID {
					t.Errorf("%s = %v, %v", name, got.ID, err)
				}
			}
			if _, err := e.store.Get(ctx, 999); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("Get(999) = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestAddValidationListsEveryProblem(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			bad := audience.Prefs{Regions: []audience.Region{"mars"}, Topics: []audience.Topic{"Bad Topic"}}
			_, err := e.store.Add(ctx, subscribers.NewSubscriber{
				Email: "no-at-sign", Name: "evil\r\nBcc: x", Prefs: &bad, Lists: []string{"nope"}, Method: "fax",
			})
			var ve *subscribers.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, subscribers.ErrInvalid) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			fields := map[string]bool{}
			for _, p := range ve.Problems {
				fields[p.Field] = true
			}
			for _, f := range []string{"email", "name", "regions", "topics", "lists", "method"} {
				if !fields[f] {
					t.Errorf("no problem reported for %s in %v", f, err)
				}
			}
			if strings.Contains(err.Error(), "no-at-sign") {
				t.Errorf("error repeats the address: %v", err)
			}
		})
	}
}

func TestAddAPI(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			consent := &subscribers.Consent{At: e.clock.Now().Add(-time.Hour), FormVersion: "paper-2025", Text: "同意します"}
			sub, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "a@example.jp", Method: subscribers.API, Consent: consent})
			if err != nil {
				t.Fatal(err)
			}
			if sub.Status != subscribers.Active {
				t.Errorf("API add with consent: status %s, want active", sub.Status)
			}
			cs, _ := e.store.Consents(ctx, sub.ID)
			if len(cs) != 1 || cs[0].Method != subscribers.API || cs[0].TextSHA256 != subscribers.HashText("同意します") {
				t.Errorf("consents = %+v", cs)
			}
			noConsent, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "b@example.jp", Method: subscribers.API})
			if err != nil || noConsent.Status != subscribers.Pending {
				t.Errorf("API add without consent: %v, %v; want pending", noConsent.Status, err)
			}
			// One subscriber per mailbox, whatever the case of the local part.
			if _, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "A@EXAMPLE.JP", Method: subscribers.API}); !errors.Is(err, subscribers.ErrExists) {
				t.Errorf("second API add = %v, want ErrExists", err)
			}
		})
	}
}

// Checklist 24: a pending subscriber gets nothing; 29: the consent record
// at confirmation; 25 (store part): single use and expiry.
func TestDoubleOptIn(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "taro@example.jp", Cause: "web signup"})
			if got := recipients(t, e.store, subscribers.RecipientQuery{}); len(got) != 0 {
				t.Fatalf("pending subscriber is a recipient: %v", got)
			}
			tok, err := e.store.ConfirmToken(ctx, sub.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tok, "taro") || strings.Contains(tok, "example") {
				t.Fatalf("token %q reveals the address", tok)
			}
			// Wrong purpose: a confirm token does not unsubscribe, and vice versa.
			if _, err := e.store.UnsubscribeByToken(ctx, tok, "x"); !errors.Is(err, token.ErrWrongPurpose) {
				t.Errorf("confirm token used to unsubscribe: %v", err)
			}
			e.clock.Advance(time.Hour)
			consent := subscribers.Consent{FormVersion: "signup-2026-02", Text: "AI政策動向を毎月お送りします。", IP: "2001:db8::1", UserAgent: "Mozilla/5.0"}
			got, err := e.store.Confirm(ctx, tok, consent)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != subscribers.Active {
				t.Fatalf("status after confirm = %s", got.Status)
			}
			cs, err := e.store.Consents(ctx, sub.ID)
			if err != nil || len(cs) != 1 {
				t.Fatalf("consents = %v, %v", cs, err)
			}
			c := cs[0]
			if !c.At.Equal(e.clock.Now()) || c.Method != subscribers.DoubleOptIn || c.FormVersion != "signup-2026-02" ||
				c.TextSHA256 != subscribers.HashText(consent.Text) || c.IP != "2001:db8::1" || c.UserAgent != "Mozilla/5.0" ||
				!slices.Equal(c.Lists, []string{"monthly"}) || c.Prefs.Key() != audience.All().Key() {
				t.Errorf("consent record = %+v", c)
			}
			if r := recipients(t, e.store, subscribers.RecipientQuery{}); len(r) != 1 || r[0].ID != sub.ID {
				t.Errorf("recipients after confirm = %v", r)
			}
			// Single use.
			if _, err := e.store.Confirm(ctx, tok, consent); !errors.Is(err, token.ErrUsed) {
				t.Errorf("second confirm = %v, want ErrUsed", err)
			}
			// Expiry: a fresh token at +49h fails.
			tok2, _ := e.store.ConfirmToken(ctx, sub.ID, "")
			e.clock.Advance(49 * time.Hour)
			if _, err := e.store.Confirm(ctx, tok2, consent); !errors.Is(err, token.ErrExpired) {
				t.Errorf("confirm at +49h = %v, want ErrExpired", err)
			}
			hist, _ := e.store.History(ctx, sub.ID)
			if len(hist) != 2 || hist[0].To != subscribers.Pending || hist[0].Cause != "web signup" ||
				hist[1].From != subscribers.Pending || hist[1].To != subscribers.Active {
				t.Errorf("history = %+v", hist)
			}
		})
	}
}

func TestWebSignupOfKnownAddressChangesNothing(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			a := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp"})
			again := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp", Name: "someone else"})
			if again.ID != a.ID || again.Status != subscribers.Active || again.Name != "" {
				t.Errorf("re-signup changed the subscriber: %+v", again)
			}
		})
	}
}

// Table test of the status rules through the public API: nothing but a
// fresh double opt-in brings an address back.
func TestStatusTransitions(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			type step func(e *env, s subscribers.Subscriber) error
			unsubscribe := func(e *env, s subscribers.Subscriber) error { return e.store.Unsubscribe(ctx, s.ID, "", "test") }
			bounce := func(e *env, s subscribers.Subscriber) error {
				return e.store.MarkBounced(ctx, s.ID, "5.1.1 user unknown")
			}
			complain := func(e *env, s subscribers.Subscriber) error { return e.store.MarkComplained(ctx, s.ID, "ARF abuse") }
			erase := func(e *env, s subscribers.Subscriber) error { return e.store.Erase(ctx, s.ID, "request") }
			apiAdd := func(e *env, s subscribers.Subscriber) error {
				_, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "x@example.jp", Method: subscribers.API,
					Consent: &subscribers.Consent{At: e.clock.Now()}})
				return err
			}
			importActive := func(e *env, s subscribers.Subscriber) error {
				_, err := e.store.Import(ctx, strings.NewReader("email,status,consent_at\nx@example.jp,active,2026-01-01\n"), subscribers.ImportOptions{})
				return err
			}
			optIn := func(e *env, s subscribers.Subscriber) error {
				n, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "x@example.jp", Method: subscribers.DoubleOptIn})
				if err != nil {
					return err
				}
				tok, err := e.store.ConfirmToken(ctx, n.ID, "")
				if err != nil {
					return err
				}
				_, err = e.store.Confirm(ctx, tok, subscribers.Consent{})
				return err
			}
			cases := []struct {
				name  string
				steps []step
				want  subscribers.Status
			}{
				{"PendingToUnsubscribed", []step{unsubscribe}, subscribers.Unsubscribed},
				{"ActiveToBounced", []step{optIn, bounce}, subscribers.Bounced},
				{"ActiveToComplained", []step{optIn, complain}, subscribers.Complained},
				{"UnsubscribedStaysOnAPIAdd", []step{optIn, unsubscribe, apiAdd}, subscribers.Unsubscribed},
				{"UnsubscribedStaysOnImport", []step{optIn, unsubscribe, importActive}, subscribers.Unsubscribed},
				{"UnsubscribedBackByOptIn", []step{optIn, unsubscribe, optIn}, subscribers.Active},
				{"BouncedStaysOnImport", []step{optIn, bounce, importActive}, subscribers.Bounced},
				{"BouncedBackByOptIn", []step{optIn, bounce, optIn}, subscribers.Active},
				{"ComplainedNotBouncedLater", []step{optIn, complain, bounce}, subscribers.Complained},
				{"ComplainedBackByOptIn", []step{optIn, complain, optIn}, subscribers.Active},
				{"BouncedNotUnsubscribed", []step{optIn, bounce, unsubscribe}, subscribers.Bounced},
				{"UnsubscribeTwice", []step{optIn, unsubscribe, unsubscribe}, subscribers.Unsubscribed},
				{"ErasedBackByOptIn", []step{optIn, erase, optIn}, subscribers.Active},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e := newEnv(t, eng)
					s := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "x@example.jp"})
					for _, st := range c.steps {
						if err := st(e, s); err != nil && !errors.Is(err, subscribers.ErrExists) && !errors.Is(err, subscribers.ErrSuppressed) {
							t.Fatal(err)
						}
						if cur, err := e.store.FindByEmail(ctx, "x@example.jp"); err == nil {
							s = cur
						}
					}
					if s.Status != c.want {
						t.Errorf("status = %s, want %s", s.Status, c.want)
					}
				})
			}
		})
	}
}

func TestUnsubscribeListsAndTokens(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			if _, err := e.store.CreateList(ctx, "alerts", "速報"); err != nil {
				t.Fatal(err)
			}
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp", Lists: []string{"monthly", "alerts"}})
			if !slices.Equal(sub.Lists, []string{"alerts", "monthly"}) {
				t.Fatalf("Lists = %v", sub.Lists)
			}
			// Checklist 23 (store part): a token minted before a key rotation still
			// unsubscribes afterwards.
			tok, err := e.store.UnsubscribeToken(sub.PublicID, "alerts")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tok, "a@example.jp") || strings.Contains(tok, "."+string(rune('0'+sub.ID))+".") {
				t.Fatalf("token %q reveals the address or id", tok)
			}
			e.clock.Advance(400 * 24 * time.Hour)
			rotated := e.reopen(t, token.Key{ID: "k3", Secret: []byte("third-secret-0123456789abcdefgh")}, testKeys[0], testKeys[1])
			got, err := rotated.UnsubscribeByToken(ctx, tok, "one-click")
			if err != nil {
				t.Fatalf("unsubscribe with a pre-rotation token: %v", err)
			}
			if got.Status != subscribers.Active || !slices.Equal(got.Lists, []string{"monthly"}) {
				t.Errorf("after leaving alerts: %s %v", got.Status, got.Lists)
			}
			if r := recipients(t, rotated, subscribers.RecipientQuery{List: "alerts"}); len(r) != 0 {
				t.Errorf("still a recipient of alerts: %v", r)
			}
			if r := recipients(t, rotated, subscribers.RecipientQuery{List: "monthly"}); len(r) != 1 {
				t.Errorf("not a recipient of monthly any more: %v", r)
			}
			// Idempotent.
			if _, err := rotated.UnsubscribeByToken(ctx, tok, "one-click"); err != nil {
				t.Errorf("second one-click: %v", err)
			}
			// Leaving the last list makes the subscriber unsubscribed.
			if err := rotated.Unsubscribe(ctx, sub.ID, "monthly", "link"); err != nil {
				t.Fatal(err)
			}
			got, _ = rotated.Get(ctx, sub.ID)
			if got.Status != subscribers.Unsubscribed || len(got.Lists) != 0 {
				t.Errorf("after leaving every list: %s %v", got.Status, got.Lists)
			}
			// A key that is no longer in the ring: rejected.
			onlyNew := e.reopen(t, token.Key{ID: "k9", Secret: []byte("ninth-secret-0123456789abcdefgh")})
			if _, err := onlyNew.UnsubscribeByToken(ctx, tok, "x"); !errors.Is(err, token.ErrUnknownKey) {
				t.Errorf("token of a retired key = %v, want ErrUnknownKey", err)
			}
		})
	}
}

// Checklist 19 (store part): unsubscribing after erasure succeeds.
func TestUnsubscribeAfterErase(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp"})
			tok, _ := e.store.UnsubscribeToken(sub.PublicID, "monthly")
			if err := e.store.Erase(ctx, sub.ID, "request"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.UnsubscribeByToken(ctx, tok, "one-click"); err != nil {
				t.Errorf("one-click after erasure: %v", err)
			}
		})
	}
}

func TestRecipientsFilter(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			P := func(regions, topics string) *audience.Prefs {
				r, err := audience.ParseRegions(regions)
				if err != nil {
					t.Fatal(err)
				}
				tp, err := audience.ParseTopics(topics)
				if err != nil {
					t.Fatal(err)
				}
				return &audience.Prefs{Regions: r, Topics: tp}
			}
			subs := map[string]*audience.Prefs{
				"jp-policy":     P("jp", "policy"),
				"eu-reports":    P("eu", "reports"),
				"all":           nil,
				"us-semis":      P("us", "semiconductors"),
				"asia-nothing":  P("asia", ""),
				"nothing":       P("", ""),
				"eu-policy-gpu": P("eu,intl", "policy,gpu"),
			}
			idOf := map[string]int64{}
			for name, p := range subs {
				s := mustActive(t, e.store, subscribers.NewSubscriber{Email: name + "@example.jp", Prefs: p})
				idOf[name] = s.ID
			}
			pending := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "pending@example.jp"})
			_ = pending
			cases := []struct {
				name   string
				filter *audience.Prefs
				want   []string
			}{
				{"Everyone", nil, []string{"jp-policy", "eu-reports", "all", "us-semis", "asia-nothing", "nothing", "eu-policy-gpu"}},
				{"JPPolicy", P("jp", "policy"), []string{"jp-policy", "all"}},
				{"EUAny", P("eu", ""), []string{"eu-reports", "all", "eu-policy-gpu"}},
				{"AnyReports", P("", "reports"), []string{"eu-reports", "all"}},
				{"CustomTag", P("us", "semiconductors"), []string{"us-semis"}},
				{"CustomOrStandard", P("eu,us", "gpu,reports"), []string{"eu-reports", "all", "eu-policy-gpu"}},
				{"NoMatch", P("asia", "reports"), []string{"all"}},
				{"IntlPolicy", P("intl", "policy,activities"), []string{"all", "eu-policy-gpu"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					var want []int64
					for _, n := range c.want {
						want = append(want, idOf[n])
					}
					slices.Sort(want)
					for _, bs := range []int{1, 2, 1000} {
						got := recipients(t, e.store, subscribers.RecipientQuery{Filter: c.filter, BatchSize: bs})
						if !slices.Equal(ids(got), want) {
							t.Errorf("batch %d: got %v, want %v (%v)", bs, ids(got), want, c.want)
						}
						// Every recipient really wants something the filter has
						// (the same rule as audience.Prefs.Wants).
						for _, r := range got {
							if c.filter != nil && !intersects(r.Prefs, *c.filter) {
								t.Errorf("recipient %d prefs %v do not intersect %v", r.ID, r.Prefs, *c.filter)
							}
						}
					}
				})
			}
			// Custom tags come back in Prefs.
			for _, r := range recipients(t, e.store, subscribers.RecipientQuery{}) {
				want := subs[strings.TrimSuffix(r.Email, "@example.jp")]
				if want == nil {
					all := audience.All()
					want = &all
				}
				if r.Prefs.Key() != want.Key() {
					t.Errorf("%s prefs %q, want %q", r.Email, r.Prefs.Key(), want.Key())
				}
			}
		})
	}
}

func intersects(p, f audience.Prefs) bool {
	regionOK := len(f.Regions) == 0
	for _, r := range f.Regions {
		regionOK = regionOK || slices.Contains(p.Regions, r)
	}
	topicOK := len(f.Topics) == 0
	for _, tp := range f.Topics {
		topicOK = topicOK || slices.Contains(p.Topics, tp)
	}
	return regionOK && topicOK
}

func TestRecipientsResumeAndStop(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			var all []int64
			for i := range 25 {
				s := mustActive(t, e.store, subscribers.NewSubscriber{Email: "u" + string(rune('a'+i)) + "@example.jp"})
				all = append(all, s.ID)
			}
			// A bounce in the middle disappears from the stream.
			if err := e.store.MarkBounced(ctx, all[10], "5.1.1"); err != nil {
				t.Fatal(err)
			}
			live := slices.Delete(slices.Clone(all), 10, 11)
			// Stop after 7, resume after the last id handled.
			var first []int64
			for r, err := range e.store.Recipients(ctx, subscribers.RecipientQuery{BatchSize: 4}) {
				if err != nil {
					t.Fatal(err)
				}
				first = append(first, r.ID)
				if len(first) == 7 {
					break
				}
			}
			rest := ids(recipients(t, e.store, subscribers.RecipientQuery{BatchSize: 4, AfterID: first[len(first)-1]}))
			if got := append(first, rest...); !slices.Equal(got, live) {
				t.Errorf("resumed stream = %v, want %v", got, live)
			}
			if _, err := e.store.GetMany(ctx, nil); err != nil {
				t.Error(err)
			}
			// Unknown list: an error, yielded once.
			n := 0
			for _, err := range e.store.Recipients(ctx, subscribers.RecipientQuery{List: "nope"}) {
				n++
				if !errors.Is(err, subscribers.ErrNotFound) {
					t.Errorf("unknown list: %v", err)
				}
			}
			if n != 1 {
				t.Errorf("unknown list yielded %d times", n)
			}
		})
	}
}

func TestGetMany(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			a := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp", Name: "A"})
			b := mustActive(t, e.store, subscribers.NewSubscriber{Email: "b@example.jp"})
			c := mustActive(t, e.store, subscribers.NewSubscriber{Email: "c@example.jp"})
			if err := e.store.Unsubscribe(ctx, b.ID, "", "one-click"); err != nil {
				t.Fatal(err)
			}
			if err := e.store.Erase(ctx, c.ID, ""); err != nil {
				t.Fatal(err)
			}
			idsIn := []int64{a.ID, b.ID, c.ID, 12345}
			for range 600 { // more than one IN chunk
				idsIn = append(idsIn, a.ID)
			}
			got, err := e.store.GetMany(ctx, idsIn)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 {
				t.Fatalf("got %d subscribers", len(got))
			}
			if !got[a.ID].Sendable("monthly") || got[a.ID].Email != "a@example.jp" || got[a.ID].Name != "A" {
				t.Errorf("a = %+v", got[a.ID])
			}
			if got[b.ID].Sendable("monthly") || got[b.ID].Status != subscribers.Unsubscribed {
				t.Errorf("b = %+v", got[b.ID])
			}
			if got[c.ID].Sendable("monthly") || got[c.ID].Email != "" || got[c.ID].ErasedAt.IsZero() {
				t.Errorf("c = %+v", got[c.ID])
			}
		})
	}
}

func TestUpdatePrefs(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			s := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp"})
			p := audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: []audience.Topic{audience.Policy, "gpu"}}
			name := "新しい名前"
			got, err := e.store.Update(ctx, s.ID, subscribers.Update{Name: &name, Prefs: &p})
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != name || got.Prefs.Key() != "eu|policy,gpu" {
				t.Errorf("after update: %q %q", got.Name, got.Prefs.Key())
			}
			bad := "a\nb"
			if _, err := e.store.Update(ctx, s.ID, subscribers.Update{Name: &bad}); !errors.Is(err, subscribers.ErrInvalid) {
				t.Errorf("CR/LF in name: %v", err)
			}
			// A preferences token names the subscriber.
			tok, _ := e.store.PreferencesToken(s.PublicID, "monthly")
			who, _, err := e.store.VerifyToken(ctx, tok, token.Preferences)
			if err != nil || who.ID != s.ID {
				t.Errorf("VerifyToken = %v, %v", who.ID, err)
			}
			if _, _, err := e.store.VerifyToken(ctx, tok, token.Unsubscribe); !errors.Is(err, token.ErrWrongPurpose) {
				t.Errorf("preferences token as unsubscribe: %v", err)
			}
		})
	}
}

func TestListsAndSearch(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			mustActive(t, e.store, subscribers.NewSubscriber{Email: "sato@example.jp", Name: "佐藤"})
			mustAdd(t, e.store, subscribers.NewSubscriber{Email: "suzuki@example.jp", Name: "鈴木"})
			mustActive(t, e.store, subscribers.NewSubscriber{Email: "tanaka@example.com", Name: "100%_tanaka"})
			if _, err := e.store.CreateList(ctx, "monthly", "dup"); !errors.Is(err, subscribers.ErrExists) {
				t.Errorf("duplicate list: %v", err)
			}
			if _, err := e.store.CreateList(ctx, "Bad Key", ""); !errors.Is(err, subscribers.ErrInvalid) {
				t.Errorf("bad list key: %v", err)
			}
			lists, err := e.store.Lists(ctx)
			if err != nil || len(lists) != 1 || lists[0].Key != "monthly" || lists[0].Active != 2 || lists[0].Total != 3 {
				t.Fatalf("Lists = %+v, %v", lists, err)
			}
			for _, c := range []struct {
				q    subscribers.ListQuery
				want int
			}{
				{subscribers.ListQuery{}, 3},
				{subscribers.ListQuery{Search: "example.jp"}, 2},
				{subscribers.ListQuery{Search: "鈴木"}, 1},
				{subscribers.ListQuery{Search: "100%_"}, 1},
				{subscribers.ListQuery{Search: "%"}, 1},
				{subscribers.ListQuery{Status: subscribers.Pending}, 1},
				{subscribers.ListQuery{List: "monthly", Status: subscribers.Active}, 2},
				{subscribers.ListQuery{Limit: 2}, 2},
				{subscribers.ListQuery{AfterID: 2}, 1},
			} {
				got, err := e.store.List(ctx, c.q)
				if err != nil || len(got) != c.want {
					t.Errorf("List(%+v) = %d, %v; want %d", c.q, len(got), err, c.want)
				}
			}
		})
	}
}

// Writers and a streaming reader at once: no error, no race, and the
// stream stays in id order.
func TestConcurrentUse(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			for i := range 50 {
				mustActive(t, e.store, subscribers.NewSubscriber{Email: "base" + strconv.Itoa(i) + "@example.jp"})
			}
			errc := make(chan error, 8)
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 20 {
						s, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + "@example.jp",
							Method: subscribers.API, Consent: &subscribers.Consent{At: e.clock.Now()}})
						if err != nil {
							errc <- err
							return
						}
						if i%3 == 0 {
							if err := e.store.Unsubscribe(ctx, s.ID, "", "test"); err != nil {
								errc <- err
								return
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					var last int64
					for r, err := range e.store.Recipients(ctx, subscribers.RecipientQuery{BatchSize: 7}) {
						if err != nil {
							errc <- err
							return
						}
						if r.ID <= last {
							errc <- fmt.Errorf("out of order: %d after %d", r.ID, last)
							return
						}
						last = r.ID
					}
				}
			}()
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			if got := len(recipients(t, e.store, subscribers.RecipientQuery{})); got != 50+3*13 {
				t.Errorf("%d recipients, want %d", got, 50+3*13)
			}
		})
	}
}

// A reader who left and signs up again gets the name and preferences of
// the new form once they confirm, and the consent record describes that
// choice; until then what they had is kept. The same on both engines.
func TestReturningReaderTakesNewChoiceOnConfirm(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			old := audience.Prefs{Regions: []audience.Region{audience.JP}, Topics: []audience.Topic{audience.Policy}}
			sub := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "kaeru@example.jp", Name: "古い名前", Prefs: &old,
				Method: subscribers.API, Consent: &subscribers.Consent{At: e.clock.Now(), FormVersion: "api", TextSHA256: subscribers.HashText("x")}})
			if err := e.store.Unsubscribe(ctx, sub.ID, "", "test"); err != nil {
				t.Fatal(err)
			}
			nw := audience.Prefs{Regions: []audience.Region{audience.US, audience.EU}, Topics: []audience.Topic{audience.Reports}}
			again := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "kaeru@example.jp", Name: "新しい名前", Prefs: &nw})
			if again.ID != sub.ID || again.Name != "古い名前" || again.Prefs.Key() != old.Key() {
				t.Fatalf("before confirming: %+v, want the old choice kept", again)
			}
			tok, err := e.store.ConfirmToken(ctx, sub.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.store.Confirm(ctx, tok, subscribers.Consent{FormVersion: "signup-2026-02", Text: "毎月お送りします。"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != subscribers.Active || got.Name != "新しい名前" || got.Prefs.Key() != nw.Key() {
				t.Errorf("after confirming: %s %q %s, want active 新しい名前 %s", got.Status, got.Name, got.Prefs.Key(), nw.Key())
			}
			cs, _ := e.store.Consents(ctx, sub.ID)
			if len(cs) == 0 || cs[len(cs)-1].Prefs.Key() != nw.Key() {
				t.Errorf("the consent record describes %v, want the applied choice %s", cs, nw.Key())
			}
			// The list setting for readers with nothing this month.
			if skip, err := e.store.ListSkipsNothing(ctx, "monthly"); err != nil || skip {
				t.Errorf("default skip_nothing = %v, %v; want false", skip, err)
			}
			if err := e.store.SetListSkipsNothing(ctx, "monthly", true); err != nil {
				t.Fatal(err)
			}
			if skip, _ := e.store.ListSkipsNothing(ctx, "monthly"); !skip {
				t.Error("skip_nothing not kept")
			}
			if err := e.store.SetListSkipsNothing(ctx, "nope", true); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("unknown list: %v, want ErrNotFound", err)
			}
			// Counting clicks (package clicks): off by default, kept apart
			// from the other setting.
			if on, err := e.store.ListCountsClicks(ctx, "monthly"); err != nil || on {
				t.Errorf("default count_clicks = %v, %v; want false", on, err)
			}
			if err := e.store.SetListCountsClicks(ctx, "monthly", true); err != nil {
				t.Fatal(err)
			}
			if on, _ := e.store.ListCountsClicks(ctx, "monthly"); !on {
				t.Error("count_clicks not kept")
			}
			if skip, _ := e.store.ListSkipsNothing(ctx, "monthly"); !skip {
				t.Error("setting count_clicks changed skip_nothing")
			}
			if err := e.store.SetListCountsClicks(ctx, "nope", true); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("unknown list: %v, want ErrNotFound", err)
			}
			if _, err := e.store.ListCountsClicks(ctx, "nope"); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("unknown list: %v, want ErrNotFound", err)
			}
		})
	}
}
