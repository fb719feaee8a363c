package feedback_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// fixtureKey is the key the tokens in testdata/ were written with.
var fixtureKey = token.Key{ID: "fx1", Secret: []byte("feedback-fixture-secret-0123456789")}

const fixtureDomain = "news.example.go.jp"

func fixtureRing(tb testing.TB, keys ...token.Key) *token.Keyring {
	tb.Helper()
	if len(keys) == 0 {
		keys = []token.Key{fixtureKey}
	}
	ring, err := token.NewKeyring(func() time.Time { return testNow }, keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

func fixtureTagger(tb testing.TB, keys ...token.Key) *feedback.Tagger {
	tb.Helper()
	tg, err := feedback.NewTagger(fixtureRing(tb, keys...), feedback.TaggerConfig{Domain: fixtureDomain})
	if err != nil {
		tb.Fatal(err)
	}
	return tg
}

var testNow = time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC)

// openStore opens a subscriber store on a fresh SQLite file and adds n
// active readers of the default list, ids 1..n (reader-i@example.jp).
func openStore(tb testing.TB, n int) *subscribers.Store {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(tb.TempDir(), "tayori.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	s, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: fixtureRing(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		sub, err := s.Add(ctx, subscribers.NewSubscriber{
			Email: fmt.Sprintf("reader-%d@example.jp", i), Method: subscribers.API,
			Consent: &subscribers.Consent{At: testNow.Add(-90 * 24 * time.Hour), Method: subscribers.API, Text: "同意"},
		})
		if err != nil {
			tb.Fatal(err)
		}
		if sub.ID != int64(i) {
			tb.Fatalf("reader %d got id %d", i, sub.ID)
		}
	}
	return s
}

// history is the queue's record, in memory: each reader's copies.
type history struct {
	mu sync.Mutex
	m  map[int64][]feedback.Attempt // oldest first
}

func newHistory() *history { return &history{m: map[int64][]feedback.Attempt{}} }

// sent records that send went to each reader (accepted by the relay).
func (h *history) sent(send int64, readers ...int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range readers {
		h.m[r] = append(h.m[r], feedback.Attempt{SendID: send, Sent: true})
	}
}

func (h *history) add(reader int64, a feedback.Attempt) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[reader] = append(h.m[reader], a)
}

func (h *history) LastAttempts(_ context.Context, id int64, n int) ([]feedback.Attempt, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.m[id])
	slices.Reverse(out)
	return out[:min(n, len(out))], nil
}

func newIntake(tb testing.TB, store *subscribers.Store, h *history, byAddress bool) *feedback.Intake {
	tb.Helper()
	in, err := feedback.NewIntake(feedback.IntakeConfig{
		Store: store, History: h, Tagger: fixtureTagger(tb), MatchByAddress: byAddress,
		Now: func() time.Time { return testNow },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return in
}
