package testutil

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
)

// PostgresURLEnv names the variable that points tests at a PostgreSQL
// server where the user may create databases; the Makefile (through
// scripts/postgres.sh) sets it to the server it found or started. Unset,
// tests use postgres://postgres@127.0.0.1:5432/postgres.
const PostgresURLEnv = "TAYORI_TEST_POSTGRES_URL"

// PostgresServerURL returns the URL of the PostgreSQL server tests use
// (its maintenance database, from which they create their own).
func PostgresServerURL() string {
	if u := os.Getenv(PostgresURLEnv); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var pgDatabases atomic.Int64

// PostgresURL hands the test an empty PostgreSQL database of its own,
// created for it and dropped (connections and all) on cleanup, and
// returns its URL. It fails the test, never skips it, when PostgreSQL is
// unreachable.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	server := PostgresServerURL()
	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("%s=%q: %v", PostgresURLEnv, server, err)
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		tb.Fatalf("%s: %v", PostgresURLEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		tb.Fatalf("PostgreSQL at %s is unreachable (%v).\nRun the tests with `make test`, which finds, starts or installs one (scripts/postgres.sh), or set %s.",
			store.Redact(server), err, PostgresURLEnv)
	}
	name := fmt.Sprintf("tayori_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, pgDatabases.Add(1))
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		admin.Close()
		tb.Fatalf("create test database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Engine is one database engine the store tests run against.
type Engine struct {
	// Name is the subtest name: "sqlite" or "postgres".
	Name store.Engine
	// URL returns the TAYORI_DB URL of a fresh, empty database of this
	// engine, removed when the test ends.
	URL func(tb testing.TB) string
}

// Engines are the engines every store test runs against, as subtests:
//
//	for _, e := range testutil.Engines() {
//		t.Run(string(e.Name), func(t *testing.T) { db := testutil.OpenStore(t, e) … })
//	}
func Engines() []Engine {
	return []Engine{
		{Name: store.SQLite, URL: func(tb testing.TB) string {
			return "sqlite:" + filepath.Join(tb.TempDir(), "tayori.db")
		}},
		{Name: store.Postgres, URL: PostgresURL},
	}
}

// EngineByName returns the engine called name ("sqlite" or "postgres"),
// for tests that run one engine chosen by a flag or variable.
func EngineByName(tb testing.TB, name string) Engine {
	tb.Helper()
	for _, e := range Engines() {
		if string(e.Name) == strings.ToLower(name) {
			return e
		}
	}
	tb.Fatalf("no database engine %q (want sqlite or postgres)", name)
	return Engine{}
}

// OpenStore creates a fresh database of engine e, applies Tayori's
// schema, and closes it when the test ends.
func OpenStore(tb testing.TB, e Engine) *store.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Create(ctx, e.URL(tb))
	if err != nil {
		tb.Fatalf("open %s store: %v", e.Name, err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := store.Migrate(ctx, db); err != nil {
		tb.Fatalf("migrate %s store: %v", e.Name, err)
	}
	return db
}
