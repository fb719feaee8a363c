package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// This file serves the feedback loop (package feedback, wired by
// cmd/tayori): what the deliveries table knows about a reader's recent
// sends and about the last days' volume and refusals, and the send gate
// that Create consults.

// Outcomes reads the deliveries table for the feedback loop. It needs only
// the database, not Redis.
type Outcomes struct{ db *sql.DB }

// NewOutcomes migrates db (so it works on a database no worker has used
// yet) and returns an Outcomes over it.
func NewOutcomes(ctx context.Context, db *sql.DB) (*Outcomes, error) {
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	return &Outcomes{db: db}, nil
}

// Attempt is one send's copy to one reader that reached the relay.
type Attempt struct {
	SendID int64
	// Sent: the relay accepted the copy. Otherwise it failed: Permanent
	// after a 5xx, or not after temporary failures until retries ran out.
	Sent      bool
	Permanent bool
	Reply     string
	At        time.Time
}

// qLastAttempts walks the sends newest first with a primary key seek into
// deliveries for each (as qHistory does), stopping after n; delivery_state
// adds a first copy's batch_sent entry (migration 0007).
const qLastAttempts = `SELECT d.send_id, d.status, d.permanent, d.reply, d.updated_at
	FROM sends s CROSS JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = ?
	WHERE d.status IN ('sent','failed') ORDER BY s.id DESC LIMIT ?`

// LastAttempts returns the subscriber's last n copies that reached the
// relay (sent or failed; not skipped, cancelled or still open), newest
// send first.
func (o *Outcomes) LastAttempts(ctx context.Context, subscriberID int64, n int) ([]Attempt, error) {
	rows, err := o.db.QueryContext(ctx, qLastAttempts, subscriberID, n)
	if err != nil {
		return nil, fmt.Errorf("queue: last attempts of subscriber %d: %w", subscriberID, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var (
			a      Attempt
			status string
			at     int64
		)
		if err := rows.Scan(&a.SendID, &status, &a.Permanent, &a.Reply, &at); err != nil {
			return nil, fmt.Errorf("queue: last attempts of subscriber %d: %w", subscriberID, err)
		}
		a.Sent, a.At = status == "sent", time.UnixMilli(at).UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: last attempts of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}

// sendsIn returns the sends that may have deliveries updated in
// [since, until): created before until and not finished before since.
func (o *Outcomes) sendsIn(ctx context.Context, since, until time.Time) ([]int64, error) {
	return sqlitedb.QueryColumn[int64](ctx, o.db, `SELECT id FROM sends WHERE created_at < ? AND (finished_at IS NULL OR finished_at >= ?)`,
		until.UnixMilli(), since.UnixMilli())
}

// SentBetween counts the copies the relay accepted in [since, until).
// It reads each send of the window along its primary key.
func (o *Outcomes) SentBetween(ctx context.Context, since, until time.Time) (int64, error) {
	ids, err := o.sendsIn(ctx, since, until)
	if err != nil {
		return 0, fmt.Errorf("queue: copies sent since %s: %w", since.Format(time.RFC3339), err)
	}
	var total int64
	for _, id := range ids {
		var n int64
		// Rows rewritten with their outcome, and first copies recorded
		// in batch_sent (migration 0007).
		if err := o.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries
			WHERE send_id = ?1 AND status = 'sent' AND updated_at >= ?2 AND updated_at < ?3)
			+ (SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = ?1 AND at >= ?2 AND at < ?3)`,
			id, since.UnixMilli(), until.UnixMilli()).Scan(&n); err != nil {
			return 0, fmt.Errorf("queue: copies sent since %s: %w", since.Format(time.RFC3339), err)
		}
		total += n
	}
	return total, nil
}

// Refusal is a copy the relay refused or gave up on, with its reply.
type Refusal struct {
	SendID       int64
	SubscriberID int64
	Permanent    bool
	Reply        string
	At           time.Time
}

// Refusals returns the failed copies of [since, until) with the relay's
// replies, newest first, at most limit (default 1000): the synchronous
// counterpart of bounce reports, which the send gate reads for
// authentication refusals. Failed rows are few and use the partial index
// of migration 0004.
func (o *Outcomes) Refusals(ctx context.Context, since, until time.Time, limit int) ([]Refusal, error) {
	if limit <= 0 {
		limit = 1000
	}
	ids, err := o.sendsIn(ctx, since, until)
	if err != nil {
		return nil, fmt.Errorf("queue: refusals since %s: %w", since.Format(time.RFC3339), err)
	}
	var out []Refusal
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		rows, err := o.db.QueryContext(ctx, `SELECT subscriber_id, permanent, reply, updated_at
			FROM deliveries INDEXED BY deliveries_trouble WHERE send_id = ? AND status IN ('failed','retry')
			AND status = 'failed' AND updated_at >= ? AND updated_at < ? ORDER BY updated_at DESC LIMIT ?`,
			ids[i], since.UnixMilli(), until.UnixMilli(), limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("queue: refusals of send %d: %w", ids[i], err)
		}
		for rows.Next() {
			r := Refusal{SendID: ids[i]}
			var at int64
			if err := rows.Scan(&r.SubscriberID, &r.Permanent, &r.Reply, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("queue: refusals of send %d: %w", ids[i], err)
			}
			r.At = time.UnixMilli(at).UTC()
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("queue: refusals of send %d: %w", ids[i], err)
		}
	}
	return out, nil
}

// ErrBlocked is wrapped by the error of a send the gate refused (a
// *GateError). It wraps ErrState, so callers that map ErrState (the web
// API's 409) need nothing new.
var ErrBlocked = fmt.Errorf("%w: the send gate is closed", ErrState)

// GateVerdict is the send gate's answer.
type GateVerdict struct {
	// Block refuses the send; Reason says why, with the figures.
	Block bool
	// Warn lets the send go but says why it should be looked at.
	Warn   bool
	Reason string
}

// GateFunc decides whether an editor may start a send now (cmd/tayori
// wires package feedback's Gate). An error refuses the send too: a gate
// that cannot read its figures does not open.
type GateFunc func(ctx context.Context) (GateVerdict, error)

// GateError is the error of a send the gate refused.
type GateError struct {
	Reason string
}

// Error says the send was refused and why.
func (e *GateError) Error() string { return "send refused by the send gate: " + e.Reason }

// Unwrap makes errors.Is(err, ErrBlocked) (and ErrState) true.
func (e *GateError) Unwrap() error { return ErrBlocked }

// checkGate runs the gate for a new send. ns.IgnoreGate skips a closed
// gate (logged); a warning is logged and returned.
func (s *Service) checkGate(ctx context.Context, ns NewSend) (warning string, err error) {
	if s.deps.Gate == nil {
		return "", nil
	}
	v, err := s.deps.Gate(ctx)
	if err != nil {
		if ns.IgnoreGate {
			s.log.WarnContext(ctx, "send gate unreadable, ignored on request", "issue", ns.Issue.Slug, "list", ns.List, "err", err)
			return "", nil
		}
		return "", &GateError{Reason: fmt.Sprintf("cannot read the complaint and refusal figures: %v", err)}
	}
	switch {
	case v.Block && ns.IgnoreGate:
		s.log.WarnContext(ctx, "send gate closed, ignored on request", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return "gate ignored: " + v.Reason, nil
	case v.Block:
		s.log.WarnContext(ctx, "send refused by the send gate", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return "", &GateError{Reason: v.Reason}
	case v.Warn:
		s.log.WarnContext(ctx, "send gate warning", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return v.Reason, nil
	}
	return "", nil
}

// IsBlocked reports whether err is a send refused by the gate, and its
// reason.
func IsBlocked(err error) (string, bool) {
	var ge *GateError
	if errors.As(err, &ge) {
		return ge.Reason, true
	}
	return "", false
}
