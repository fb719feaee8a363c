package web

import (
	"context"
	"time"
)

// Storage is where [Store] keeps the web's data: editors, console
// sessions, API tokens, issues with their revisions, and work posted after
// a session expired, and the audit log. Package web decides (passwords, secrets, the rules of
// revisions); a Storage only reads and writes rows, one implementation per
// database engine (internal/store/sqlite and internal/store/postgres,
// chosen by store.Web). Secrets arrive already hashed. Times are kept to
// the millisecond.
//
// Errors the implementations return, checked with errors.Is:
// ErrNotFound for a missing editor, session, token, issue, revision or
// pending work; ErrExists for a name or slug already taken.
type Storage interface {
	// InsertEditor adds an editor and returns its id; ErrExists if the
	// name is taken.
	InsertEditor(ctx context.Context, name, passwordHash string, now time.Time) (int64, error)
	// SetPasswordHash replaces an editor's password hash and deletes the
	// editor's sessions; ErrNotFound if there is no such editor.
	SetPasswordHash(ctx context.Context, name, passwordHash string, now time.Time) error
	// Editors lists the editors who are not disabled, by name.
	Editors(ctx context.Context) ([]Editor, error)
	// EditorCredentials returns an editor who is not disabled and the
	// editor's password hash; ErrNotFound otherwise.
	EditorCredentials(ctx context.Context, name string) (Editor, string, error)

	// InsertSession stores a session under the hash of its cookie value
	// and deletes the sessions that expired before now.
	InsertSession(ctx context.Context, idHash []byte, editorID int64, csrf string, now, expires time.Time) error
	// Session returns the session stored under idHash if it expires
	// after now and its editor is not disabled; ErrNotFound otherwise.
	Session(ctx context.Context, idHash []byte, now time.Time) (Session, error)
	// DeleteSession deletes the session stored under idHash, if any.
	DeleteSession(ctx context.Context, idHash []byte) error

	// InsertAPIToken stores the hash of a bearer token of the named
	// editor (not disabled); ErrNotFound if there is no such editor.
	InsertAPIToken(ctx context.Context, editor, label string, tokenHash []byte, now time.Time) error
	// RevokeAPITokens revokes the named editor's live tokens and returns
	// how many there were.
	RevokeAPITokens(ctx context.Context, editor string, now time.Time) (int64, error)
	// APIToken returns the editor (not disabled) of the live token stored
	// under tokenHash and records now as its last use; ErrNotFound
	// otherwise.
	APIToken(ctx context.Context, tokenHash []byte, now time.Time) (Editor, error)

	// CreateIssue stores a new issue (the parse of rev as issueJSON) and
	// rev as its revision 1; ErrExists if the slug is taken.
	CreateIssue(ctx context.Context, rev *Revision, title string, issueJSON []byte) error
	// AppendRevision adds a revision to an existing issue (ErrNotFound
	// otherwise). In one transaction that no other append of the same
	// issue can interleave with, it reads the newest revision (with its
	// source) and the revision a send took (0: none), and calls decide. An
	// error from decide is returned as it is; a nil append stores nothing
	// and returns the newest revision; otherwise the append is stored as
	// revision head+1, which becomes the newest (and, with its
	// IssueJSON, the issue previewed and sent), and is returned.
	AppendRevision(ctx context.Context, slug string, now time.Time, decide func(head *Revision, sent int) (*RevisionAppend, error)) (*Revision, error)
	// Revision returns one revision with its source and form.
	Revision(ctx context.Context, slug string, number int) (*Revision, error)
	// Revisions lists an issue's revisions newest first, with Size but
	// without Source or Form; none (and no error) for a missing issue.
	Revisions(ctx context.Context, slug string) ([]*Revision, error)
	// Corrections lists, oldest first and without sources, the revisions
	// of kind KindCorrection after the sent revision of a sent issue, up
	// to its newest revision that parses.
	Corrections(ctx context.Context, slug string) ([]*Revision, error)
	// Issue returns a stored issue with its source, and its parse as
	// stored by CreateIssue or AppendRevision.
	Issue(ctx context.Context, slug string) (*StoredIssue, []byte, error)
	// Issues lists the issues, most recently updated first, without
	// sources.
	Issues(ctx context.Context) ([]*StoredIssue, error)
	// IssueState returns where an issue's revisions stand.
	IssueState(ctx context.Context, slug string) (IssueState, error)
	// IssueStates returns every issue's state, most recently updated
	// first.
	IssueStates(ctx context.Context) ([]IssueState, error)
	// MarkSent records revision as the one a send took, at now, unless a
	// send was recorded before; marked says whether this call recorded it.
	MarkSent(ctx context.Context, slug string, revision int, now time.Time) (marked bool, err error)

	// DeletePendingBefore deletes the pending work stashed before t.
	DeletePendingBefore(ctx context.Context, t time.Time) error
	// ReplacePending replaces the work stashed under idHash and reports
	// whether there was any.
	ReplacePending(ctx context.Context, idHash []byte, slug string, form []byte, now time.Time) (bool, error)
	// InsertPending stashes work under idHash.
	InsertPending(ctx context.Context, idHash []byte, slug string, form []byte, now time.Time) error
	// TakePending deletes and returns the work stashed under idHash, and
	// when it was stashed; ErrNotFound if there is none.
	TakePending(ctx context.Context, idHash []byte) (slug string, form []byte, stashed time.Time, err error)

	// InsertAudit appends e (its ID is ignored) to the audit log.
	InsertAudit(ctx context.Context, e AuditEntry) error
	// AuditLog returns up to limit entries with an ID below beforeID (0:
	// from the newest), newest first.
	AuditLog(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error)
	// TrimAudit deletes the entries recorded before t and returns how
	// many went.
	TrimAudit(ctx context.Context, before time.Time) (int64, error)
	// Ping checks that the database answers a query on the web's tables.
	Ping(ctx context.Context) error
}

// RevisionAppend is a revision AppendRevision stores, as the decide
// function of SaveRevision chose it.
type RevisionAppend struct {
	// Revision is stored with the number head+1 (its Number is ignored);
	// Valid says whether its source parses.
	Revision Revision
	// Title and IssueJSON are the parsed issue when the source parses
	// (IssueJSON not nil): the issue then previewed and sent.
	Title     string
	IssueJSON []byte
}
