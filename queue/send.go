package queue

import (
	"context"
	"crypto/rand"
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
	return sqlitedb.Migrate(ctx, db, sub, "queue_migrations")
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
)

// Final reports whether no more mail can go out for a send in state s.
func (s State) Final() bool { return s == Done || s == Cancelled }

// Errors returned by the send operations, checked with errors.Is.
var (
	// ErrNotFound: no send with that id.
	ErrNotFound = errors.New("send not found")
	// ErrState: the operation is not allowed in the send's current state.
	ErrState = errors.New("operation not allowed in this state")
	// ErrInvalid: the request is malformed.
	ErrInvalid = errors.New("invalid send")
)

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
	// GateWarning is the send gate's warning when Create let the send go
	// with one (complaint rate at or above the warning threshold, or a
	// closed gate ignored on request). Not stored.
	GateWarning string

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

// insertSend records a new send in state scheduled.
func insertSend(ctx context.Context, db *sql.DB, ns NewSend, now time.Time) (*Send, error) {
	if ns.Issue == nil || ns.List == "" {
		return nil, fmt.Errorf("%w: issue and list are required", ErrInvalid)
	}
	issueJSON, err := json.Marshal(ns.Issue)
	if err != nil {
		return nil, fmt.Errorf("queue: encode issue: %w", err)
	}
	var filter any
	if ns.Filter != nil {
		b, err := json.Marshal(ns.Filter)
		if err != nil {
			return nil, fmt.Errorf("queue: encode filter: %w", err)
		}
		filter = string(b)
	}
	at := ns.At
	if at.IsZero() {
		at = now
	}
	uid := ns.uid
	if uid == "" {
		uid = newUID()
	}
	var id int64
	err = db.QueryRowContext(ctx, `INSERT INTO sends
		(uid, issue_slug, issue_json, list_key, filter_json, state, scheduled_at, not_after, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?) RETURNING id`,
		uid, ns.Issue.Slug, issueJSON, ns.List, filter, at.UnixMilli(), nullMS(ns.NotAfter), now.UnixMilli(), now.UnixMilli(),
	).Scan(&id)
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("queue: create send: %w", ErrDuplicate)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: create send: %w", err)
	}
	return getSend(ctx, db, id, true)
}

const sendCols = `id, uid, issue_json, list_key, filter_json, state, paused_from, scheduled_at, not_after,
	plan_cursor, plan_done, batches, planned, sent, skipped, failed_temp, failed_perm,
	created_at, updated_at, started_at, finished_at, last_error, pause_reason`

type rowScanner interface{ Scan(dest ...any) error }

func scanSend(r rowScanner, withIssue bool) (*Send, error) {
	var (
		s                                 Send
		issueJSON                         []byte
		filter, pausedFrom                sql.NullString
		sched, notAfter, created, updated sql.NullInt64
		started, finished                 sql.NullInt64
		planDone                          int
		state                             string
	)
	err := r.Scan(&s.ID, &s.UID, &issueJSON, &s.List, &filter, &state, &pausedFrom, &sched, &notAfter,
		&s.planCursor, &planDone, &s.Batches, &s.Counts.Planned, &s.Counts.Sent, &s.Counts.Skipped,
		&s.Counts.FailedTemp, &s.Counts.FailedPerm, &created, &updated, &started, &finished, &s.LastError, &s.PauseReason)
	if err != nil {
		return nil, err
	}
	s.State = State(state)
	s.pausedFrom = State(pausedFrom.String)
	s.ScheduledAt, s.NotAfter = fromMS(sched), fromMS(notAfter)
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	s.StartedAt, s.FinishedAt = fromMS(started), fromMS(finished)
	s.PlanDone = planDone != 0
	if filter.Valid {
		var p audience.Prefs
		if err := json.Unmarshal([]byte(filter.String), &p); err != nil {
			return nil, fmt.Errorf("send %d: filter: %w", s.ID, err)
		}
		s.Filter = &p
	}
	if withIssue {
		s.Issue = new(compose.Issue)
		if err := json.Unmarshal(issueJSON, s.Issue); err != nil {
			return nil, fmt.Errorf("send %d: issue: %w", s.ID, err)
		}
	}
	return &s, nil
}

func getSend(ctx context.Context, q querier, id int64, withIssue bool) (*Send, error) {
	cols := sendCols
	if !withIssue {
		cols = "id, uid, x'', list_key" + sendCols[len("id, uid, issue_json, list_key"):]
	}
	s, err := scanSend(q.QueryRowContext(ctx, `SELECT `+cols+` FROM sends WHERE id = ?`, id), withIssue)
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

// liveCounts computes a send's figures from its deliveries.
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
	return c, nil
}

// listSends returns the most recent sends, newest first, without issues.
func listSends(ctx context.Context, db *sql.DB, limit int) ([]*Send, error) {
	cols := "id, uid, x'', list_key" + sendCols[len("id, uid, issue_json, list_key"):]
	rows, err := db.QueryContext(ctx, `SELECT `+cols+`, issue_slug FROM sends ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("queue: list sends: %w", err)
	}
	defer rows.Close()
	var out []*Send
	for rows.Next() {
		var slug string
		s, err := scanSend(scanFunc(func(dest ...any) error { return rows.Scan(append(dest, &slug)...) }), false)
		if err != nil {
			return nil, fmt.Errorf("queue: list sends: %w", err)
		}
		s.Issue = &compose.Issue{Slug: slug}
		out = append(out, s)
	}
	return out, rows.Err()
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }
