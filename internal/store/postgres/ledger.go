package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tayori-news/tayori/queue"
)

// Ledger is queue.Ledger on PostgreSQL (schema 00003_queue.sql).
//
// Transactions run at READ COMMITTED, each statement with a fresh
// snapshot, so the steps SQLite serialises by its single writer take row
// locks here, always in the same order (sends, batch_claims, send_counts,
// deliveries): a cancel locks its send's counts before it reads which
// copies are in batch_sent, and a group commit locks the claims it
// records under and the counts it changes before it writes, so that each
// sees the other's work committed, never half of it.
type Ledger struct {
	db *sql.DB
}

var _ queue.Ledger = (*Ledger)(nil)

// NewLedger returns the send ledger over db (store.DB.SQL of a PostgreSQL
// store, driver pgx), whose schema store.Migrate applied.
func NewLedger(db *sql.DB) *Ledger { return &Ledger{db: db} }

// Close does nothing: the ledger holds no statements of its own.
func (l *Ledger) Close() error { return nil }

// SQLSTATE codes the ledger maps to domain errors.
const (
	ledgerUniqueViolation = "23505"
	ledgerDiskFull        = "53100"
)

func ledgerCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// ledgerErr marks an error of a full disk as queue.ErrStoreFull.
func ledgerErr(err error) error {
	if err != nil && ledgerCode(err) == ledgerDiskFull && !errors.Is(err, queue.ErrStoreFull) {
		return fmt.Errorf("%w: %w", queue.ErrStoreFull, err)
	}
	return err
}

type ledgerQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func ledgerAffected(ctx context.Context, q ledgerQuerier, query string, args ...any) (bool, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, ledgerErr(err)
	}
	n, err := res.RowsAffected()
	return n > 0, ledgerErr(err)
}

// withConn runs f on the pgx connection under one of the pool's
// connections, for pipelining: a pgx.Batch sends its statements in one
// round trip, and without BEGIN they run as one implicit transaction (one
// commit; a failing statement rolls back the ones before it and skips the
// rest), each statement with a fresh snapshot at READ COMMITTED, as in a
// transaction of separate calls.
func (l *Ledger) withConn(ctx context.Context, f func(*pgx.Conn) error) error {
	c, err := l.db.Conn(ctx)
	if err != nil {
		return ledgerErr(err)
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres ledger: needs the pgx driver, not %T", dc)
		}
		return f(pc.Conn())
	})
}

// ledgerColumn reads one column of every row.
func ledgerColumn[T any](ctx context.Context, q ledgerQuerier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, ledgerErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func ledgerNull(ms int64) any {
	if ms == 0 {
		return nil
	}
	return ms
}

func ledgerNullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ledgerTime(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// ---- sends

func (l *Ledger) CreateSend(ctx context.Context, r queue.SendRecord, check func([]queue.EarlierSend) error) (queue.Created, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return queue.Created{}, ledgerErr(err)
	}
	defer tx.Rollback()
	// The checks and the insert are one step: creations of a send of the
	// same issue to the same list (or with the same key) take turns.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 19))`, r.Slug+"\n"+r.List); err != nil {
		return queue.Created{}, ledgerErr(err)
	}
	if r.Key != "" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 20))`, r.Key); err != nil {
			return queue.Created{}, ledgerErr(err)
		}
		id, hash, ok, err := ledgerSendByKey(ctx, tx, r.Key)
		if err != nil || ok {
			return queue.Created{ID: id, Existing: ok, Hash: hash}, err
		}
	}
	earlier, err := ledgerEarlier(ctx, tx, r.Slug, r.List)
	if err != nil {
		return queue.Created{}, err
	}
	if err := check(earlier); err != nil {
		return queue.Created{}, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO sends
		(uid, issue_slug, issue_json, list_key, filter_json, state, scheduled_at, not_after, created_at, updated_at,
		 again, request_key, request_hash)
		VALUES ($1, $2, $3, $4, $5, 'scheduled', $6, $7, $8, $8, $9, $10, $11) RETURNING id`,
		r.UID, r.Slug, string(r.IssueJSON), r.List, ledgerNullString(r.FilterJSON), r.ScheduledAt, ledgerNull(r.NotAfter),
		r.Now, ledgerBool(r.Again), ledgerNullString(r.Key), ledgerNullString(r.Hash),
	).Scan(&id)
	if ledgerCode(err) == ledgerUniqueViolation {
		return queue.Created{}, queue.ErrDuplicate
	}
	if err != nil {
		return queue.Created{}, ledgerErr(err)
	}
	if err := tx.Commit(); err != nil {
		return queue.Created{}, ledgerErr(err)
	}
	return queue.Created{ID: id}, nil
}

func ledgerBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (l *Ledger) SendByKey(ctx context.Context, key string) (int64, string, bool, error) {
	return ledgerSendByKey(ctx, l.db, key)
}

func ledgerSendByKey(ctx context.Context, q ledgerQuerier, key string) (id int64, hash string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, coalesce(request_hash, '') FROM sends WHERE request_key = $1`, key).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, err
	}
	return id, hash, true, nil
}

func (l *Ledger) EarlierSends(ctx context.Context, slug, list string) ([]queue.EarlierSend, error) {
	return ledgerEarlier(ctx, l.db, slug, list)
}

func ledgerEarlier(ctx context.Context, q ledgerQuerier, slug, list string) ([]queue.EarlierSend, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.id, s.state, s.created_at, s.finished_at, coalesce(c.sent + c.first_sent, 0)
	FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id
	WHERE s.issue_slug = $1 AND s.list_key = $2 ORDER BY s.id DESC`, slug, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.EarlierSend
	for rows.Next() {
		var (
			e                 queue.EarlierSend
			state             string
			created, finished sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &state, &created, &finished, &e.Sent); err != nil {
			return nil, err
		}
		e.State, e.CreatedAt, e.FinishedAt = queue.State(state), ledgerTime(created), ledgerTime(finished)
		out = append(out, e)
	}
	return out, rows.Err()
}

const (
	ledgerSendCols = `s.id, s.uid, s.issue_slug, s.list_key, s.filter_json::text, s.state, s.paused_from, s.scheduled_at, s.not_after,
	s.plan_cursor, s.plan_done, s.batches, s.created_at, s.updated_at, s.started_at, s.finished_at, s.last_error,
	s.pause_reason, s.again,
	coalesce(c.planned, 0), coalesce(c.had_it, 0), coalesce(c.queued, 0), coalesce(c.retry, 0), coalesce(c.sent, 0),
	coalesce(c.skipped, 0), coalesce(c.failed_temp, 0), coalesce(c.failed_perm, 0), coalesce(c.cancelled, 0),
	coalesce(c.first_sent, 0), coalesce(c.raced, 0)`
	ledgerSendFrom = ` FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id`
)

type ledgerScanner interface{ Scan(dest ...any) error }

func ledgerScanSend(r ledgerScanner) (*queue.SendRow, error) {
	var (
		s                                 queue.SendRow
		k                                 = &s.Kept
		filter, pausedFrom, issue         sql.NullString
		sched, notAfter, created, updated sql.NullInt64
		started, finished                 sql.NullInt64
		planDone, again                   int
		state                             string
	)
	err := r.Scan(&s.ID, &s.UID, &s.Slug, &s.List, &filter, &state, &pausedFrom, &sched, &notAfter,
		&s.PlanCursor, &planDone, &s.Batches, &created, &updated, &started, &finished, &s.LastError, &s.PauseReason, &again,
		&k.Planned, &k.HadIt, &k.Queued, &k.Retry, &k.Sent, &k.Skipped, &k.FailedTemp, &k.FailedPerm, &k.Cancelled,
		&k.FirstSent, &k.Raced, &issue)
	if err != nil {
		return nil, err
	}
	s.State, s.PausedFrom = queue.State(state), queue.State(pausedFrom.String)
	s.FilterJSON = filter.String
	if issue.Valid {
		s.IssueJSON = []byte(issue.String)
	}
	s.ScheduledAt, s.NotAfter = sched.Int64, notAfter.Int64
	s.CreatedAt, s.UpdatedAt, s.StartedAt, s.FinishedAt = created.Int64, updated.Int64, started.Int64, finished.Int64
	s.PlanDone, s.Again = planDone != 0, again != 0
	return &s, nil
}

func (l *Ledger) Send(ctx context.Context, id int64, withIssue bool) (*queue.SendRow, error) {
	return ledgerSend(ctx, l.db, id, withIssue)
}

func ledgerSend(ctx context.Context, q ledgerQuerier, id int64, withIssue bool) (*queue.SendRow, error) {
	issue := "NULL::text"
	if withIssue {
		issue = "s.issue_json::text"
	}
	s, err := ledgerScanSend(q.QueryRowContext(ctx, `SELECT `+ledgerSendCols+`, `+issue+ledgerSendFrom+` WHERE s.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	return s, err
}

func (l *Ledger) Sends(ctx context.Context, limit int) ([]*queue.SendRow, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+ledgerSendCols+`, NULL::text`+ledgerSendFrom+` ORDER BY s.id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*queue.SendRow
	for rows.Next() {
		s, err := ledgerScanSend(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (l *Ledger) SendState(ctx context.Context, id int64) (queue.State, error) {
	var st string
	err := l.db.QueryRowContext(ctx, `SELECT state FROM sends WHERE id = $1`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", queue.ErrNotFound
	}
	return queue.State(st), err
}

func (l *Ledger) UIDExists(ctx context.Context, uid string) (bool, error) {
	var ok bool
	err := l.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sends WHERE uid = $1)`, uid).Scan(&ok)
	return ok, err
}

func (l *Ledger) UnfinishedSends(ctx context.Context) ([]int64, error) {
	return ledgerColumn[int64](ctx, l.db,
		`SELECT id FROM sends WHERE state IN ('scheduled','planning','sending','paused') ORDER BY id`)
}

// ---- a send's state

func (l *Ledger) Pause(ctx context.Context, id int64, reason string, now time.Time) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET paused_from = state, state = 'paused', pause_reason = $1, updated_at = $2
		WHERE id = $3 AND state IN ('scheduled','planning','sending')`, reason, now.UnixMilli(), id)
}

func (l *Ledger) Resume(ctx context.Context, id int64, now time.Time) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = coalesce(paused_from, 'sending'), paused_from = NULL,
		pause_reason = '', updated_at = $1 WHERE id = $2 AND state = 'paused'`, now.UnixMilli(), id)
}

const (
	ledgerQCancel = `UPDATE sends SET state = 'cancelled', last_error = $1, finished_at = $2, updated_at = $2
		WHERE id = $3 AND state IN ('scheduled','planning','sending','paused')`
	ledgerQFail = `UPDATE sends SET state = 'failed', paused_from = NULL, last_error = $1, finished_at = $2, updated_at = $2
		WHERE id = $3 AND (state IN ('scheduled','planning') OR state = 'paused' AND paused_from IN ('scheduled','planning'))`
	ledgerQCancelOpen = `UPDATE deliveries SET status = 'cancelled', updated_at = $1
		WHERE send_id = $2 AND status IN ('queued','retry','sending')
		AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = $2)`
	ledgerQCancelMark = `UPDATE sends SET cancel_mark = (SELECT coalesce(max(id), 0) FROM batch_sent WHERE send_id = $1) WHERE id = $1`
)

func (l *Ledger) Cancel(ctx context.Context, id int64, reason string, now time.Time) (bool, error) {
	return l.end(ctx, ledgerQCancel, id, reason, now)
}

// SendsByState counts the sends in each state.
func (l *Ledger) SendsByState(ctx context.Context) (map[queue.State]int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM sends GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[queue.State]int64{}
	for rows.Next() {
		var st queue.State
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

func (l *Ledger) Fail(ctx context.Context, id int64, reason string, now time.Time) (bool, error) {
	return l.end(ctx, ledgerQFail, id, reason, now)
}

func (l *Ledger) end(ctx context.Context, q string, id int64, reason string, now time.Time) (bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return false, ledgerErr(err)
	}
	defer tx.Rollback()
	ms := now.UnixMilli()
	ok, err := ledgerAffected(ctx, tx, q, reason, ms, id)
	if err != nil || !ok {
		return false, err
	}
	// No group commit adds copies of the send while it is cancelled: the
	// next statement sees every copy committed before.
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM send_counts WHERE send_id = $1 FOR NO KEY UPDATE`, id); err != nil {
		return false, ledgerErr(err)
	}
	if _, err := tx.ExecContext(ctx, ledgerQCancelOpen, ms, id); err != nil {
		return false, ledgerErr(err)
	}
	if _, err := tx.ExecContext(ctx, ledgerQCancelMark, id); err != nil {
		return false, ledgerErr(err)
	}
	return true, ledgerErr(tx.Commit())
}

const ledgerQAllBatchesDone = `plan_done = 1 AND NOT EXISTS (SELECT 1 FROM batch_claims
	WHERE batch_claims.send_id = sends.id AND done = 0)`

func (l *Ledger) FinishIfDone(ctx context.Context, id int64, now time.Time) (bool, error) {
	var ready bool
	if err := l.db.QueryRowContext(ctx, `SELECT state = 'sending' AND `+ledgerQAllBatchesDone+` FROM sends WHERE id = $1`, id).Scan(&ready); err != nil {
		return false, err
	}
	if !ready {
		return false, nil
	}
	ms := now.UnixMilli()
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'done', finished_at = $1, updated_at = $1
		WHERE id = $2 AND state = 'sending' AND `+ledgerQAllBatchesDone, ms, id)
}

// ---- planning

func (l *Ledger) StartPlanning(ctx context.Context, id int64, now time.Time, claim string, leaseUntil int64) (bool, error) {
	ms := now.UnixMilli()
	if claim == "" {
		return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'planning', started_at = $1, updated_at = $1
			WHERE id = $2 AND state = 'scheduled'`, ms, id)
	}
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'planning', started_at = $1, updated_at = $1,
		plan_claim = $2, plan_lease_until = $3 WHERE id = $4 AND state = 'scheduled'`, ms, claim, leaseUntil, id)
}

func (l *Ledger) PlanDone(ctx context.Context, id int64, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE sends SET plan_done = 1, last_error = '', updated_at = $1,
		state = CASE state WHEN 'planning' THEN 'sending' ELSE state END,
		paused_from = CASE state WHEN 'paused' THEN 'sending' ELSE paused_from END
		WHERE id = $2 AND (state = 'planning' OR state = 'paused' AND paused_from = 'planning')`, now.UnixMilli(), id)
	return ledgerErr(err)
}

func (l *Ledger) NotePlanError(ctx context.Context, id int64, note string, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE sends SET last_error = $1, updated_at = $2 WHERE id = $3 AND state IN ('scheduled','planning')`,
		note, now.UnixMilli(), id)
	return ledgerErr(err)
}

func (l *Ledger) HadIt(ctx context.Context, slug, list string, before int64) ([]int64, error) {
	return ledgerColumn[int64](ctx, l.db, `SELECT d.subscriber_id FROM sends s JOIN deliveries d ON d.send_id = s.id
	WHERE s.issue_slug = $1 AND s.list_key = $2 AND s.id < $3 AND d.status = 'sent'
	UNION
	SELECT c.subscriber_id FROM sends s JOIN sent_copies c ON c.send_id = s.id
	WHERE s.issue_slug = $1 AND s.list_key = $2 AND s.id < $3
	ORDER BY 1`, slug, list, before)
}

func (l *Ledger) OpenRows(ctx context.Context, sendID int64) (map[int64][]int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT batch, subscriber_id FROM deliveries
		WHERE send_id = $1 AND status IN ('queued','retry','sending')
		AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = $1)
		ORDER BY batch, subscriber_id`, sendID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var b, sub int64
		if err := rows.Scan(&b, &sub); err != nil {
			return nil, err
		}
		out[b] = append(out[b], sub)
	}
	return out, rows.Err()
}

func (l *Ledger) ClaimPlan(ctx context.Context, id int64, claim string, now time.Time, until int64) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET plan_claim = $1, plan_lease_until = $2
	WHERE id = $3 AND (plan_claim = '' OR plan_claim LIKE 'reclaim:%' OR plan_lease_until <= $4)`,
		claim, until, id, now.UnixMilli())
}

func (l *Ledger) LapsedPlans(ctx context.Context, now time.Time) ([]queue.LapsedPlan, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, uid, plan_claim, plan_lease_until FROM sends
	WHERE state = 'planning' AND plan_lease_until > 0 AND plan_lease_until < $1`, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.LapsedPlan
	for rows.Next() {
		var p queue.LapsedPlan
		if err := rows.Scan(&p.ID, &p.UID, &p.Claim, &p.Until); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (l *Ledger) TakeOverPlan(ctx context.Context, p queue.LapsedPlan, claim string, until int64) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET plan_claim = $1, plan_lease_until = $2
	WHERE id = $3 AND plan_claim = $4 AND plan_lease_until = $5 AND state = 'planning'`, claim, until, p.ID, p.Claim, p.Until)
}
