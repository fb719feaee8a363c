package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// State is where a send is in its life.
type State string

// The states of a send.
const (
	Scheduled State = "scheduled" // waiting for its time
	Planning  State = "planning"  // recipients being recorded; batches may already go out
	Sending   State = "sending"   // fully planned, batches going out
	Done      State = "done"      // every delivery has an outcome
	Paused    State = "paused"    // stopped by the editor or a policy refusal; resumable
	Cancelled State = "cancelled" // stopped for good (by the editor, or past its not-after time)
	Failed    State = "failed"    // could not be planned (LastError says why); copies not yet sent were cancelled
)

// Final reports whether no more mail can go out for a send in state s.
func (s State) Final() bool { return s == Done || s == Cancelled || s == Failed }

// Errors returned by the send operations, checked with errors.Is.
var (
	// ErrNotFound: no send with that id.
	ErrNotFound = errors.New("send not found")
	// ErrState: the operation is not allowed in the send's current state.
	ErrState = errors.New("operation not allowed in this state")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("invalid send")
	// ErrNoList: the send names a list that does not exist.
	ErrNoList = errors.New("no such list")
	// ErrAlreadySent: the issue went, or is going, to the list in an
	// earlier send (a *DuplicateError says which).
	ErrAlreadySent = errors.New("issue already sent to this list")
	// ErrKeyReused: NewSend.Key names a send created by another request.
	ErrKeyReused = errors.New("idempotency key already used for another request")
)

// EarlierSend is an earlier send of an issue to a list, as Create names it
// when it refuses a second one.
type EarlierSend struct {
	ID         int64
	State      State
	CreatedAt  time.Time
	FinishedAt time.Time // zero while it runs
	Sent       int64     // copies the relay accepted
}

// Running reports whether the earlier send may still send copies.
func (e EarlierSend) Running() bool { return !e.State.Final() }

// DuplicateError is Create's refusal of a send of an issue to a list it
// went to, or is going to, in Earlier. It wraps ErrAlreadySent.
type DuplicateError struct {
	Issue, List string
	Earlier     EarlierSend
	// Again is true when the send was asked for with NewSend.Again: it is
	// refused because Earlier is still running, and would be accepted once
	// Earlier is done or cancelled.
	Again bool
}

func (e *DuplicateError) Error() string {
	at := e.Earlier.CreatedAt.UTC().Format("2006-01-02 15:04Z")
	if e.Earlier.Running() {
		return fmt.Sprintf("issue %q is being sent to list %q by send %d (%s, created %s)",
			e.Issue, e.List, e.Earlier.ID, e.Earlier.State, at)
	}
	return fmt.Sprintf("issue %q was already sent to list %q by send %d (%s, created %s, %d copies sent)",
		e.Issue, e.List, e.Earlier.ID, e.Earlier.State, at, e.Earlier.Sent)
}

func (e *DuplicateError) Unwrap() error { return ErrAlreadySent }

// Counts are a send's delivery figures.
type Counts struct {
	Planned    int64 // deliveries recorded
	Queued     int64 // waiting (queued, or being sent right now)
	Retrying   int64 // failed temporarily, will be retried
	Sent       int64
	Skipped    int64 // reader unsubscribed/bounced/has nothing to read now
	FailedTemp int64 // gave up after temporary failures
	FailedPerm int64 // refused permanently (5xx)
	Cancelled  int64
	// AlreadyHad counts the readers a send asked for with NewSend.Again
	// left out, because an earlier send of the issue to the list gave them
	// a copy. They are not among the planned deliveries.
	AlreadyHad int64
}

// Finished returns the number of deliveries with a final outcome.
func (c Counts) Finished() int64 {
	return c.Sent + c.Skipped + c.FailedTemp + c.FailedPerm + c.Cancelled
}

// Send is one send of an issue to a list.
type Send struct {
	ID          int64
	UID         string
	Issue       *compose.Issue
	List        string
	Filter      *audience.Prefs // nil: the whole list
	State       State
	ScheduledAt time.Time
	NotAfter    time.Time // zero: no limit
	PlanDone    bool
	Batches     int64
	Counts      Counts
	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	LastError   string
	PauseReason string
	// Again: the send leaves out the readers who had the issue from an
	// earlier send to the list (NewSend.Again).
	Again bool
	// GateWarning is the send gate's warning when Create let the send go
	// with one (complaint rate at or above the warning threshold, or a
	// closed gate ignored on request). Not stored.
	GateWarning string
	// Replayed: Create found the send a request with the same key created
	// earlier, and returned it without creating another. Not stored.
	Replayed bool

	pausedFrom State
	planCursor int64
}

// NewSend describes a send to create.
type NewSend struct {
	Issue  *compose.Issue
	List   string
	Filter *audience.Prefs // optional
	At     time.Time       // zero: now
	// NotAfter is the latest time planning may start; a worker that
	// picks the send up later cancels it and records why. Zero: no limit.
	NotAfter time.Time
	// IgnoreGate lets the send go although the send gate is closed (an
	// editor's explicit override, logged at warn level).
	IgnoreGate bool
	// Again asks for a send of an issue to a list that an earlier send of
	// it went to (without it, Create refuses with a *DuplicateError). It
	// goes only to the readers who have not had a copy from any earlier
	// send of the issue to the list; it is refused while an earlier one is
	// still running.
	Again bool
	// Key, if set, makes Create idempotent: a second Create with the same
	// key and the same request returns the send the first created
	// (Send.Replayed), with another request it fails with ErrKeyReused.
	// Callers scope keys (the web server prefixes the editor's name).
	Key string

	uid string // set by the monthly schedule to make the send unique
}

// msTime is a stored time (Unix ms, 0 for none).
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func newUID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestHash sums up what makes a send (the fields of ns and the
// issue's content) for NewSend.Key: a retried request has the same.
func requestHash(ns NewSend, issueJSON []byte) string {
	h := sha256.New()
	ih := sha256.Sum256(issueJSON)
	fmt.Fprintf(h, "send v1\x00%s\x00%x\x00%s\x00", ns.Issue.Slug, ih, ns.List)
	if ns.Filter != nil {
		fmt.Fprintf(h, "filter %s\x00", ns.Filter.Key())
	}
	fmt.Fprintf(h, "at %d\x00not_after %d\x00again %t\x00ignore_gate %t", unixMS(ns.At), unixMS(ns.NotAfter), ns.Again, ns.IgnoreGate)
	return hex.EncodeToString(h.Sum(nil))
}

func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// encodeSend is what insertSend stores of ns: the issue and filter as
// JSON, and the request's hash when it has a key.
func encodeSend(ns NewSend) (issueJSON []byte, filter string, hash string, err error) {
	if ns.Issue == nil || ns.List == "" {
		return nil, "", "", fmt.Errorf("%w: issue and list are required", ErrInvalid)
	}
	if issueJSON, err = json.Marshal(ns.Issue); err != nil {
		return nil, "", "", fmt.Errorf("queue: encode issue: %w", err)
	}
	if ns.Filter != nil {
		b, err := json.Marshal(ns.Filter)
		if err != nil {
			return nil, "", "", fmt.Errorf("queue: encode filter: %w", err)
		}
		filter = string(b)
	}
	if ns.Key != "" {
		hash = requestHash(ns, issueJSON)
	}
	return issueJSON, filter, hash, nil
}

// insertSend records a new send in state scheduled, in one transaction
// with its checks: a send with ns.Key already (returned, Replayed, if it
// was made by the same request), and earlier sends of the issue to the
// list (see checkEarlier).
func (s *Service) insertSend(ctx context.Context, ns NewSend, now time.Time) (*Send, error) {
	issueJSON, filter, hash, err := encodeSend(ns)
	if err != nil {
		return nil, err
	}
	at := ns.At
	if at.IsZero() {
		at = now
	}
	uid := ns.uid
	if uid == "" {
		uid = newUID()
	}
	c, err := s.ledger.CreateSend(ctx, SendRecord{
		UID: uid, Slug: ns.Issue.Slug, List: ns.List, IssueJSON: issueJSON, FilterJSON: filter,
		ScheduledAt: at.UnixMilli(), NotAfter: unixMS(ns.NotAfter), Now: now.UnixMilli(), Again: ns.Again,
		Key: ns.Key, Hash: hash,
	}, func(earlier []EarlierSend) error { return checkEarlier(earlier, ns) })
	if err != nil {
		var de *DuplicateError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("queue: create send: %w", err)
	}
	if c.Existing {
		return s.replayed(ctx, c.ID, c.Hash, hash)
	}
	return s.getSend(ctx, c.ID, true)
}

// replay returns the send created with key, if any: Replayed when the
// request's hash is the same, ErrKeyReused when it is not.
func (s *Service) replay(ctx context.Context, key, hash string) (*Send, error) {
	if key == "" {
		return nil, nil
	}
	id, was, ok, err := s.ledger.SendByKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("queue: create send: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return s.replayed(ctx, id, was, hash)
}

func (s *Service) replayed(ctx context.Context, id int64, was, hash string) (*Send, error) {
	if was != hash {
		return nil, fmt.Errorf("%w: send %d was created with this key from a different request", ErrKeyReused, id)
	}
	snd, err := s.getSend(ctx, id, true)
	if err != nil {
		return nil, err
	}
	snd.Replayed = true
	return snd, nil
}

// Blocking reports whether an earlier send stands in the way of a new
// send of its issue to its list: it is running, it finished, or it sent
// copies before it was cancelled or failed. A send cancelled or failed
// before any copy went leaves no trace.
func (e EarlierSend) Blocking() bool {
	return e.Running() || e.State == Done || e.Sent > 0
}

// checkEarlier refuses a send of an issue to a list while an earlier send
// of it is running, and, unless ns.Again, after one finished or sent
// copies: a *DuplicateError naming that send.
func checkEarlier(earlier []EarlierSend, ns NewSend) error {
	var first *EarlierSend
	for i, e := range earlier {
		if e.Running() {
			return &DuplicateError{Issue: ns.Issue.Slug, List: ns.List, Earlier: e, Again: ns.Again}
		}
		if first == nil && e.Blocking() {
			first = &earlier[i]
		}
	}
	if first != nil && !ns.Again {
		return &DuplicateError{Issue: ns.Issue.Slug, List: ns.List, Earlier: *first}
	}
	return nil
}

// sendFromRow makes a Send of its stored row.
func sendFromRow(r *SendRow, withIssue bool) (*Send, error) {
	s := Send{
		ID: r.ID, UID: r.UID, List: r.List, State: r.State, pausedFrom: r.PausedFrom,
		ScheduledAt: msTime(r.ScheduledAt), NotAfter: msTime(r.NotAfter),
		planCursor: r.PlanCursor, PlanDone: r.PlanDone, Batches: r.Batches,
		CreatedAt: msTime(r.CreatedAt), UpdatedAt: msTime(r.UpdatedAt),
		StartedAt: msTime(r.StartedAt), FinishedAt: msTime(r.FinishedAt),
		LastError: r.LastError, PauseReason: r.PauseReason, Again: r.Again,
		Counts: r.Kept.Counts(),
	}
	if r.FilterJSON != "" {
		var p audience.Prefs
		if err := json.Unmarshal([]byte(r.FilterJSON), &p); err != nil {
			return nil, fmt.Errorf("send %d: filter: %w", s.ID, err)
		}
		s.Filter = &p
	}
	s.Issue = &compose.Issue{Slug: r.Slug}
	if withIssue {
		if err := json.Unmarshal(r.IssueJSON, s.Issue); err != nil {
			return nil, fmt.Errorf("send %d: issue: %w", s.ID, err)
		}
	}
	return &s, nil
}

// getSend reads a send with its kept counts: a few rows by key, whatever
// the size of its list.
func (s *Service) getSend(ctx context.Context, id int64, withIssue bool) (*Send, error) {
	r, err := s.ledger.Send(ctx, id, withIssue)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("send %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: load send %d: %w", id, err)
	}
	return sendFromRow(r, withIssue)
}

// listSends returns the most recent sends, newest first, without issues.
func (s *Service) listSends(ctx context.Context, limit int) ([]*Send, error) {
	rows, err := s.ledger.Sends(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("queue: list sends: %w", err)
	}
	out := make([]*Send, 0, len(rows))
	for _, r := range rows {
		snd, err := sendFromRow(r, false)
		if err != nil {
			return nil, fmt.Errorf("queue: list sends: %w", err)
		}
		out = append(out, snd)
	}
	return out, nil
}
