package sqlite

// The welcome mail's storage on SQLite (welcome.Store): one template per
// list. Times are Unix milliseconds.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/welcome"
)

// Welcome keeps the welcome templates in a SQLite database whose schema
// store.Migrate applied. It is safe for concurrent use.
type Welcome struct{ db *sql.DB }

// NewWelcome returns the welcome mail's storage in db.
func NewWelcome(db *sql.DB) *Welcome { return &Welcome{db: db} }

var _ welcome.Store = (*Welcome)(nil)

// Template implements welcome.Store.
func (s *Welcome) Template(ctx context.Context, list string) (t welcome.Template, ok bool, err error) {
	var at int64
	err = s.db.QueryRowContext(ctx, `SELECT list, enabled, subject, body, updated_at, updated_by FROM welcome_templates WHERE list = ?`, list).
		Scan(&t.List, &t.Enabled, &t.Subject, &t.Body, &at, &t.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return welcome.Template{}, false, nil
	}
	if err != nil {
		return welcome.Template{}, false, fmt.Errorf("welcome: template of %q: %w", list, err)
	}
	t.UpdatedAt = time.UnixMilli(at).UTC()
	return t, true, nil
}

// SaveTemplate implements welcome.Store.
func (s *Welcome) SaveTemplate(ctx context.Context, t welcome.Template) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO welcome_templates (list, enabled, subject, body, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list) DO UPDATE SET enabled = excluded.enabled, subject = excluded.subject,
		body = excluded.body, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		t.List, t.Enabled, t.Subject, t.Body, t.UpdatedAt.UnixMilli(), t.UpdatedBy); err != nil {
		return fmt.Errorf("welcome: save template of %q: %w", t.List, err)
	}
	return nil
}
