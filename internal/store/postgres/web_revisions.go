package postgres

// The web package's issues and their revisions on PostgreSQL (web.Storage).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/web"
)

const webRevisionColumns = `slug, number, kind, base, author, note, source_name, source, form, valid, created_at`

// webRevisionListColumns are webRevisionColumns with the source's size
// in place of the source, and no form.
const webRevisionListColumns = `r.slug, r.number, r.kind, r.base, r.author, r.note, r.source_name,
	octet_length(r.source), NULL, r.valid, r.created_at`

func webScanRevision(row interface{ Scan(...any) error }, withSource bool) (*web.Revision, error) {
	var r web.Revision
	var valid bool
	var created int64
	var src, form []byte
	var size int64
	dst := []any{&r.Slug, &r.Number, &r.Kind, &r.Base, &r.Author, &r.Note, &r.SourceName, &src, &form, &valid, &created}
	if !withSource {
		dst[7] = &size
	}
	if err := row.Scan(dst...); err != nil {
		return nil, err
	}
	if withSource {
		r.Source, r.Size, r.Form = src, len(src), form
	} else {
		r.Size = int(size)
	}
	r.Valid = valid
	r.CreatedAt = webMillis(created)
	return &r, nil
}

func webInsertRevision(ctx context.Context, tx *sql.Tx, r *web.Revision) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO web_revisions (`+webRevisionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.Slug, r.Number, string(r.Kind), r.Base, r.Author, r.Note, r.SourceName, r.Source, r.Form, r.Valid, r.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert revision %d: %w", r.Number, err)
	}
	return nil
}

// CreateIssue implements web.Storage.
func (w *Web) CreateIssue(ctx context.Context, rev *web.Revision, title string, issueJSON []byte) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := rev.CreatedAt.UnixMilli()
	res, err := tx.ExecContext(ctx, `INSERT INTO web_issues (slug, title, source_name, source, issue_json, uploaded_by,
		created_at, updated_at, head, valid_revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 1) ON CONFLICT (slug) DO NOTHING`,
		rev.Slug, title, rev.SourceName, rev.Source, issueJSON, rev.Author, now, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return web.ErrExists
	}
	r := *rev
	r.Number = 1
	if err := webInsertRevision(ctx, tx, &r); err != nil {
		return err
	}
	return tx.Commit()
}

// AppendRevision implements web.Storage. The first statement updates the
// issue's row, which locks it until the transaction ends, so that two
// saves of the same base cannot both read the same head (the second waits,
// then reads the head the first wrote).
func (w *Web) AppendRevision(ctx context.Context, slug string, now time.Time,
	decide func(head *web.Revision, sent int) (*web.RevisionAppend, error)) (*web.Revision, error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var head, sent int
	err = tx.QueryRowContext(ctx, `UPDATE web_issues SET updated_at = $1 WHERE slug = $2 RETURNING head, sent_revision`,
		now.UnixMilli(), slug).Scan(&head, &sent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, web.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	headRev, err := webScanRevision(tx.QueryRowContext(ctx, `SELECT `+webRevisionColumns+` FROM web_revisions
		WHERE slug = $1 AND number = $2`, slug, head), true)
	if err != nil {
		return nil, fmt.Errorf("head revision %d: %w", head, err)
	}
	add, err := decide(headRev, sent)
	if err != nil {
		return nil, err
	}
	if add == nil {
		return headRev, nil
	}
	r := add.Revision
	r.Slug, r.Number = slug, head+1
	if err := webInsertRevision(ctx, tx, &r); err != nil {
		return nil, err
	}
	if add.IssueJSON != nil {
		_, err = tx.ExecContext(ctx, `UPDATE web_issues SET head = $1, valid_revision = $2, title = $3, source_name = $4,
			source = $5, issue_json = $6, uploaded_by = $7 WHERE slug = $8`,
			r.Number, r.Number, add.Title, r.SourceName, r.Source, add.IssueJSON, r.Author, slug)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE web_issues SET head = $1 WHERE slug = $2`, r.Number, slug)
	}
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return w.Revision(ctx, slug, r.Number)
}

// Revision implements web.Storage.
func (w *Web) Revision(ctx context.Context, slug string, number int) (*web.Revision, error) {
	r, err := webScanRevision(w.db.QueryRowContext(ctx, `SELECT `+webRevisionColumns+` FROM web_revisions
		WHERE slug = $1 AND number = $2`, slug, number), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, web.ErrNotFound
	}
	return r, err
}

func (w *Web) webRevisionList(ctx context.Context, query string, args ...any) ([]*web.Revision, error) {
	rows, err := w.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*web.Revision
	for rows.Next() {
		r, err := webScanRevision(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Revisions implements web.Storage.
func (w *Web) Revisions(ctx context.Context, slug string) ([]*web.Revision, error) {
	return w.webRevisionList(ctx, `SELECT `+webRevisionListColumns+` FROM web_revisions r
		WHERE r.slug = $1 ORDER BY r.number DESC`, slug)
}

// Corrections implements web.Storage.
func (w *Web) Corrections(ctx context.Context, slug string) ([]*web.Revision, error) {
	return w.webRevisionList(ctx, `SELECT `+webRevisionListColumns+` FROM web_revisions r
		JOIN web_issues i ON i.slug = r.slug
		WHERE r.slug = $1 AND i.sent_revision > 0 AND r.number > i.sent_revision AND r.number <= i.valid_revision
		AND r.kind = $2 ORDER BY r.number`, slug, string(web.KindCorrection))
}

// Issue implements web.Storage.
func (w *Web) Issue(ctx context.Context, slug string) (*web.StoredIssue, []byte, error) {
	var is web.StoredIssue
	var js []byte
	var created, updated int64
	err := w.db.QueryRowContext(ctx, `SELECT slug, title, source_name, source, issue_json, uploaded_by, created_at, updated_at
		FROM web_issues WHERE slug = $1`, slug).Scan(&is.Slug, &is.Title, &is.SourceName, &is.Source, &js, &is.UploadedBy, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, web.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	is.CreatedAt, is.UpdatedAt = webMillis(created), webMillis(updated)
	return &is, js, nil
}

// Issues implements web.Storage.
func (w *Web) Issues(ctx context.Context) ([]*web.StoredIssue, error) {
	rows, err := w.db.QueryContext(ctx, `SELECT slug, title, source_name, uploaded_by, created_at, updated_at
		FROM web_issues ORDER BY updated_at DESC, slug DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*web.StoredIssue
	for rows.Next() {
		var is web.StoredIssue
		var created, updated int64
		if err := rows.Scan(&is.Slug, &is.Title, &is.SourceName, &is.UploadedBy, &created, &updated); err != nil {
			return nil, err
		}
		is.CreatedAt, is.UpdatedAt = webMillis(created), webMillis(updated)
		out = append(out, &is)
	}
	return out, rows.Err()
}

const webIssueStateColumns = `slug, title, head, valid_revision, sent_revision, sent_at, updated_at`

func webScanIssueState(row interface{ Scan(...any) error }) (web.IssueState, error) {
	var st web.IssueState
	var sentAt sql.NullInt64
	var updated int64
	if err := row.Scan(&st.Slug, &st.Title, &st.Head, &st.Valid, &st.Sent, &sentAt, &updated); err != nil {
		return web.IssueState{}, err
	}
	if sentAt.Valid {
		st.SentAt = webMillis(sentAt.Int64)
	}
	st.UpdatedAt = webMillis(updated)
	return st, nil
}

// IssueState implements web.Storage.
func (w *Web) IssueState(ctx context.Context, slug string) (web.IssueState, error) {
	st, err := webScanIssueState(w.db.QueryRowContext(ctx, `SELECT `+webIssueStateColumns+` FROM web_issues WHERE slug = $1`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return web.IssueState{}, web.ErrNotFound
	}
	return st, err
}

// IssueStates implements web.Storage.
func (w *Web) IssueStates(ctx context.Context) ([]web.IssueState, error) {
	rows, err := w.db.QueryContext(ctx, `SELECT `+webIssueStateColumns+` FROM web_issues ORDER BY updated_at DESC, slug DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []web.IssueState
	for rows.Next() {
		st, err := webScanIssueState(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// MarkSent implements web.Storage.
func (w *Web) MarkSent(ctx context.Context, slug string, revision int, now time.Time) (bool, error) {
	res, err := w.db.ExecContext(ctx, `UPDATE web_issues SET sent_revision = $1, sent_at = $2 WHERE slug = $3 AND sent_revision = 0`,
		revision, now.UnixMilli(), slug)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
