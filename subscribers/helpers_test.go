package subscribers_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testKeys = []token.Key{
	{ID: "k2", Secret: []byte("second-secret-0123456789abcdef")},
	{ID: "k1", Secret: []byte("first-secret-0123456789abcdefgh")},
}

type env struct {
	store  *subscribers.Store
	db     *sql.DB // the store's database, for checks in SQL both engines run
	sdb    *store.DB
	engine store.Engine
	clock  *clock
	path   string // the SQLite file ("" on PostgreSQL)
}

// sqliteEngine is the engine of the SQLite-only benchmarks.
var sqliteEngine = testutil.Engines()[0]

// newEnv opens a store on a fresh, migrated database of engine eng with a
// test clock and keys.
func newEnv(tb testing.TB, eng testutil.Engine, keys ...token.Key) *env {
	tb.Helper()
	if len(keys) == 0 {
		keys = testKeys
	}
	sdb := testutil.OpenStore(tb, eng)
	c := newClock()
	ring, err := token.NewKeyring(c.Now, keys...)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.OpenSubscribers(context.Background(), sdb, subscribers.Options{Keyring: ring})
	if err != nil {
		tb.Fatal(err)
	}
	return &env{store: s, db: sdb.SQL, sdb: sdb, engine: sdb.Engine, clock: c, path: sdb.Path}
}

// reopen opens a second store on the same database with other keys.
func (e *env) reopen(tb testing.TB, keys ...token.Key) *subscribers.Store {
	tb.Helper()
	ring, err := token.NewKeyring(e.clock.Now, keys...)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.OpenSubscribers(context.Background(), e.sdb, subscribers.Options{Keyring: ring})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustAdd(tb testing.TB, s *subscribers.Store, n subscribers.NewSubscriber) subscribers.Subscriber {
	tb.Helper()
	if n.Method == "" {
		n.Method = subscribers.DoubleOptIn
	}
	sub, err := s.Add(context.Background(), n)
	if err != nil {
		tb.Fatalf("Add: %v", err)
	}
	return sub
}

// mustActive adds an address and confirms it through a confirm token.
func mustActive(tb testing.TB, s *subscribers.Store, n subscribers.NewSubscriber) subscribers.Subscriber {
	tb.Helper()
	ctx := context.Background()
	sub := mustAdd(tb, s, n)
	tok, err := s.ConfirmToken(ctx, sub.ID, "")
	if err != nil {
		tb.Fatal(err)
	}
	sub, err = s.Confirm(ctx, tok, subscribers.Consent{FormVersion: "signup-v1", Text: "I agree", IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		tb.Fatalf("Confirm: %v", err)
	}
	return sub
}

var testKey3 = token.Key{ID: "k3", Secret: []byte("third-secret-0123456789abcdefgh")}
