package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// gateService returns a Service (no worker) whose Deps.Gate is gate.
func gateService(t *testing.T, gate queue.GateFunc) (*queue.Service, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	sdb, ledger := sqliteStore(t, filepath.Join(t.TempDir(), "tayori.db"))
	db := sdb.SQL
	ring, err := token.NewKeyring(time.Now, testKeys...)
	if err != nil {
		t.Fatal(err)
	}
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	rdb := testutil.RedisDB(t)
	smtp := testutil.StartSMTP(t)
	var pool *mailer.Pool
	deps := testDeps(t, store, smtp.URL(), &pool, nil, nil, 1)
	t.Cleanup(func() { pool.Close() })
	deps.Gate = gate
	svc, err := queue.New(ctx, ledger, rdb, queue.Config{From: testFrom, BaseURL: testBaseURL}, deps,
		slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc, db
}

func countSends(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sends`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateConsultsTheGate(t *testing.T) {
	ctx := context.Background()
	issue := loadIssue(t, "aisi-monthly-2025-11.txt")
	verdict := queue.GateVerdict{Block: true, Reason: "complaint rate 0.40% (4 complaints / 1000 copies sent in the last 7 days) is at or above the 0.30% limit"}
	var gateErr error
	calls := 0
	svc, db := gateService(t, func(context.Context) (queue.GateVerdict, error) { calls++; return verdict, gateErr })

	// Closed: refused with the reason, nothing recorded.
	_, err := svc.Create(ctx, queue.NewSend{Issue: issue, List: testList})
	if !errors.Is(err, queue.ErrBlocked) || !errors.Is(err, queue.ErrState) {
		t.Fatalf("Create with a closed gate: %v; want ErrBlocked (and ErrState)", err)
	}
	if reason, ok := queue.IsBlocked(err); !ok || reason != verdict.Reason || !strings.Contains(err.Error(), "0.40%") {
		t.Errorf("refusal %q does not carry the reason", err)
	}
	if n := countSends(t, db); n != 0 {
		t.Errorf("%d sends recorded after a refusal", n)
	}

	// Test sends and dry runs do not ask the gate.
	if _, _, err := svc.Preview(ctx, issue, testList, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.TestSend(ctx, issue, testList, nil, "editor@news.example.go.jp", ""); err != nil && !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("test send with a closed gate: %v", err)
	}
	if calls != 1 {
		t.Errorf("the gate was asked %d times, want once (only by Create)", calls)
	}

	// An explicit override goes through and says what it ignored.
	snd, err := svc.Create(ctx, queue.NewSend{Issue: issue, List: testList, IgnoreGate: true})
	if err != nil {
		t.Fatalf("Create with IgnoreGate: %v", err)
	}
	if !strings.Contains(snd.GateWarning, "gate ignored") || !strings.Contains(snd.GateWarning, "0.40%") {
		t.Errorf("GateWarning = %q", snd.GateWarning)
	}

	// A warning lets the send go and is returned. (The first send is
	// cancelled before it sends anything, which leaves room for another.)
	if err := svc.Cancel(ctx, snd.ID, "test"); err != nil {
		t.Fatal(err)
	}
	verdict = queue.GateVerdict{Warn: true, Reason: "complaint rate 0.15% is at or above the 0.10% warning level"}
	snd, err = svc.Create(ctx, queue.NewSend{Issue: issue, List: testList})
	if err != nil || snd.GateWarning != verdict.Reason {
		t.Fatalf("Create with a warning: %v, %q", err, snd.GateWarning)
	}

	// A gate that cannot read its figures does not open.
	verdict, gateErr = queue.GateVerdict{}, errors.New("disk on fire")
	if _, err := svc.Create(ctx, queue.NewSend{Issue: issue, List: testList}); !errors.Is(err, queue.ErrBlocked) ||
		!errors.Is(err, gateErr) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Create with a failing gate: %v", err)
	}
	if n := countSends(t, db); n != 2 {
		t.Errorf("%d sends, want 2", n)
	}
}

// seedDeliveries records sends and deliveries directly: (send, subscriber,
// status, permanent, reply, updated_at).
func seedDeliveries(t *testing.T, db *sql.DB, created time.Time, rows ...[]any) {
	t.Helper()
	seen := map[int64]bool{}
	for _, r := range rows {
		id := r[0].(int64)
		if !seen[id] {
			seen[id] = true
			if _, err := db.Exec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, finished_at)
				VALUES (?, ?, '2026-01', x'7b7d', 'monthly', 'done', ?, ?, ?, ?)`,
				id, "u"+string(rune('a'+id)), created.UnixMilli(), created.UnixMilli(), created.UnixMilli(), r[5].(time.Time).UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, permanent, attempts, reply, updated_at)
			VALUES (?, ?, 0, 'v', ?, ?, 1, ?, ?)`, id, r[1], r[2], r[3], r[4], r[5].(time.Time).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOutcomes(t *testing.T) {
	ctx := context.Background()
	sdb, ledger := sqliteStore(t, filepath.Join(t.TempDir(), "tayori.db"))
	db := sdb.SQL
	o := queue.NewOutcomes(ledger)
	now := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-10*24*time.Hour), now.Add(-2*24*time.Hour)
	seedDeliveries(t, db, old.Add(-time.Hour),
		[]any{int64(1), int64(10), "sent", 0, "250 ok", old},
		[]any{int64(1), int64(11), "sent", 0, "250 ok", old},
	)
	seedDeliveries(t, db, recent.Add(-time.Hour),
		[]any{int64(2), int64(10), "failed", 0, "451 4.3.0 try later", recent},
		[]any{int64(2), int64(11), "sent", 0, "250 ok", recent},
		[]any{int64(2), int64(12), "failed", 1, "550 5.7.26 This mail is unauthenticated", recent},
		[]any{int64(2), int64(13), "skipped", 0, "", recent},
	)
	seedDeliveries(t, db, now.Add(-2*time.Hour),
		[]any{int64(3), int64(10), "sent", 0, "250 ok", now.Add(-time.Hour)},
		[]any{int64(3), int64(11), "sent", 0, "250 ok", now.Add(-time.Hour)},
	)
	since := now.Add(-7 * 24 * time.Hour)
	if n, err := o.SentBetween(ctx, since, now); err != nil || n != 3 {
		t.Errorf("SentBetween = %d, %v; want 3 (sends 2 and 3, not the old send 1)", n, err)
	}
	refs, err := o.Refusals(ctx, since, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("Refusals = %+v; want the two failed copies of send 2", refs)
	}
	var auth bool
	for _, r := range refs {
		if r.SubscriberID == 12 && r.Permanent && strings.Contains(r.Reply, "5.7.26") {
			auth = true
		}
	}
	if !auth {
		t.Errorf("Refusals lacks the 5.7.26 reply: %+v", refs)
	}
	atts, err := o.LastAttempts(ctx, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 3 || atts[0].SendID != 3 || !atts[0].Sent || atts[1].SendID != 2 || atts[1].Sent || atts[1].Permanent || atts[2].SendID != 1 {
		t.Errorf("LastAttempts(10) = %+v; want sends 3 (sent), 2 (failed, temporary), 1", atts)
	}
	if atts, err := o.LastAttempts(ctx, 13, 3); err != nil || len(atts) != 0 {
		t.Errorf("LastAttempts of a skipped reader = %+v, %v; want none", atts, err)
	}
}
