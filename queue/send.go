package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the queue's migrations to db (version table
// "queue_migrations"). New calls it; it is exported for tools and tests.
func Migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	return sqlitedb.Migrate(ctx, db, sub, "queue_migrations", goMigrations()...)
}

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

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
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
func encodeSend(ns NewSend) (issueJSON []byte, filter any, hash string, err error) {
	if ns.Issue == nil || ns.List == "" {
		return nil, nil, "", fmt.Errorf("%w: issue and list are required", ErrInvalid)
	}
	if issueJSON, err = json.Marshal(ns.Issue); err != nil {
		return nil, nil, "", fmt.Errorf("queue: encode issue: %w", err)
	}
	if ns.Filter != nil {
		b, err := json.Marshal(ns.Filter)
		if err != nil {
			return nil, nil, "", fmt.Errorf("queue: encode filter: %w", err)
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
func insertSend(ctx context.Context, db *sql.DB, ns NewSend, now time.Time) (*Send, error) {
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
	var key any
	if ns.Key != "" {
		key = ns.Key
	}
	wrap := func(err error) error { return fmt.Errorf("queue: create send: %w", err) }
	tx, err := db.BeginTx(ctx, nil) // immediate: the checks and the insert are one step
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	if snd, err := replay(ctx, tx, ns.Key, hash); snd != nil || err != nil {
		return snd, err
	}
	if err := checkEarlier(ctx, tx, ns); err != nil {
		return nil, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO sends
		(uid, issue_slug, issue_json, list_key, filter_json, state, scheduled_at, not_after, created_at, updated_at,
		 again, request_key, request_hash)
		VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		uid, ns.Issue.Slug, issueJSON, ns.List, filter, at.UnixMilli(), nullMS(ns.NotAfter), now.UnixMilli(), now.UnixMilli(),
		ns.Again, key, hash,
	).Scan(&id)
	if isUniqueViolation(err) {
		return nil, wrap(ErrDuplicate)
	}
	if err != nil {
		return nil, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err)
	}
	return getSend(ctx, db, id, true)
}

// replay returns the send created with key, if any: Replayed when the
// request's hash is the same, ErrKeyReused when it is not.
func replay(ctx context.Context, q querier, key, hash string) (*Send, error) {
	if key == "" {
		return nil, nil
	}
	var (
		id  int64
		was string
	)
	err := q.QueryRowContext(ctx, `SELECT id, ifnull(request_hash, '') FROM sends WHERE request_key = ?`, key).Scan(&id, &was)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: create send: %w", err)
	}
	if was != hash {
		return nil, fmt.Errorf("%w: send %d was created with this key from a different request", ErrKeyReused, id)
	}
	snd, err := getSend(ctx, q, id, true)
	if err != nil {
		return nil, err
	}
	snd.Replayed = true
	return snd, nil
}

// qEarlier lists the sends of an issue to a list, newest first.
const qEarlier = `SELECT s.id, s.state, s.created_at, s.finished_at, ifnull(c.sent + c.first_sent, 0)
	FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id
	WHERE s.issue_slug = ? AND s.list_key = ? ORDER BY s.id DESC`

func earlierSends(ctx context.Context, q querier, slug, list string) ([]EarlierSend, error) {
	rows, err := q.QueryContext(ctx, qEarlier, slug, list)
	if err != nil {
		return nil, fmt.Errorf("queue: earlier sends of %s to %s: %w", slug, list, err)
	}
	defer rows.Close()
	var out []EarlierSend
	for rows.Next() {
		var (
			e                 EarlierSend
			state             string
			created, finished sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &state, &created, &finished, &e.Sent); err != nil {
			return nil, fmt.Errorf("queue: earlier sends of %s to %s: %w", slug, list, err)
		}
		e.State, e.CreatedAt, e.FinishedAt = State(state), fromMS(created), fromMS(finished)
		out = append(out, e)
	}
	return out, rows.Err()
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
func checkEarlier(ctx context.Context, q querier, ns NewSend) error {
	earlier, err := earlierSends(ctx, q, ns.Issue.Slug, ns.List)
	if err != nil {
		return err
	}
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

// sendCols are a send's columns and kept counts (send_counts, migration
// 8), read FROM sendFrom. A send's issue, a large value, comes after them.
const (
	sendCols = `s.id, s.uid, s.issue_slug, s.list_key, s.filter_json, s.state, s.paused_from, s.scheduled_at, s.not_after,
	s.plan_cursor, s.plan_done, s.batches, s.created_at, s.updated_at, s.started_at, s.finished_at, s.last_error,
	s.pause_reason, s.again,
	ifnull(c.planned, 0), ifnull(c.had_it, 0), ifnull(c.queued, 0), ifnull(c.retry, 0), ifnull(c.sent, 0),
	ifnull(c.skipped, 0), ifnull(c.failed_temp, 0), ifnull(c.failed_perm, 0), ifnull(c.cancelled, 0),
	ifnull(c.first_sent, 0), ifnull(c.raced, 0)`
	sendFrom = ` FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id`
)

// keptCounts is a send_counts row: tallies of delivery rows by status,
// and of the copies in batch_sent.
type keptCounts struct {
	planned, hadIt, queued, retry, sent, skipped, failedTemp, failedPerm, cancelled int64
	firstSent, raced                                                                int64
}

// counts puts the tallies together as liveCounts does: a copy in
// batch_sent is sent, and its row is queued, or cancelled if the copy was
// in flight when the editor cancelled (raced).
func (k keptCounts) counts() Counts {
	return Counts{
		Planned: k.planned, Queued: k.queued - (k.firstSent - k.raced), Retrying: k.retry,
		Sent: k.sent + k.firstSent, Skipped: k.skipped, FailedTemp: k.failedTemp, FailedPerm: k.failedPerm,
		Cancelled: k.cancelled - k.raced, AlreadyHad: k.hadIt,
	}
}

type rowScanner interface{ Scan(dest ...any) error }

func scanSend(r rowScanner, withIssue bool) (*Send, error) {
	var (
		s                                 Send
		k                                 keptCounts
		issueJSON                         []byte
		slug                              string
		filter, pausedFrom                sql.NullString
		sched, notAfter, created, updated sql.NullInt64
		started, finished                 sql.NullInt64
		planDone, again                   int
		state                             string
	)
	err := r.Scan(&s.ID, &s.UID, &slug, &s.List, &filter, &state, &pausedFrom, &sched, &notAfter,
		&s.planCursor, &planDone, &s.Batches, &created, &updated, &started, &finished, &s.LastError, &s.PauseReason, &again,
		&k.planned, &k.hadIt, &k.queued, &k.retry, &k.sent, &k.skipped, &k.failedTemp, &k.failedPerm, &k.cancelled,
		&k.firstSent, &k.raced, &issueJSON)
	if err != nil {
		return nil, err
	}
	s.State = State(state)
	s.pausedFrom = State(pausedFrom.String)
	s.ScheduledAt, s.NotAfter = fromMS(sched), fromMS(notAfter)
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	s.StartedAt, s.FinishedAt = fromMS(started), fromMS(finished)
	s.PlanDone, s.Again = planDone != 0, again != 0
	s.Counts = k.counts()
	if filter.Valid {
		var p audience.Prefs
		if err := json.Unmarshal([]byte(filter.String), &p); err != nil {
			return nil, fmt.Errorf("send %d: filter: %w", s.ID, err)
		}
		s.Filter = &p
	}
	s.Issue = &compose.Issue{Slug: slug}
	if withIssue {
		if err := json.Unmarshal(issueJSON, s.Issue); err != nil {
			return nil, fmt.Errorf("send %d: issue: %w", s.ID, err)
		}
	}
	return &s, nil
}

// getSend reads a send with its kept counts: a few rows by key, whatever
// the size of its list.
func getSend(ctx context.Context, q querier, id int64, withIssue bool) (*Send, error) {
	issue := "NULL"
	if withIssue {
		issue = "s.issue_json"
	}
	s, err := scanSend(q.QueryRowContext(ctx, `SELECT `+sendCols+`, `+issue+sendFrom+` WHERE s.id = ?`, id), withIssue)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("send %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: load send %d: %w", id, err)
	}
	return s, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// qRacedCancel counts the send's copies in batch_sent whose rows were
// cancelled while the copies were in flight. Only copies recorded after
// the cancel (batch_sent rowids above the send's cancel_mark) can be such,
// and each costs a key seek (CROSS JOIN keeps the copies the outer loop).
const qRacedCancel = `SELECT count(*) FROM batch_sent bs CROSS JOIN json_each(bs.sent) j
	CROSS JOIN deliveries d ON d.send_id = bs.send_id AND d.subscriber_id = j.value ->> 0
	WHERE bs.send_id = ?1 AND bs.rowid > (SELECT cancel_mark FROM sends WHERE id = ?1) AND d.status = 'cancelled'`

// qSentCount counts a send's copies in batch_sent, from its index.
const qSentCount = `SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = ?`

// liveCounts computes a send's figures from its deliveries: the full
// recount, which reads every row of the send. Progress reads use the kept
// counts (send_counts, migration 8); tests check that the two agree. The
// readers left out by NewSend.Again have no rows: AlreadyHad is the kept
// count.
func liveCounts(ctx context.Context, q querier, id int64) (Counts, error) {
	rows, err := q.QueryContext(ctx, `SELECT status, permanent, count(*) FROM deliveries
		WHERE send_id = ? GROUP BY status, permanent`, id)
	if err != nil {
		return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
	}
	defer rows.Close()
	var c Counts
	for rows.Next() {
		var status string
		var perm int
		var n int64
		if err := rows.Scan(&status, &perm, &n); err != nil {
			return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
		}
		c.Planned += n
		switch status {
		case "queued", "sending":
			c.Queued += n
		case "retry":
			c.Retrying += n
		case "sent":
			c.Sent += n
		case "skipped":
			c.Skipped += n
		case "failed":
			if perm != 0 {
				c.FailedPerm += n
			} else {
				c.FailedTemp += n
			}
		case "cancelled":
			c.Cancelled += n
		}
	}
	if err := rows.Err(); err != nil {
		return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
	}
	// Copies sent on their first attempt are counted in batch_sent; their
	// rows, counted above, are queued, or cancelled if the editor cancelled
	// while they were in flight.
	var sent, raced int64
	if err := q.QueryRowContext(ctx, qSentCount, id).Scan(&sent); err != nil {
		return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
	}
	if sent > 0 && c.Cancelled > 0 {
		if err := q.QueryRowContext(ctx, qRacedCancel, id).Scan(&raced); err != nil {
			return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
		}
	}
	c.Sent += sent
	c.Queued -= sent - raced
	c.Cancelled -= raced
	if err := q.QueryRowContext(ctx, `SELECT ifnull((SELECT had_it FROM send_counts WHERE send_id = ?), 0)`, id).Scan(&c.AlreadyHad); err != nil {
		return Counts{}, fmt.Errorf("queue: count deliveries of send %d: %w", id, err)
	}
	return c, nil
}

// listSends returns the most recent sends, newest first, without issues.
func listSends(ctx context.Context, db *sql.DB, limit int) ([]*Send, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+sendCols+`, NULL`+sendFrom+` ORDER BY s.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("queue: list sends: %w", err)
	}
	defer rows.Close()
	var out []*Send
	for rows.Next() {
		s, err := scanSend(rows, false)
		if err != nil {
			return nil, fmt.Errorf("queue: list sends: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
