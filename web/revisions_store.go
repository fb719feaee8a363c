package web

// The composer's rules for storage: revisions of issues, the lock a send
// puts on an issue, and work posted after a session expired. The rows are
// kept by the Storage (storage.go).

import (
	"bytes"
	"context"
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
	rev := nr.revision(1, s.now(), true)
	if err := s.st.CreateIssue(ctx, &rev, nr.Issue.Title, js); errors.Is(err, ErrExists) {
		return nil, fmt.Errorf("issue %q: %w", nr.Slug, ErrExists)
	} else if err != nil {
		return nil, fmt.Errorf("create issue %q: %w", nr.Slug, err)
	}
	return s.Revision(ctx, nr.Slug, 1)
}

// revision is the Revision nr stores as number.
func (nr NewRevision) revision(number int, now time.Time, valid bool) Revision {
	return Revision{Slug: nr.Slug, Number: number, Kind: nr.Kind, Base: max(nr.Base, 0), Author: nr.Author,
		Note: nr.Note, SourceName: nr.SourceName, Source: nr.Source, Form: nr.Form, Size: len(nr.Source),
		Valid: valid, CreatedAt: now.UTC().Truncate(time.Millisecond)}
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
	now := s.now()
	rev, err := s.st.AppendRevision(ctx, nr.Slug, now, func(head *Revision, sent int) (*RevisionAppend, error) {
		if nr.Base != AnyBase && nr.Base != head.Number {
			return nil, &ConflictError{Base: nr.Base, Head: head}
		}
		if sent > 0 && !nr.Correction {
			return nil, fmt.Errorf("issue %q was sent (revision %d): %w", nr.Slug, sent, ErrLocked)
		}
		if bytes.Equal(head.Source, nr.Source) && head.SourceName == nr.SourceName && (nr.Form == nil || bytes.Equal(head.Form, nr.Form)) {
			return nil, nil // nothing changed: no empty revision
		}
		add := nr
		if sent > 0 && add.Kind != KindAutosave {
			add.Kind = KindCorrection
		}
		ra := &RevisionAppend{Revision: add.revision(head.Number+1, now, nr.Issue != nil), IssueJSON: js}
		if nr.Issue != nil {
			ra.Title = nr.Issue.Title
		}
		return ra, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("issue %q: %w", nr.Slug, ErrNotFound)
	}
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) || errors.Is(err, ErrLocked) {
			return nil, err
		}
		return nil, fmt.Errorf("save revision of %q: %w", nr.Slug, err)
	}
	return rev, nil
}

// Revision returns one revision of an issue with its source.
func (s *Store) Revision(ctx context.Context, slug string, number int) (*Revision, error) {
	r, err := s.st.Revision(ctx, slug, number)
	if errors.Is(err, ErrNotFound) {
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
	out, err := s.st.Revisions(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("revisions of %q: %w", slug, err)
	}
	if len(out) == 0 {
		if _, err := s.IssueState(ctx, slug); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// IssueState returns where an issue's revisions stand.
func (s *Store) IssueState(ctx context.Context, slug string) (IssueState, error) {
	st, err := s.st.IssueState(ctx, slug)
	if errors.Is(err, ErrNotFound) {
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
	list, err := s.st.IssueStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	return list, nil
}

// MarkSent locks an issue: its revision valid (the one the send took)
// is recorded as sent, once; later sends keep the first record.
func (s *Store) MarkSent(ctx context.Context, slug string, valid int) error {
	marked, err := s.st.MarkSent(ctx, slug, valid, s.now())
	if err != nil {
		return fmt.Errorf("mark %q sent: %w", slug, err)
	}
	if !marked {
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
	list, err := s.st.Corrections(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("corrections of %q: %w", slug, err)
	}
	return list, nil
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
	if err := s.st.DeletePendingBefore(ctx, now.Add(-pendingTTL)); err != nil {
		return "", fmt.Errorf("stash pending work: %w", err)
	}
	if old != "" && len(old) <= 128 {
		replaced, err := s.st.ReplacePending(ctx, hashSecret(old), slug, form, now)
		if err != nil {
			return "", fmt.Errorf("stash pending work: %w", err)
		}
		if replaced {
			return old, nil
		}
	}
	id := randomToken(32)
	if err := s.st.InsertPending(ctx, hashSecret(id), slug, form, now); err != nil {
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
	slug, form, stashed, err := s.st.TakePending(ctx, hashSecret(cookie))
	if err != nil {
		return "", nil, fmt.Errorf("pending work: %w", err)
	}
	if s.now().Sub(stashed) > pendingTTL {
		return "", nil, fmt.Errorf("pending work: %w", ErrNotFound)
	}
	return slug, form, nil
}
