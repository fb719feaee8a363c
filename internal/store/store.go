// Package store opens Tayori's database on whichever engine TAYORI_DB
// names and applies that engine's schema.
//
//	sqlite:PATH                          the embedded default: one file, one machine
//	postgres://user:pass@host:5432/db    PostgreSQL (pgx v5): the store several machines share
//
// Everything engine-specific lives under this directory: the schema of
// each engine (sqlite/migrations, postgres/migrations, goose, embedded),
// and the SQL each domain package's storage interface needs, one
// implementation per engine (package sqlite, package postgres). The domain
// packages (subscribers, queue, web) define the interfaces they use and
// never see SQL dialects; the wiring picks the implementation for DB.Engine.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// DB is an open database and the engine it runs on.
type DB struct {
	SQL    *sql.DB
	Engine Engine
	// Path is the SQLite file ("" on PostgreSQL).
	Path string
	// Display is the URL with its password hidden, for messages.
	Display string
}

// Close closes the database.
func (db *DB) Close() error { return db.SQL.Close() }

// ErrUnsupported is returned for a database URL no engine takes.
var ErrUnsupported = errors.New("unsupported database URL")

// Parse splits a database URL into its engine and the engine's own
// address (a file path for SQLite, the URL itself for PostgreSQL). The
// scheme is required, so that a typo never opens some other file.
// Errors never show a password.
func Parse(dsn string) (Engine, string, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path, err := sqlitedb.PathFromURL(dsn)
		if err != nil {
			return "", "", err
		}
		if path == "" {
			return "", "", fmt.Errorf("%w: sqlite: needs a file path (sqlite:PATH)", ErrUnsupported)
		}
		return SQLite, path, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("%w: the PostgreSQL URL does not parse (%s)", ErrUnsupported, redactErr(err, dsn))
		}
		if u.Host == "" {
			return "", "", fmt.Errorf("%w: the PostgreSQL URL %s names no host (postgres://user:pass@host:5432/db)", ErrUnsupported, Redact(dsn))
		}
		if strings.Trim(u.Path, "/") == "" {
			return "", "", fmt.Errorf("%w: the PostgreSQL URL %s names no database (postgres://user:pass@host:5432/db)", ErrUnsupported, Redact(dsn))
		}
		return Postgres, dsn, nil
	}
	scheme := "no scheme"
	if i := strings.Index(dsn, ":"); i > 0 {
		scheme = "scheme " + strings.ToLower(dsn[:i])
	}
	return "", "", fmt.Errorf("%w (%s): want sqlite:PATH or postgres://user:pass@host:5432/db", ErrUnsupported, scheme)
}

// Redact returns dsn with any password replaced by "xxxxx".
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		if err != nil {
			return "(an unparsable URL)"
		}
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func redactErr(err error, dsn string) string {
	s := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	// url.Parse quotes the whole URL in its error, password and all.
	if i := strings.Index(s, "\""); i >= 0 {
		s = s[:i] + "…"
	}
	return s
}

// Open opens an existing database: a SQLite file that exists and holds
// tables (else an error matching sqlitedb.ErrNoDatabase), or a PostgreSQL
// server, retried with backoff for up to ConnectTimeout while it does not
// answer (a server still starting), then a message that names it.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, false)
}

// Create opens the database like Open, but creates a SQLite file (and its
// directory) that does not exist yet: for `tayori init` and tests.
func Create(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, true)
}

// ConnectTimeout is how long Open keeps trying a PostgreSQL server that
// does not answer.
var ConnectTimeout = 30 * time.Second

func open(ctx context.Context, dsn string, create bool) (*DB, error) {
	engine, target, err := Parse(dsn)
	if err != nil {
		return nil, err
	}
	switch engine {
	case SQLite:
		var db *sql.DB
		if create {
			db, err = sqlitedb.Open(ctx, target)
		} else {
			db, err = sqlitedb.OpenExisting(ctx, target)
		}
		if err != nil {
			return nil, err
		}
		return &DB{SQL: db, Engine: SQLite, Path: target, Display: "sqlite:" + target}, nil
	case Postgres:
		db, err := sql.Open("pgx", target)
		if err != nil {
			return nil, fmt.Errorf("open %s: %s", Redact(dsn), redactErr(err, dsn))
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
		if err := pingWithBackoff(ctx, db); err != nil {
			db.Close()
			return nil, fmt.Errorf("PostgreSQL at %s does not answer (%s): start it, or check TAYORI_DB", Redact(dsn), redactErr(err, dsn))
		}
		return &DB{SQL: db, Engine: Postgres, Display: Redact(dsn)}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, engine)
}

// pingWithBackoff pings db until it answers, ConnectTimeout passes or ctx
// ends, waiting 100 ms, 200 ms, … up to 2 s between attempts.
func pingWithBackoff(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(ConnectTimeout)
	wait := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if ctx.Err() != nil || left <= 0 || isAuthOrConfig(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(wait, left)): // the last attempt at the deadline
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// isAuthOrConfig tells errors that waiting will not cure (a wrong
// password, a database that does not exist) from a server still starting.
func isAuthOrConfig(err error) bool {
	s := err.Error()
	for _, code := range []string{"28P01", "28000", "3D000", "SQLSTATE 42"} {
		if strings.Contains(s, code) {
			return true
		}
	}
	return false
}
