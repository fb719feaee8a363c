package sqlitedb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

func TestOpenMigrateTwoSets(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "sub", "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := fstest.MapFS{"0001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n")}}
	b := fstest.MapFS{"0001_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n")}}
	for i := 0; i < 2; i++ { // applying twice is a no-op
		if err := sqlitedb.Migrate(ctx, db, a, "a_migrations"); err != nil {
			t.Fatal(err)
		}
		if err := sqlitedb.Migrate(ctx, db, b, "b_migrations"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tbl := range []string{"a", "b"} {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+tbl+" (id) VALUES (1)"); err != nil {
			t.Fatalf("table %s: %v", tbl, err)
		}
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestPathFromURL(t *testing.T) {
	for in, want := range map[string]string{"sqlite:/x/y.db": "/x/y.db", "sqlite:///x/y.db": "/x/y.db", "data/t.db": "data/t.db"} {
		got, err := sqlitedb.PathFromURL(in)
		if err != nil || got != want {
			t.Errorf("PathFromURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := sqlitedb.PathFromURL("postgres://localhost/x"); !errors.Is(err, sqlitedb.ErrUnsupported) {
		t.Errorf("postgres URL: err = %v, want ErrUnsupported", err)
	}
}

// Processes that open a fresh database together all migrate it: the
// losers of the race retry and find the migrations applied.
func TestConcurrentMigrationsOfOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "race.db")
	fsys := fstest.MapFS{
		"0001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id INTEGER PRIMARY KEY);\n")},
		"0002_b.sql": {Data: []byte("-- +goose Up\nCREATE INDEX a_id ON a (id);\n")},
	}
	const n = 6
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		go func() {
			db, err := sqlitedb.Open(ctx, path) // one handle each, as separate processes have
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			<-start
			errs <- sqlitedb.Migrate(ctx, db, fsys, "race_migrations")
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestQueryColumn(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES ('甲'), ('乙'), (NULL)`); err != nil {
		t.Fatal(err)
	}
	ids, err := sqlitedb.QueryColumn[int64](ctx, db, `SELECT id FROM t WHERE id >= ? ORDER BY id`, 2)
	if err != nil || len(ids) != 2 || ids[0] != 2 || ids[1] != 3 {
		t.Errorf("ids = %v, %v; want [2 3]", ids, err)
	}
	names, err := sqlitedb.QueryColumn[string](ctx, db, `SELECT name FROM t WHERE name IS NOT NULL ORDER BY id`)
	if err != nil || len(names) != 2 || names[0] != "甲" || names[1] != "乙" {
		t.Errorf("names = %q, %v", names, err)
	}
	// A NULL cannot go into a string: the error is returned, not a partial list.
	if got, err := sqlitedb.QueryColumn[string](ctx, db, `SELECT name FROM t ORDER BY id`); err == nil {
		t.Errorf("NULL into string: %q, no error", got)
	}
	if _, err := sqlitedb.QueryColumn[int64](ctx, db, `SELECT nope FROM t`); err == nil {
		t.Error("bad query: no error")
	}
}

// Every connection of either engine (the default, and -tags sqlite_cgo)
// gets the same settings: WAL, NORMAL sync, foreign keys, the busy
// timeout, and write transactions that take the lock at BEGIN, so that
// a second writer waits or gets SQLITE_BUSY there, never halfway.
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t.Logf("engine: %s", sqlitedb.Engine)
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, c := range []*sql.Conn{c1, c2} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "10000",
			"temp_store": "2", "cache_size": "-8000",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
				t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
			}
		}
	}
	if _, err := c1.ExecContext(ctx, `CREATE TABLE t (x TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx1, err := c1.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	if _, err := c2.ExecContext(ctx, "PRAGMA busy_timeout = 50"); err != nil {
		t.Fatal(err)
	}
	defer c2.ExecContext(ctx, "PRAGMA busy_timeout = 10000")
	tx2, err := c2.BeginTx(ctx, nil)
	if err == nil {
		tx2.Rollback()
		t.Fatal("a second BEGIN succeeded while the first transaction was open: transactions are not IMMEDIATE")
	}
	if !sqlitedb.IsBusy(err) {
		t.Fatalf("second BEGIN: %v, IsBusy = false", err)
	}
	// Text survives byte for byte, and a foreign key is enforced.
	const ja = "便り 🗾 \u3099"
	if _, err := tx1.ExecContext(ctx, `INSERT INTO t (x) VALUES (?)`, ja); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := tx1.QueryRowContext(ctx, `SELECT x FROM t`).Scan(&got); err != nil || got != ja {
		t.Errorf("read back %q, %v; want %q", got, err, ja)
	}
	if _, err := tx1.ExecContext(ctx, `CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p (id))`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx1.ExecContext(ctx, `INSERT INTO c (p) VALUES (42)`); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		t.Errorf("insert with a dangling foreign key: %v", err)
	}
}

// IsUnique tells a repeated key (UNIQUE column or primary key) from every
// other failed write, by the error's code rather than its text.
func TestIsUnique(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT UNIQUE, n INTEGER NOT NULL CHECK (n > 0));
		INSERT INTO t (id, key, n) VALUES (1, 'a', 1)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sql string
		unique    bool
	}{
		{"UNIQUE column", `INSERT INTO t (id, key, n) VALUES (2, 'a', 1)`, true},
		{"primary key", `INSERT INTO t (id, key, n) VALUES (1, 'b', 1)`, true},
		{"NOT NULL", `INSERT INTO t (id, key, n) VALUES (3, 'c', NULL)`, false},
		{"CHECK", `INSERT INTO t (id, key, n) VALUES (4, 'd', 0)`, false},
		{"no such table", `INSERT INTO nope VALUES (1)`, false},
	} {
		_, err := db.ExecContext(ctx, c.sql)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := sqlitedb.IsUnique(fmt.Errorf("wrapped: %w", err)); got != c.unique {
			t.Errorf("%s: IsUnique(%v) = %v, want %v", c.name, err, got, c.unique)
		}
	}
	if sqlitedb.IsUnique(nil) || sqlitedb.IsUnique(errors.New("UNIQUE constraint failed: t.key")) {
		t.Error("IsUnique is true for nil or for an error that only says so in its text")
	}
}
