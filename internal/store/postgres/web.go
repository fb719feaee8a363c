package postgres

// The web package's storage on PostgreSQL (web.Storage): editors, sessions and
// API tokens. Issues and their revisions are in web_revisions.go. Times
// are Unix milliseconds.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tayori-news/tayori/web"
)

// Web keeps the web package's data in a PostgreSQL database whose schema
// store.Migrate applied. It is safe for concurrent use.
type Web struct {
	db *sql.DB
}

// NewWeb returns the web's storage in db.
func NewWeb(db *sql.DB) *Web { return &Web{db: db} }

var _ web.Storage = (*Web)(nil)

func webMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// InsertEditor implements web.Storage.
func (w *Web) InsertEditor(ctx context.Context, name, hash string, now time.Time) (int64, error) {
	var id int64
	err := w.db.QueryRowContext(ctx, `INSERT INTO web_editors (name, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING id`, name, hash, now.UnixMilli(), now.UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, web.ErrExists
	}
	return id, err
}

// SetPasswordHash implements web.Storage.
func (w *Web) SetPasswordHash(ctx context.Context, name, hash string, now time.Time) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `UPDATE web_editors SET password_hash = $1, updated_at = $2 WHERE name = $3 RETURNING id`,
		hash, now.UnixMilli(), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return web.ErrNotFound
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE editor_id = $1`, id); err != nil {
		return err
	}
	return tx.Commit()
}

// Editors implements web.Storage.
func (w *Web) Editors(ctx context.Context) ([]web.Editor, error) {
	rows, err := w.db.QueryContext(ctx, `SELECT id, name, created_at FROM web_editors WHERE NOT disabled ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []web.Editor
	for rows.Next() {
		var e web.Editor
		var created int64
		if err := rows.Scan(&e.ID, &e.Name, &created); err != nil {
			return nil, err
		}
		e.CreatedAt = webMillis(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// EditorCredentials implements web.Storage.
func (w *Web) EditorCredentials(ctx context.Context, name string) (web.Editor, string, error) {
	var e web.Editor
	var h string
	var created int64
	err := w.db.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM web_editors
		WHERE name = $1 AND NOT disabled`, name).Scan(&e.ID, &e.Name, &h, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return web.Editor{}, "", web.ErrNotFound
	}
	if err != nil {
		return web.Editor{}, "", err
	}
	e.CreatedAt = webMillis(created)
	return e, h, nil
}

// InsertSession implements web.Storage.
func (w *Web) InsertSession(ctx context.Context, idHash []byte, editorID int64, csrf string, now, expires time.Time) error {
	if _, err := w.db.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, editor_id, csrf, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`, idHash, editorID, csrf, now.UnixMilli(), expires.UnixMilli()); err != nil {
		return err
	}
	_, err := w.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, now.UnixMilli())
	return err
}

// Session implements web.Storage.
func (w *Web) Session(ctx context.Context, idHash []byte, now time.Time) (web.Session, error) {
	var sess web.Session
	var exp, created int64
	err := w.db.QueryRowContext(ctx, `SELECT e.id, e.name, e.created_at, s.csrf, s.expires_at
		FROM web_sessions s JOIN web_editors e ON e.id = s.editor_id
		WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT e.disabled`, idHash, now.UnixMilli()).
		Scan(&sess.Editor.ID, &sess.Editor.Name, &created, &sess.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return web.Session{}, web.ErrNotFound
	}
	if err != nil {
		return web.Session{}, err
	}
	sess.Editor.CreatedAt = webMillis(created)
	sess.ExpiresAt = webMillis(exp)
	return sess, nil
}

// DeleteSession implements web.Storage.
func (w *Web) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := w.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, idHash)
	return err
}

// InsertAPIToken implements web.Storage.
func (w *Web) InsertAPIToken(ctx context.Context, editor, label string, tokenHash []byte, now time.Time) error {
	res, err := w.db.ExecContext(ctx, `INSERT INTO web_api_tokens (editor_id, label, token_hash, created_at)
		SELECT id, $1, $2, $3 FROM web_editors WHERE name = $4 AND NOT disabled`, label, tokenHash, now.UnixMilli(), editor)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return web.ErrNotFound
	}
	return nil
}

// RevokeAPITokens implements web.Storage.
func (w *Web) RevokeAPITokens(ctx context.Context, editor string, now time.Time) (int64, error) {
	res, err := w.db.ExecContext(ctx, `UPDATE web_api_tokens SET revoked_at = $1
		WHERE revoked_at IS NULL AND editor_id = (SELECT id FROM web_editors WHERE name = $2)`, now.UnixMilli(), editor)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// APIToken implements web.Storage.
func (w *Web) APIToken(ctx context.Context, tokenHash []byte, now time.Time) (web.Editor, error) {
	var e web.Editor
	var created, tid int64
	err := w.db.QueryRowContext(ctx, `SELECT t.id, e.id, e.name, e.created_at FROM web_api_tokens t
		JOIN web_editors e ON e.id = t.editor_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT e.disabled`, tokenHash).Scan(&tid, &e.ID, &e.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return web.Editor{}, web.ErrNotFound
	}
	if err != nil {
		return web.Editor{}, err
	}
	e.CreatedAt = webMillis(created)
	// Best effort: a busy database must not refuse a valid token.
	_, _ = w.db.ExecContext(ctx, `UPDATE web_api_tokens SET last_used_at = $1 WHERE id = $2`, now.UnixMilli(), tid)
	return e, nil
}

// ---- work posted after a session expired ----

// DeletePendingBefore implements web.Storage.
func (w *Web) DeletePendingBefore(ctx context.Context, t time.Time) error {
	_, err := w.db.ExecContext(ctx, `DELETE FROM web_pending WHERE created_at < $1`, t.UnixMilli())
	return err
}

// ReplacePending implements web.Storage.
func (w *Web) ReplacePending(ctx context.Context, idHash []byte, slug string, form []byte, now time.Time) (bool, error) {
	res, err := w.db.ExecContext(ctx, `UPDATE web_pending SET slug = $1, form = $2, created_at = $3 WHERE id_hash = $4`,
		slug, form, now.UnixMilli(), idHash)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InsertPending implements web.Storage.
func (w *Web) InsertPending(ctx context.Context, idHash []byte, slug string, form []byte, now time.Time) error {
	_, err := w.db.ExecContext(ctx, `INSERT INTO web_pending (id_hash, slug, form, created_at) VALUES ($1, $2, $3, $4)`,
		idHash, slug, form, now.UnixMilli())
	return err
}

// TakePending implements web.Storage.
func (w *Web) TakePending(ctx context.Context, idHash []byte) (string, []byte, time.Time, error) {
	var slug string
	var form []byte
	var created int64
	err := w.db.QueryRowContext(ctx, `DELETE FROM web_pending WHERE id_hash = $1 RETURNING slug, form, created_at`, idHash).
		Scan(&slug, &form, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, time.Time{}, web.ErrNotFound
	}
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("take pending work: %w", err)
	}
	return slug, form, webMillis(created), nil
}

// ---- the audit log ----

// InsertAudit implements web.Storage.
func (w *Web) InsertAudit(ctx context.Context, e web.AuditEntry) error {
	_, err := w.db.ExecContext(ctx, `INSERT INTO web_audit (at, editor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)`,
		e.At.UnixMilli(), e.Editor, e.Action, e.Subject, e.Detail)
	return err
}

// AuditLog implements web.Storage.
func (w *Web) AuditLog(ctx context.Context, beforeID int64, limit int) ([]web.AuditEntry, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	rows, err := w.db.QueryContext(ctx, `SELECT id, at, editor, action, subject, detail FROM web_audit
		WHERE id < $1 ORDER BY id DESC LIMIT $2`, beforeID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []web.AuditEntry
	for rows.Next() {
		var e web.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Editor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// TrimAudit implements web.Storage.
func (w *Web) TrimAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := w.db.ExecContext(ctx, `DELETE FROM web_audit WHERE at < $1`, before.UnixMilli())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Ping implements web.Storage.
func (w *Web) Ping(ctx context.Context) error {
	var n int
	return w.db.QueryRowContext(ctx, `SELECT count(*) FROM web_editors WHERE id = 0`).Scan(&n)
}
