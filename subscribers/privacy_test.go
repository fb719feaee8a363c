package subscribers_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
)

// dump returns every value of every table of the database as text, to
// search for personal data.
func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil { // PostgreSQL
		rows, err = db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	}
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+tbl+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for _, v := range vals {
				switch v := v.(type) {
				case string:
					b.WriteString(v)
				case []byte:
					b.Write(v)
				}
				b.WriteByte('|')
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

// Checklist 32: erasure leaves only a suppression entry; an import cannot
// bring the address back; a fresh double opt-in can.
func TestErase(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "Hanako@Example.jp", Name: "山田花子",
				Prefs: nil, Cause: "web signup"})
			if err := e.store.MarkBounced(ctx, sub.ID, "4.2.2 mailbox full for Hanako@Example.jp"); err != nil {
				t.Fatal(err)
			}
			before := dump(t, e.db)
			for _, pii := range []string{"Hanako@Example.jp", "山田花子", "192.0.2.1"} {
				if !strings.Contains(before, pii) {
					t.Fatalf("test setup: %q not stored before erasure", pii)
				}
			}
			if err := e.store.Erase(ctx, sub.ID, "GDPR Art. 17 request #12"); err != nil {
				t.Fatal(err)
			}
			after := strings.ToLower(dump(t, e.db))
			for _, pii := range []string{"hanako", "山田花子", "192.0.2.1", "example.jp", "i agree"} {
				if strings.Contains(after, strings.ToLower(pii)) {
					t.Errorf("personal data %q survives erasure", pii)
				}
			}
			var n int
			e.db.QueryRow(`SELECT COUNT(*) FROM suppressions WHERE reason IN ('erased', 'bounced')`).Scan(&n)
			if n != 1 {
				t.Errorf("%d suppression entries, want 1 (the bounce's, kept)", n)
			}
			if ok, _ := e.store.IsSuppressed(ctx, "hanako@example.JP"); !ok {
				t.Error("erased address is not suppressed (any case)")
			}
			got, err := e.store.Get(ctx, sub.ID)
			if err != nil || got.Email != "" || got.Name != "" || got.ErasedAt.IsZero() || got.Sendable("monthly") {
				t.Errorf("tombstone = %+v, %v", got, err)
			}
			if err := e.store.Erase(ctx, sub.ID, ""); err != nil {
				t.Errorf("second erase: %v", err)
			}
			if _, err := e.store.ConfirmToken(ctx, sub.ID, ""); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("confirm token for an erased subscriber: %v", err)
			}

			// Import and API add are refused.
			res, err := e.store.Import(ctx, strings.NewReader("email,consent_at\nhanako@example.jp,2026-01-01\n"), subscribers.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Added != 0 || res.Skipped != 1 || len(res.Skips) != 1 || res.Skips[0].Row != 2 || !strings.Contains(res.Skips[0].Reason, "suppressed") {
				t.Errorf("import of an erased address: %+v", res)
			}
			if _, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "hanako@example.jp", Method: subscribers.API,
				Consent: &subscribers.Consent{At: e.clock.Now()}}); !errors.Is(err, subscribers.ErrSuppressed) {
				t.Errorf("API add of an erased address: %v", err)
			}
			// A fresh double opt-in succeeds and lifts the suppression.
			again := mustActive(t, e.store, subscribers.NewSubscriber{Email: "hanako@example.jp"})
			if again.ID == sub.ID || again.Status != subscribers.Active {
				t.Errorf("fresh opt-in: %+v", again)
			}
			if ok, _ := e.store.IsSuppressed(ctx, "hanako@example.jp"); ok {
				t.Error("still suppressed after a confirmed fresh opt-in")
			}
		})
	}
}

func TestSuppressionSurvivesRotation(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "c@example.jp"})
			if err := e.store.MarkComplained(ctx, sub.ID, "ARF"); err != nil {
				t.Fatal(err)
			}
			if err := e.store.Suppress(ctx, "only-bounced@example.jp", subscribers.ReasonBounced); err != nil {
				t.Fatal(err)
			}
			rotated := e.reopen(t, testKey3, testKeys[0], testKeys[1])
			for _, a := range []string{"c@example.jp", "only-bounced@example.jp"} {
				if ok, err := rotated.IsSuppressed(ctx, a); !ok || err != nil {
					t.Errorf("%s not suppressed after key rotation: %v", a, err)
				}
			}
			res, _ := rotated.Import(ctx, strings.NewReader("email\nonly-bounced@example.jp\n"), subscribers.ImportOptions{})
			if res.Skipped != 1 {
				t.Errorf("import of a suppressed address: %+v", res)
			}
			if err := e.store.Suppress(ctx, "x@example.jp", "whim"); !errors.Is(err, subscribers.ErrInvalid) {
				t.Errorf("unknown reason: %v", err)
			}
		})
	}
}

// Retiring a key: RekeySuppressions moves the entries whose address the
// store still has (bounced and complained readers) to the newest key and
// counts what stays under the old one (erased addresses, report-only
// addresses); after the old key leaves the ring, the moved entries still
// hold and only the counted ones are lost.
func TestRekeySuppressions(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng, testKeys[1]) // k1 only
			bounced := mustActive(t, e.store, subscribers.NewSubscriber{Email: "Bounced@Example.jp"})
			complained := mustActive(t, e.store, subscribers.NewSubscriber{Email: "complained@example.jp"})
			erased := mustActive(t, e.store, subscribers.NewSubscriber{Email: "erased@example.jp"})
			if err := e.store.MarkBounced(ctx, bounced.ID, "5.1.1"); err != nil {
				t.Fatal(err)
			}
			if err := e.store.MarkComplained(ctx, complained.ID, "ARF"); err != nil {
				t.Fatal(err)
			}
			if err := e.store.Erase(ctx, erased.ID, "request"); err != nil {
				t.Fatal(err)
			}
			if err := e.store.Suppress(ctx, "report-only@example.jp", subscribers.ReasonBounced); err != nil {
				t.Fatal(err)
			}

			rotated := e.reopen(t, testKeys[0], testKeys[1]) // k2 new, k1 old
			res, err := rotated.RekeySuppressions(ctx)
			if err != nil || res.Key != "k2" || res.Rekeyed != 2 || len(res.Remaining) != 1 || res.Remaining["k1"] != 2 {
				t.Fatalf("RekeySuppressions = %+v, %v; want 2 moved to k2 and 2 left under k1", res, err)
			}
			if again, err := rotated.RekeySuppressions(ctx); err != nil || again.Rekeyed != 0 || again.Remaining["k1"] != 2 {
				t.Errorf("second run = %+v, %v; want nothing moved", again, err)
			}

			retired := e.reopen(t, testKeys[0]) // k1 gone
			for addr, want := range map[string]bool{
				"bounced@example.jp": true, "complained@example.jp": true, // moved
				"erased@example.jp": false, "report-only@example.jp": false, // lost with k1, as counted
			} {
				if got, err := retired.IsSuppressed(ctx, addr); err != nil || got != want {
					t.Errorf("IsSuppressed(%s) after retiring k1 = %v, %v; want %v", addr, got, err, want)
				}
			}
		})
	}
}

// Checklist 33: a data export has the profile, preferences, consent
// records and status history, in a fixed JSON structure.
func TestExportJSON(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			sub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp", Name: "A", Cause: "web signup"})
			if err := e.store.Unsubscribe(ctx, sub.ID, "", "one-click"); err != nil {
				t.Fatal(err)
			}
			x, err := e.store.Export(ctx, sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			// The schema: every field required, no unknown field, types checked by
			// decoding strictly.
			var doc struct {
				FormatVersion int       `json:"format_version"`
				ExportedAt    time.Time `json:"exported_at"`
				Subscriber    struct {
					ID       int64  `json:"id"`
					PublicID string `json:"public_id"`
					Email    string `json:"email"`
					Name     string `json:"name"`
					Status   string `json:"status"`
					Prefs    struct {
						Regions []string `json:"regions"`
						Topics  []string `json:"topics"`
					} `json:"prefs"`
					Lists     []string  `json:"lists"`
					CreatedAt time.Time `json:"created_at"`
					UpdatedAt time.Time `json:"updated_at"`
				} `json:"subscriber"`
				Consents []struct {
					ID          int64     `json:"id"`
					At          time.Time `json:"at"`
					Method      string    `json:"method"`
					FormVersion string    `json:"form_version"`
					TextSHA256  string    `json:"text_sha256"`
					IP          string    `json:"ip"`
					UserAgent   string    `json:"user_agent"`
					Lists       []string  `json:"lists"`
					Prefs       struct {
						Regions []string `json:"regions"`
						Topics  []string `json:"topics"`
					} `json:"prefs"`
					RecordedAt time.Time `json:"recorded_at"`
				} `json:"consents"`
				StatusHistory []struct {
					At    time.Time `json:"at"`
					From  string    `json:"from"`
					To    string    `json:"to"`
					List  string    `json:"list"`
					Cause string    `json:"cause"`
				} `json:"status_history"`
				Suppressed bool `json:"suppressed"`
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("export does not match the schema: %v\n%s", err, b)
			}
			if doc.FormatVersion != 1 || doc.Subscriber.Email != "a@example.jp" || doc.Subscriber.Status != "unsubscribed" ||
				len(doc.Subscriber.Prefs.Regions) != 5 || len(doc.Subscriber.Prefs.Topics) != 3 {
				t.Errorf("profile: %+v", doc.Subscriber)
			}
			if len(doc.Consents) != 1 || doc.Consents[0].Method != "double_opt_in" || len(doc.Consents[0].TextSHA256) != 64 || doc.Consents[0].IP == "" {
				t.Errorf("consents: %+v", doc.Consents)
			}
			var tos []string
			for _, h := range doc.StatusHistory {
				tos = append(tos, h.To)
			}
			if strings.Join(tos, ",") != "pending,active,unsubscribed" || doc.StatusHistory[2].Cause != "one-click" {
				t.Errorf("history: %+v", doc.StatusHistory)
			}
			for _, k := range []string{`"subscriber"`, `"consents"`, `"status_history"`, `"prefs"`, `"regions"`} {
				if !bytes.Contains(b, []byte(k)) {
					t.Errorf("export lacks %s", k)
				}
			}
		})
	}
}

// Checklist 29 (retention): consent records stay for a month after the
// subscriber stops receiving mail, then may be purged unless on hold.
func TestConsentRetention(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			a := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp"})
			held := mustActive(t, e.store, subscribers.NewSubscriber{Email: "held@example.jp"})
			active := mustActive(t, e.store, subscribers.NewSubscriber{Email: "active@example.jp"})
			for _, s := range []subscribers.Subscriber{a, held} {
				if err := e.store.Unsubscribe(ctx, s.ID, "", "link"); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.store.SetLegalHold(ctx, held.ID, true); err != nil {
				t.Fatal(err)
			}
			count := func(id int64) int {
				cs, err := e.store.Consents(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return len(cs)
			}
			e.clock.Advance(29 * 24 * time.Hour)
			if n, err := e.store.PurgeConsents(ctx); n != 0 || err != nil || count(a.ID) != 1 {
				t.Fatalf("purge at +29d removed %d (%v)", n, err)
			}
			e.clock.Advance(3 * 24 * time.Hour)
			n, err := e.store.PurgeConsents(ctx)
			if err != nil || n != 1 {
				t.Fatalf("purge at +32d removed %d, %v; want 1", n, err)
			}
			if count(a.ID) != 0 || count(held.ID) != 1 || count(active.ID) != 1 {
				t.Errorf("after purge: a %d, held %d, active %d", count(a.ID), count(held.ID), count(active.ID))
			}
			if err := e.store.SetLegalHold(ctx, 9999, true); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("legal hold on a missing subscriber: %v", err)
			}
		})
	}
}

func TestPurgePending(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			old := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "old@example.jp"})
			confirmed := mustActive(t, e.store, subscribers.NewSubscriber{Email: "confirmed@example.jp"})
			e.clock.Advance(20 * 24 * time.Hour)
			recent := mustAdd(t, e.store, subscribers.NewSubscriber{Email: "recent@example.jp"})
			e.clock.Advance(11 * 24 * time.Hour)
			n, err := e.store.PurgePending(ctx, 30*24*time.Hour)
			if err != nil || n != 1 {
				t.Fatalf("PurgePending = %d, %v; want 1", n, err)
			}
			if _, err := e.store.Get(ctx, old.ID); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("old pending signup still there: %v", err)
			}
			for _, id := range []int64{confirmed.ID, recent.ID} {
				if _, err := e.store.Get(ctx, id); err != nil {
					t.Errorf("subscriber %d purged: %v", id, err)
				}
			}
			if strings.Contains(dump(t, e.db), "old@example.jp") {
				t.Error("purged address left in the database")
			}
		})
	}
}
