package subscribers

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// FeedbackEvent is one recipient's result in a bounce (RFC 3464) or
// complaint (RFC 5965) report, and what was done about it. Package
// feedback parses and classifies reports; the store only keeps the
// events, for `tayori feedback`, the soft-bounce rule and the send gate.
// Events hold no address: the recipient's domain only.
type FeedbackEvent struct {
	ID int64 `json:"id"`
	// ReportKey and Seq identify the event: the report's key (a hash of
	// its Message-ID) and the recipient's place in it. Recording the same
	// pair twice keeps the first.
	ReportKey  string    `json:"report_key"`
	Seq        int       `json:"seq"`
	ReceivedAt time.Time `json:"received_at"`
	// Kind is the class: hard, soft, policy, complaint, delayed,
	// delivered or unknown (feedback.Class).
	Kind string `json:"kind"`
	// Status is the enhanced status code ("5.1.1") or, for a complaint,
	// the ARF feedback type ("abuse").
	Status string `json:"status,omitempty"`
	// Auth marks an authentication refusal (5.7.26, 5.7.515, …).
	Auth bool `json:"auth,omitempty"`
	// Domain is the recipient's domain (or the reporting provider's).
	Domain string `json:"domain,omitempty"`
	// Detail is the diagnostic, with the local parts of addresses masked.
	Detail string `json:"detail,omitempty"`
	// SubscriberID and SendID name the copy when the report was matched
	// to one; 0 otherwise.
	SubscriberID int64 `json:"subscriber_id,omitempty"`
	SendID       int64 `json:"send_id,omitempty"`
	// MatchedBy says how: "return-path", "message-id", "cfbl", "address"
	// or "" (not matched).
	MatchedBy string `json:"matched_by,omitempty"`
	// Action is what was done ("marked bounced", "alert", "recorded").
	Action string `json:"action,omitempty"`
}

// FeedbackKinds lists the kinds the store accepts.
var FeedbackKinds = []string{"hard", "soft", "policy", "complaint", "delayed", "delivered", "unknown"}

// maxDetail bounds the stored diagnostic, in bytes.
const maxDetail = 1000

const (
	qFeedbackSeen   = `SELECT EXISTS (SELECT 1 FROM feedback_events WHERE report_key = ?)`
	qInsertFeedback = `INSERT INTO feedback_events
       (report_key, seq, received_at, kind, status, auth, domain, detail, subscriber_id, send_id, matched_by, action)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (report_key, seq) DO NOTHING`
	feedbackCols = `SELECT id, report_key, seq, received_at, kind, status, auth, domain, detail,
       COALESCE(subscriber_id, 0), COALESCE(send_id, 0), matched_by, action FROM feedback_events`
	qSoftBouncedSends = `SELECT DISTINCT send_id FROM feedback_events
       WHERE subscriber_id = ? AND send_id IS NOT NULL AND kind = 'soft' ORDER BY send_id`
	qFeedbackTotals = `SELECT kind, auth, matched_by <> '', count(*) FROM feedback_events
       WHERE received_at >= ? AND received_at < ? GROUP BY kind, auth, matched_by <> ''`
)

// FeedbackSeen reports whether a report with this key was recorded.
func (s *Store) FeedbackSeen(ctx context.Context, reportKey string) (bool, error) {
	var seen bool
	if err := s.db.QueryRowContext(ctx, qFeedbackSeen, reportKey).Scan(&seen); err != nil {
		return false, fmt.Errorf("feedback seen: %w", err)
	}
	return seen, nil
}

// RecordFeedback stores events in one transaction and returns how many
// were new; an event whose (ReportKey, Seq) is stored already is skipped,
// so recording a report twice changes nothing. A zero ReceivedAt is the
// store's clock.
func (s *Store) RecordFeedback(ctx context.Context, events []FeedbackEvent) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			if e.ReportKey == "" {
				return fmt.Errorf("%w: feedback event without a report key", ErrInvalid)
			}
			if !validKind(e.Kind) {
				return fmt.Errorf("%w: feedback kind %q", ErrInvalid, e.Kind)
			}
			at := e.ReceivedAt
			if at.IsZero() {
				at = s.now()
			}
			res, err := tx.ExecContext(ctx, qInsertFeedback, e.ReportKey, e.Seq, fmtTime(at), e.Kind, e.Status,
				e.Auth, e.Domain, truncate(e.Detail, maxDetail), nullID(e.SubscriberID), nullID(e.SendID), e.MatchedBy, e.Action)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record feedback: %w", err)
	}
	return n, nil
}

func validKind(k string) bool {
	for _, v := range FeedbackKinds {
		if v == k {
			return true
		}
	}
	return false
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// FeedbackQuery selects events for FeedbackEvents.
type FeedbackQuery struct {
	// Since keeps events received at or after it; zero means all.
	Since time.Time
	// SubscriberID keeps one subscriber's events; 0 means everyone's.
	SubscriberID int64
	// Kinds keeps these kinds; empty means all.
	Kinds []string
	// BeforeID keeps the events listed after the event with this id,
	// newest first (received earlier, or at the same time with a smaller
	// id): the page after one that ended with it. 0 means from the newest.
	BeforeID int64
	// Limit caps the result (newest first). Default 100.
	Limit int
}

// FeedbackEvents returns events, newest first.
func (s *Store) FeedbackEvents(ctx context.Context, q FeedbackQuery) ([]FeedbackEvent, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var (
		where []string
		args  []any
	)
	if !q.Since.IsZero() {
		where, args = append(where, "received_at >= ?"), append(args, fmtTime(q.Since))
	}
	if q.SubscriberID != 0 {
		where, args = append(where, "subscriber_id = ?"), append(args, q.SubscriberID)
	}
	if len(q.Kinds) > 0 {
		where = append(where, "kind IN "+placeholders(len(q.Kinds)))
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	if q.BeforeID != 0 {
		where = append(where, "(received_at, id) < (SELECT received_at, id FROM feedback_events WHERE id = ?)")
		args = append(args, q.BeforeID)
	}
	query := feedbackCols
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY received_at DESC, id DESC LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("feedback events: %w", err)
	}
	defer rows.Close()
	out := []FeedbackEvent{}
	for rows.Next() {
		var (
			e  FeedbackEvent
			at string
		)
		if err := rows.Scan(&e.ID, &e.ReportKey, &e.Seq, &at, &e.Kind, &e.Status, &e.Auth, &e.Domain, &e.Detail,
			&e.SubscriberID, &e.SendID, &e.MatchedBy, &e.Action); err != nil {
			return nil, fmt.Errorf("feedback events: %w", err)
		}
		e.ReceivedAt = parseTime(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feedback events: %w", err)
	}
	return out, nil
}

// SoftBouncedSends returns the ids of the sends on which the subscriber
// soft-bounced (by report), in ascending order.
func (s *Store) SoftBouncedSends(ctx context.Context, subscriberID int64) ([]int64, error) {
	out, err := sqlitedb.QueryColumn[int64](ctx, s.db, qSoftBouncedSends, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("soft-bounced sends of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}

// FeedbackTotals counts the events received in [Since, Until).
type FeedbackTotals struct {
	Since, Until time.Time
	// ByKind counts events of each kind matched to a copy (MatchedBy set).
	ByKind map[string]int64
	// Auth counts matched authentication refusals (policy events with
	// Auth set).
	Auth int64
	// Unmatched and UnmatchedAuth count the same for events that matched
	// no copy: reports anyone could have mailed to the bounce address.
	Unmatched     map[string]int64
	UnmatchedAuth int64
}

// FeedbackTotals counts the events received in [since, until).
func (s *Store) FeedbackTotals(ctx context.Context, since, until time.Time) (FeedbackTotals, error) {
	t := FeedbackTotals{Since: since, Until: until, ByKind: map[string]int64{}, Unmatched: map[string]int64{}}
	rows, err := s.db.QueryContext(ctx, qFeedbackTotals, fmtTime(since), fmtTime(until))
	if err != nil {
		return t, fmt.Errorf("feedback totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind          string
			auth, matched bool
			n             int64
		)
		if err := rows.Scan(&kind, &auth, &matched, &n); err != nil {
			return t, fmt.Errorf("feedback totals: %w", err)
		}
		switch {
		case matched:
			t.ByKind[kind] += n
			if auth {
				t.Auth += n
			}
		default:
			t.Unmatched[kind] += n
			if auth {
				t.UnmatchedAuth += n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("feedback totals: %w", err)
	}
	return t, nil
}
