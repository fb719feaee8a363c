package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/tayori-news/tayori/internal/store/schema"
)

// VersionTable is the goose version table of Tayori's schema.
const VersionTable = "tayori_schema"

// ErrNewerSchema is what Migrate's error matches when the database holds
// a schema from a newer version of Tayori than this binary.
var ErrNewerSchema = errors.New("the database's schema is newer than this binary")

// Migrate brings db's schema up to this binary's version. Several
// processes may migrate at once (`tayori worker` and `tayori send`
// started together on a fresh database): each migration runs in its own
// transaction, and a process that loses the race tries again and finds
// it applied. A schema newer than this binary's is ErrNewerSchema: run the
// newer binary, or restore a backup.
func Migrate(ctx context.Context, db *DB) error {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("migrate %s: %w (after %w)", db.Display, ctx.Err(), err)
			case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
			}
		}
		if err = migrateOnce(ctx, db); err == nil || errors.Is(err, ErrNewerSchema) {
			return err
		}
	}
	return err
}

func migrateOnce(ctx context.Context, db *DB) error {
	fsys, dialect := schema.SQLite(), goose.DialectSQLite3
	if db.Engine == Postgres {
		fsys, dialect = schema.Postgres(), goose.DialectPostgres
	}
	if !hasMigrations(fsys) {
		return nil
	}
	st, err := database.NewStore(dialect, VersionTable)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db.Display, err)
	}
	p, err := goose.NewProvider("", db.SQL, fsys, goose.WithStore(st), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db.Display, err)
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db.Display, err)
	}
	srcs := p.ListSources()
	if latest := srcs[len(srcs)-1].Version; cur > latest {
		return fmt.Errorf("%w: %s is at schema version %d, this binary knows up to %d", ErrNewerSchema, db.Display, cur, latest)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", db.Display, err)
	}
	return nil
}

func hasMigrations(fsys fs.FS) bool {
	m, _ := fs.Glob(fsys, "*.sql")
	return len(m) > 0
}
