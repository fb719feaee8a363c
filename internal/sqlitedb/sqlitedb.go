// Package sqlitedb opens Tayori's embedded SQLite database (WAL mode) and
// applies a package's embedded migrations with goose.
//
// The engine is chosen at build time. The default is modernc.org/sqlite,
// SQLite translated to Go: no C toolchain, cross-compiles anywhere. Built
// with -tags sqlite_cgo it is github.com/mattn/go-sqlite3, the C library
// through cgo: the same SQL, files and behaviour, about 1.8 times the
// write speed (see the README's import figures). Engine names the one in
// this binary.
//
// Several packages keep tables in the same database file (subscribers,
// queue, web). Each owns its migrations and records them in its own goose
// version table, so their numbering never collides.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// ErrUnsupported is returned for a database URL this build cannot open.
var ErrUnsupported = errors.New("unsupported database")

// PathFromURL turns "sqlite:PATH", "sqlite://PATH" or a bare path into a
// file path. Any other scheme is ErrUnsupported.
func PathFromURL(dbURL string) (string, error) {
	switch {
	case strings.HasPrefix(dbURL, "sqlite://"):
		return strings.TrimPrefix(dbURL, "sqlite://"), nil
	case strings.HasPrefix(dbURL, "sqlite:"):
		return strings.TrimPrefix(dbURL, "sqlite:"), nil
	case strings.Contains(dbURL, "://"):
		u, _ := url.Parse(dbURL)
		scheme := dbURL
		if u != nil {
			scheme = u.Scheme
		}
		return "", fmt.Errorf("%w: %q (this build stores subscribers in SQLite: use sqlite:PATH)", ErrUnsupported, scheme)
	case dbURL == "":
		return "", fmt.Errorf("%w: empty database URL", ErrUnsupported)
	}
	return dbURL, nil
}

// Open opens (creating if needed) the SQLite database at path with WAL
// journaling, a busy timeout, foreign keys and immediate write
// transactions, so that concurrent writers from several goroutines and
// processes wait for each other instead of failing.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	}
	db, err := openDB(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// Switching a fresh file to WAL takes an exclusive lock without waiting
	// for the busy timeout, so processes opening a new database together
	// (`tayori worker` and `tayori send`) may see SQLITE_BUSY once.
	for attempt := 0; ; attempt++ {
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		if attempt >= 20 || !IsBusy(err) || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		time.Sleep(time.Duration(10+attempt*10) * time.Millisecond)
	}
}

// IsBusy reports whether err is SQLITE_BUSY (any extended code): another
// connection holds a lock that did not clear in time.
func IsBusy(err error) bool { return isBusy(err) }

// IsFull reports whether err is SQLITE_FULL: the disk (or the file
// system's quota) has no room for the write. Nothing was written; the
// same write succeeds once there is room.
func IsFull(err error) bool { return isFull(err) }

// IsUnique reports whether err is a UNIQUE or PRIMARY KEY constraint
// failure (SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY): the
// row would repeat a key another row holds. Nothing was written.
func IsUnique(err error) bool { return isUnique(err) }

// pragmas are set on every connection, by whichever engine this build
// links (driver_*.go).
var pragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(ON)",
	"temp_store(MEMORY)",
	// 8 MB of page cache per connection. A worker holds several
	// connections; at 32 MB each its RSS grew from 59 MB at 100,000
	// readers to 114 MB at 1,000,000, at 8 MB it stays near 68 MB, with
	// the same CPU per message and the same import speed (the operating
	// system's cache serves the rest).
	"cache_size(-8000)",
}

// Migrate applies the migrations in fsys (files like "0001_init.sql" at its
// root, goose format) and records them in the version table named table.
//
// Several processes may migrate one file at once (`tayori worker` and
// `tayori send` started together on a fresh database): each migration
// runs in its own transaction, so the loser of such a race fails without
// a trace and, trying again, finds the migration applied.
//
// goMigrations are applied with the files, in version order. One that
// runs outside a transaction (goose.GoFunc.RunDB) must be safe to run
// twice, since two processes may both run it before either records it.
func Migrate(ctx context.Context, db *sql.DB, fsys fs.FS, table string, goMigrations ...*goose.Migration) error {
	var err error
	for attempt := range migrateAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("migrate %s: %w (after %w)", table, ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		if err = migrateOnce(ctx, db, fsys, table, goMigrations); err == nil {
			return nil
		}
	}
	return err
}

const migrateAttempts = 5

func migrateOnce(ctx context.Context, db *sql.DB, fsys fs.FS, table string, goMigrations []*goose.Migration) error {
	store, err := database.NewStore(goose.DialectSQLite3, table)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	p, err := goose.NewProvider("", db, fsys, goose.WithStore(store), goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations...))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return nil
}

// Querier is what *sql.DB, *sql.Conn and *sql.Tx share for reading.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryColumn runs a query that returns one column and collects it.
func QueryColumn[T any](ctx context.Context, q Querier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
