package web

// The composer's storage: revisions of issues, the lock a send puts on an
// issue, and work posted after a session expired. Every SQL statement of
// the composer is in this file, in plain SQL without engine-specific
// functions.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/compose"
)

// RevisionKind says how a revision came to be.
type RevisionKind string

// The kinds of revisions.
const (
	KindNew        RevisionKind = "new"        // the first revision of an issue started in the composer
	KindSave       RevisionKind = "save"       // the editor pressed save
	KindAutosave   RevisionKind = "autosave"   // saved while the editor typed
	KindUpload     RevisionKind = "upload"     // a file uploaded (Markdown or the plain-text monthly)
	KindRestore    RevisionKind = "restore"    // an earlier revision restored
	KindMerge      RevisionKind = "merge"      // two editors' versions merged after a conflict
	KindCorrection RevisionKind = "correction" // a change after the issue was sent
)

// Errors of the composer's storage, checked with errors.Is.
var (
	// ErrConflict: a save based on a revision that is no longer the newest
	// (another editor saved meanwhile). The error is a *ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrLocked: the issue was sent; only corrections may change it.
	ErrLocked = errors.New("locked")
)

// ConflictError refuses a save whose base is not the newest revision.
type ConflictError struct {
	Base int       // the revision the save was based on
	Head *Revision // the newest revision, with its source
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("issue %q: the save is based on revision %d, but revision %d (by %s) is newer",
		e.Head.Slug, e.Base, e.Head.Number, e.Head.Author)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Revision is one saved state of an issue.
type Revision struct {
	Slug       string       `json:"slug"`
	Number     int          `json:"number"`
	Kind       RevisionKind `json:"kind"`
	Base       int          `json:"base"`
	Author     string       `json:"author"`
	Note       string       `json:"note,omitempty"`
	SourceName string       `json:"source_name"`
	Source     []byte       `json:"-"` // nil in lists
	Form       []byte       `json:"-"` // the composer's fields as posted, URL-encoded; nil for uploads and in lists
	Size       int          `json:"size"`
	Valid      bool         `json:"valid"` // the source parses
	CreatedAt  time.Time    `json:"created_at"`
}

// IssueState is where an issue's revisions stand.
type IssueState struct {
	Slug      string
	Title     string
	Head      int       // the newest revision
	Valid     int       // the newest revision that parses: the issue that is previewed and sent
	Sent      int       // the revision a send took; 0 if none
	SentAt    time.Time // zero if never sent
	UpdatedAt time.Time
}

// Locked reports whether the issue was sent: later revisions are
// corrections.
func (st IssueState) Locked() bool { return st.Sent > 0 }

// NewRevision is a revision to save.
type NewRevision struct {
	Slug string
	// Base is the revision the editor started from. It must be the newest
	// revision, or the save is refused with a *ConflictError. AnyBase
	// skips the check (an upload through the API replaces whatever is
	// there, keeping it as an earlier revision).
	Base       int
	Kind       RevisionKind
	Author     string
	Note       string
	SourceName string
	Source     []byte
	// Form is the composer's fields as posted (URL-encoded), kept with
	// the Markdown so that a draft that does not parse yet opens again as
	// it was typed; nil for uploads.
	Form []byte
	// Issue is Source parsed; nil when Source does not parse (a draft in
	// the middle of an edit), which is stored but cannot be sent.
	Issue *compose.Issue
	// Correction allows the save on a sent issue. Every kind but
	// KindAutosave is then stored as KindCorrection.
	Correction bool
}

// AnyBase as NewRevision.Base saves without the conflict check.
const AnyBase = -1

const revisionColumns = `slug, number, kind, base, author, note, source_name, source, form, valid, created_at`

func scanRevision(row interface{ Scan(...any) error }, withSource bool) (*Revision, error) {
	var r Revision
	var valid, created int64
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
	r.Valid = valid != 0
	r.CreatedAt = time.UnixMilli(created).UTC()
	return &r, nil
}

// CreateIssue stores revision 1 of a new issue, which must parse
// (nr.Issue set). An issue with the slug already there is ErrExists.
func (s *Store) CreateIssue(ctx context.Context, nr NewRevision) (*Revision, error) {
	if nr.Issue == nil || nr.Slug == "" || nr.Issue.Slug != nr.Slug {
		return nil, fmt.Errorf("%w: a new issue needs a slug and a source that parses", ErrInvalid)
	}
	js, err := json.Marshal(nr.Issue)
	if err != nil {
		return nil, fmt.Errorf("create issue: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create issue: %w", err)
	}
	defer tx.Rollback()
	now := s.now().UnixMilli()
	res, err := tx.ExecContext(ctx, `INSERT INTO web_issues (slug, title, source_name, source, issue_json, uploaded_by,
		created_at, updated_at, head, valid_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1) ON CONFLICT (slug) DO NOTHING`,
		nr.Slug, nr.Issue.Title, nr.SourceName, nr.Source, js, nr.Author, now, now)
	if err != nil {
		return nil, fmt.Errorf("create issue: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("issue %q: %w", nr.Slug, ErrExists)
	}
	if err := insertRevision(ctx, tx, nr, 1, now, true); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create issue: %w", err)
	}
	return s.Revision(ctx, nr.Slug, 1)
}

func insertRevision(ctx context.Context, tx *sql.Tx, nr NewRevision, number int, now int64, valid bool) error {
	v := 0
	if valid {
		v = 1
	}
	base := max(nr.Base, 0)
	if _, err := tx.ExecContext(ctx, `INSERT INTO web_revisions (`+revisionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		nr.Slug, number, string(nr.Kind), base, nr.Author, nr.Note, nr.SourceName, nr.Source, nr.Form, v, now); err != nil {
		return fmt.Errorf("save revision %d of %q: %w", number, nr.Slug, err)
	}
	return nil
}

// SaveRevision stores a new revision of an existing issue and makes it
// the newest. When nr.Issue is set (the source parses) it also becomes
// the issue that is previewed and sent. A source equal to the newest
// revision's stores nothing and returns that revision. Errors: ErrNotFound,
// a *ConflictError (ErrConflict) when nr.Base is not the newest revision,
// ErrLocked when the issue was sent and nr.Correction is false.
func (s *Store) SaveRevision(ctx context.Context, nr NewRevision) (*Revision, error) {
	var js []byte
	if nr.Issue != nil {
		var err error
		if js, err = json.Marshal(nr.Issue); err != nil {
			return nil, fmt.Errorf("save revision: %w", err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save revision: %w", err)
	}
	defer tx.Rollback()
	// Writing first takes SQLite's write lock, so that two saves of the
	// same base cannot both read the same head.
	now := s.now().UnixMilli()
	res, err := tx.ExecContext(ctx, `UPDATE web_issues SET updated_at = ? WHERE slug = ?`, now, nr.Slug)
	if err != nil {
		return nil, fmt.Errorf("save revision: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("issue %q: %w", nr.Slug, ErrNotFound)
	}
	var head, sent int
	if err := tx.QueryRowContext(ctx, `SELECT head, sent_revision FROM web_issues WHERE slug = ?`, nr.Slug).Scan(&head, &sent); err != nil {
		return nil, fmt.Errorf("save revision: %w", err)
	}
	headRev, err := scanRevision(tx.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM web_revisions WHERE slug = ? AND number = ?`,
		nr.Slug, head), true)
	if err != nil {
		return nil, fmt.Errorf("save revision: head %d of %q: %w", head, nr.Slug, err)
	}
	if nr.Base != AnyBase && nr.Base != head {
		return nil, &ConflictError{Base: nr.Base, Head: headRev}
	}
	if sent > 0 && !nr.Correction {
		return nil, fmt.Errorf("issue %q was sent (revision %d): %w", nr.Slug, sent, ErrLocked)
	}
	if bytes.Equal(headRev.Source, nr.Source) && headRev.SourceName == nr.SourceName && (nr.Form == nil || bytes.Equal(headRev.Form, nr.Form)) {
		return headRev, nil // nothing changed: no empty revision
	}
	if sent > 0 && nr.Kind != KindAutosave {
		nr.Kind = KindCorrection
	}
	number := head + 1
	if err := insertRevision(ctx, tx, nr, number, now, nr.Issue != nil); err != nil {
		return nil, err
	}
	if nr.Issue != nil {
		_, err = tx.ExecContext(ctx, `UPDATE web_issues SET head = ?, valid_revision = ?, title = ?, source_name = ?,
			source = ?, issue_json = ?, uploaded_by = ? WHERE slug = ?`,
			number, number, nr.Issue.Title, nr.SourceName, nr.Source, js, nr.Author, nr.Slug)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE web_issues SET head = ? WHERE slug = ?`, number, nr.Slug)
	}
	if err != nil {
		return nil, fmt.Errorf("save revision: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("save revision: %w", err)
	}
	return s.Revision(ctx, nr.Slug, number)
}

// Revision returns one revision of an issue with its source.
func (s *Store) Revision(ctx context.Context, slug string, number int) (*Revision, error) {
	r, err := scanRevision(s.db.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM web_revisions
		WHERE slug = ? AND number = ?`, slug, number), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("revision %d of %q: %w", number, slug, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("revision %d of %q: %w", number, slug, err)
	}
	return r, nil
}

// HeadRevision returns the newest revision of an issue with its source.
func (s *Store) HeadRevision(ctx context.Context, slug string) (*Revision, error) {
	st, err := s.IssueState(ctx, slug)
	if err != nil {
		return nil, err
	}
	return s.Revision(ctx, slug, st.Head)
}

// Revisions lists an issue's revisions, newest first, without their
// sources.
func (s *Store) Revisions(ctx context.Context, slug string) ([]*Revision, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT slug, number, kind, base, author, note, source_name, octet_length(source),
		NULL, valid, created_at FROM web_revisions WHERE slug = ? ORDER BY number DESC`, slug)
	if err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", slug, err)
	}
	defer rows.Close()
	var out []*Revision
	for rows.Next() {
		r, err := scanRevision(rows, false)
		if err != nil {
			return nil, fmt.Errorf("revisions of %q: %w", slug, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", slug, err)
	}
	if len(out) == 0 {
		if _, err := s.IssueState(ctx, slug); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const issueStateColumns = `slug, title, head, valid_revision, sent_revision, sent_at, updated_at`

func scanIssueState(row interface{ Scan(...any) error }) (IssueState, error) {
	var st IssueState
	var sentAt sql.NullInt64
	var updated int64
	if err := row.Scan(&st.Slug, &st.Title, &st.Head, &st.Valid, &st.Sent, &sentAt, &updated); err != nil {
		return IssueState{}, err
	}
	if sentAt.Valid {
		st.SentAt = time.UnixMilli(sentAt.Int64).UTC()
	}
	st.UpdatedAt = time.UnixMilli(updated).UTC()
	return st, nil
}

// IssueState returns where an issue's revisions stand.
func (s *Store) IssueState(ctx context.Context, slug string) (IssueState, error) {
	st, err := scanIssueState(s.db.QueryRowContext(ctx, `SELECT `+issueStateColumns+` FROM web_issues WHERE slug = ?`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return IssueState{}, fmt.Errorf("issue %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return IssueState{}, fmt.Errorf("issue %q: %w", slug, err)
	}
	return st, nil
}

// IssueStates returns the state of every issue, most recently updated
// first.
func (s *Store) IssueStates(ctx context.Context) ([]IssueState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+issueStateColumns+` FROM web_issues ORDER BY updated_at DESC, slug DESC`)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	defer rows.Close()
	var out []IssueState
	for rows.Next() {
		st, err := scanIssueState(rows)
		if err != nil {
			return nil, fmt.Errorf("list issues: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// MarkSent locks an issue: its revision valid (the one the send took)
// is recorded as sent, once; later sends keep the first record.
func (s *Store) MarkSent(ctx context.Context, slug string, valid int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE web_issues SET sent_revision = ?, sent_at = ? WHERE slug = ? AND sent_revision = 0`,
		valid, s.now().UnixMilli(), slug)
	if err != nil {
		return fmt.Errorf("mark %q sent: %w", slug, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.IssueState(ctx, slug); err != nil {
			return err
		}
	}
	return nil
}

// Corrections returns the corrections made to a sent issue after its sent
// revision, oldest first, without sources; none when the issue was not
// sent or not corrected, or is not in the store.
func (s *Store) Corrections(ctx context.Context, slug string) ([]*Revision, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.slug, r.number, r.kind, r.base, r.author, r.note, r.source_name,
		octet_length(r.source), NULL, r.valid, r.created_at FROM web_revisions r JOIN web_issues i ON i.slug = r.slug
		WHERE r.slug = ? AND i.sent_revision > 0 AND r.number > i.sent_revision AND r.number <= i.valid_revision
		AND r.kind = ? ORDER BY r.number`, slug, string(KindCorrection))
	if err != nil {
		return nil, fmt.Errorf("corrections of %q: %w", slug, err)
	}
	defer rows.Close()
	var out []*Revision
	for rows.Next() {
		r, err := scanRevision(rows, false)
		if err != nil {
			return nil, fmt.Errorf("corrections of %q: %w", slug, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ---- work posted after a session expired ----

// pendingTTL is how long work posted without a live session is kept for
// the editor to sign in again.
const pendingTTL = 24 * time.Hour

// StashPending keeps a form posted to the composer after the editor's
// session expired, and returns the cookie value that claims it (only its
// hash is stored). With the cookie value of an earlier stash (old), the
// newer work replaces it. Stashes older than a day are removed.
func (s *Store) StashPending(ctx context.Context, old, slug string, form []byte) (string, error) {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM web_pending WHERE created_at < ?`, now.Add(-pendingTTL).UnixMilli()); err != nil {
		return "", fmt.Errorf("stash pending work: %w", err)
	}
	if old != "" && len(old) <= 128 {
		res, err := s.db.ExecContext(ctx, `UPDATE web_pending SET slug = ?, form = ?, created_at = ? WHERE id_hash = ?`,
			slug, form, now.UnixMilli(), hashSecret(old))
		if err != nil {
			return "", fmt.Errorf("stash pending work: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return old, nil
		}
	}
	id := randomToken(32)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO web_pending (id_hash, slug, form, created_at) VALUES (?, ?, ?, ?)`,
		hashSecret(id), slug, form, now.UnixMilli()); err != nil {
		return "", fmt.Errorf("stash pending work: %w", err)
	}
	return id, nil
}

// TakePending returns and removes the work stashed under a cookie value;
// ErrNotFound when there is none (or it is older than a day).
func (s *Store) TakePending(ctx context.Context, cookie string) (slug string, form []byte, err error) {
	if cookie == "" || len(cookie) > 128 {
		return "", nil, ErrNotFound
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, fmt.Errorf("pending work: %w", err)
	}
	defer tx.Rollback()
	var created int64
	err = tx.QueryRowContext(ctx, `SELECT slug, form, created_at FROM web_pending WHERE id_hash = ?`, hashSecret(cookie)).
		Scan(&slug, &form, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("pending work: %w", ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("pending work: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM web_pending WHERE id_hash = ?`, hashSecret(cookie)); err != nil {
		return "", nil, fmt.Errorf("pending work: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", nil, fmt.Errorf("pending work: %w", err)
	}
	if s.now().Sub(time.UnixMilli(created)) > pendingTTL {
		return "", nil, fmt.Errorf("pending work: %w", ErrNotFound)
	}
	return slug, form, nil
}
