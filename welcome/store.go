package welcome

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// This file holds all the SQL of the welcome mail (SQLite), used through
// the Store interface (welcome.go).

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is the goose version table of the welcome mail's migrations.
const VersionTable = "welcome_migrations"

// SQLStore is the Store on SQLite.
type SQLStore struct{ db *sql.DB }

// OpenSQLStore applies the migrations to db and returns the store.
func OpenSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, sub, VersionTable); err != nil {
		return nil, fmt.Errorf("welcome: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Template returns the stored template of list, or ok false.
func (s *SQLStore) Template(ctx context.Context, list string) (t Template, ok bool, err error) {
	var at int64
	err = s.db.QueryRowContext(ctx, `SELECT list, enabled, subject, body, updated_at, updated_by FROM welcome_templates WHERE list = ?`, list).
		Scan(&t.List, &t.Enabled, &t.Subject, &t.Body, &at, &t.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, false, nil
	}
	if err != nil {
		return Template{}, false, fmt.Errorf("welcome: template of %q: %w", list, err)
	}
	t.UpdatedAt = time.UnixMilli(at).UTC()
	return t, true, nil
}

// SaveTemplate stores t, replacing the list's template.
func (s *SQLStore) SaveTemplate(ctx context.Context, t Template) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO welcome_templates (list, enabled, subject, body, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list) DO UPDATE SET enabled = excluded.enabled, subject = excluded.subject,
		body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		t.List, t.Enabled, t.Subject, t.Body, t.UpdatedAt.UnixMilli(), t.UpdatedBy); err != nil {
		return fmt.Errorf("welcome: save template of %q: %w", t.List, err)
	}
	return nil
}
