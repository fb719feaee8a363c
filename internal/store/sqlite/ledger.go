package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/queue"
)

// Ledger is queue.Ledger on SQLite (schema 00003_queue.sql). Its database
// is opened by internal/sqlitedb: transactions begin IMMEDIATE, so a
// transaction's reads and writes are one step.
type Ledger struct {
	db  *sql.DB
	rec ledgerRecordStmts
}

var _ queue.Ledger = (*Ledger)(nil)

// NewLedger returns the send ledger over db (store.DB.SQL of a SQLite
// store), whose schema store.Migrate applied. It takes the *sql.DB, not
// the *store.DB: package store picks the engine and imports this one.
func NewLedger(db *sql.DB) *Ledger { return &Ledger{db: db} }

// Close releases the prepared statements (not the database).
func (l *Ledger) Close() error { return l.rec.close() }

// ledgerErr marks an error of a full disk as queue.ErrStoreFull.
func ledgerErr(err error) error {
	if err != nil && sqlitedb.IsFull(err) && !errors.Is(err, queue.ErrStoreFull) {
		return fmt.Errorf("%w: %w", queue.ErrStoreFull, err)
	}
	return err
}

type ledgerQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// ledgerAffected runs an update and reports whether it changed a row.
func ledgerAffected(ctx context.Context, q ledgerQuerier, query string, args ...any) (bool, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, ledgerErr(err)
	}
	n, err := res.RowsAffected()
	return n > 0, ledgerErr(err)
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

// ---- sends

func (l *Ledger) CreateSend(ctx context.Context, r queue.SendRecord, check func([]queue.EarlierSend) error) (queue.Created, error) {
	tx, err := l.db.BeginTx(ctx, nil) // immediate: the checks and the insert are one step
	if err != nil {
		return queue.Created{}, ledgerErr(err)
	}
	defer tx.Rollback()
	if r.Key != "" {
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
		VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.UID, r.Slug, r.IssueJSON, r.List, ledgerNullString(r.FilterJSON), r.ScheduledAt, ledgerNull(r.NotAfter),
		r.Now, r.Now, r.Again, ledgerNullString(r.Key), ledgerNullString(r.Hash),
	).Scan(&id)
	if sqlitedb.IsUnique(err) {
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

func (l *Ledger) SendByKey(ctx context.Context, key string) (int64, string, bool, error) {
	return ledgerSendByKey(ctx, l.db, key)
}

func ledgerSendByKey(ctx context.Context, q ledgerQuerier, key string) (id int64, hash string, ok bool, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, ifnull(request_hash, '') FROM sends WHERE request_key = ?`, key).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, err
	}
	return id, hash, true, nil
}

// ledgerQEarlier lists the sends of an issue to a list, newest first.
const ledgerQEarlier = `SELECT s.id, s.state, s.created_at, s.finished_at, ifnull(c.sent + c.first_sent, 0)
	FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id
	WHERE s.issue_slug = ? AND s.list_key = ? ORDER BY s.id DESC`

func (l *Ledger) EarlierSends(ctx context.Context, slug, list string) ([]queue.EarlierSend, error) {
	return ledgerEarlier(ctx, l.db, slug, list)
}

func ledgerEarlier(ctx context.Context, q ledgerQuerier, slug, list string) ([]queue.EarlierSend, error) {
	rows, err := q.QueryContext(ctx, ledgerQEarlier, slug, list)
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

func ledgerTime(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// ledgerSendCols are a send's columns and kept counts, read FROM
// ledgerSendFrom. A send's issue, a large value, comes after them.
const (
	ledgerSendCols = `s.id, s.uid, s.issue_slug, s.list_key, s.filter_json, s.state, s.paused_from, s.scheduled_at, s.not_after,
	s.plan_cursor, s.plan_done, s.batches, s.created_at, s.updated_at, s.started_at, s.finished_at, s.last_error,
	s.pause_reason, s.again,
	ifnull(c.planned, 0), ifnull(c.had_it, 0), ifnull(c.queued, 0), ifnull(c.retry, 0), ifnull(c.sent, 0),
	ifnull(c.skipped, 0), ifnull(c.failed_temp, 0), ifnull(c.failed_perm, 0), ifnull(c.cancelled, 0),
	ifnull(c.first_sent, 0), ifnull(c.raced, 0)`
	ledgerSendFrom = ` FROM sends s LEFT JOIN send_counts c ON c.send_id = s.id`
)

type ledgerScanner interface{ Scan(dest ...any) error }

func ledgerScanSend(r ledgerScanner) (*queue.SendRow, error) {
	var (
		s                                 queue.SendRow
		k                                 = &s.Kept
		filter, pausedFrom                sql.NullString
		sched, notAfter, created, updated sql.NullInt64
		started, finished                 sql.NullInt64
		planDone, again                   int
		state                             string
	)
	err := r.Scan(&s.ID, &s.UID, &s.Slug, &s.List, &filter, &state, &pausedFrom, &sched, &notAfter,
		&s.PlanCursor, &planDone, &s.Batches, &created, &updated, &started, &finished, &s.LastError, &s.PauseReason, &again,
		&k.Planned, &k.HadIt, &k.Queued, &k.Retry, &k.Sent, &k.Skipped, &k.FailedTemp, &k.FailedPerm, &k.Cancelled,
		&k.FirstSent, &k.Raced, &s.IssueJSON)
	if err != nil {
		return nil, err
	}
	s.State, s.PausedFrom = queue.State(state), queue.State(pausedFrom.String)
	s.FilterJSON = filter.String
	s.ScheduledAt, s.NotAfter = sched.Int64, notAfter.Int64
	s.CreatedAt, s.UpdatedAt, s.StartedAt, s.FinishedAt = created.Int64, updated.Int64, started.Int64, finished.Int64
	s.PlanDone, s.Again = planDone != 0, again != 0
	return &s, nil
}

func (l *Ledger) Send(ctx context.Context, id int64, withIssue bool) (*queue.SendRow, error) {
	return ledgerSend(ctx, l.db, id, withIssue)
}

func ledgerSend(ctx context.Context, q ledgerQuerier, id int64, withIssue bool) (*queue.SendRow, error) {
	issue := "NULL"
	if withIssue {
		issue = "s.issue_json"
	}
	s, err := ledgerScanSend(q.QueryRowContext(ctx, `SELECT `+ledgerSendCols+`, `+issue+ledgerSendFrom+` WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, queue.ErrNotFound
	}
	return s, err
}

func (l *Ledger) Sends(ctx context.Context, limit int) ([]*queue.SendRow, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT `+ledgerSendCols+`, NULL`+ledgerSendFrom+` ORDER BY s.id DESC LIMIT ?`, limit)
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
	err := l.db.QueryRowContext(ctx, `SELECT state FROM sends WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", queue.ErrNotFound
	}
	return queue.State(st), err
}

func (l *Ledger) UIDExists(ctx context.Context, uid string) (bool, error) {
	var ok bool
	err := l.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sends WHERE uid = ?)`, uid).Scan(&ok)
	return ok, err
}

func (l *Ledger) UnfinishedSends(ctx context.Context) ([]int64, error) {
	return sqlitedb.QueryColumn[int64](ctx, l.db,
		`SELECT id FROM sends WHERE state IN ('scheduled','planning','sending','paused') ORDER BY id`)
}

// ---- a send's state

func (l *Ledger) Pause(ctx context.Context, id int64, reason string, now time.Time) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET paused_from = state, state = 'paused', pause_reason = ?, updated_at = ?
		WHERE id = ? AND state IN ('scheduled','planning','sending')`, reason, now.UnixMilli(), id)
}

func (l *Ledger) Resume(ctx context.Context, id int64, now time.Time) (bool, error) {
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = coalesce(paused_from, 'sending'), paused_from = NULL,
		pause_reason = '', updated_at = ? WHERE id = ? AND state = 'paused'`, now.UnixMilli(), id)
}

const (
	ledgerQCancel = `UPDATE sends SET state = 'cancelled', last_error = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND state IN ('scheduled','planning','sending','paused')`
	ledgerQFail = `UPDATE sends SET state = 'failed', paused_from = NULL, last_error = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND (state IN ('scheduled','planning') OR state = 'paused' AND paused_from IN ('scheduled','planning'))`
	// ledgerQCancelOpen marks the open rows cancelled, but not those of
	// the copies in batch_sent (a list built once, not a lookup per row).
	ledgerQCancelOpen = `UPDATE deliveries SET status = 'cancelled', updated_at = ?1
		WHERE send_id = ?2 AND status IN ('queued','retry','sending')
		AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = ?2)`
	// ledgerQCancelMark notes where batch_sent stood: a copy in flight
	// recorded after the cancel has a rowid above it.
	ledgerQCancelMark = `UPDATE sends SET cancel_mark = (SELECT coalesce(max(rowid), 0) FROM batch_sent) WHERE id = ?`
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

// end runs a cancel or fail (q) and, if it changed the send, cancels its
// open deliveries, in one transaction.
func (l *Ledger) end(ctx context.Context, q string, id int64, reason string, now time.Time) (bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return false, ledgerErr(err)
	}
	defer tx.Rollback()
	ms := now.UnixMilli()
	ok, err := ledgerAffected(ctx, tx, q, reason, ms, ms, id)
	if err != nil || !ok {
		return false, err
	}
	// Copies in flight now are recorded over 'cancelled' by their run.
	if _, err := tx.ExecContext(ctx, ledgerQCancelOpen, ms, id); err != nil {
		return false, ledgerErr(err)
	}
	if _, err := tx.ExecContext(ctx, ledgerQCancelMark, id); err != nil {
		return false, ledgerErr(err)
	}
	return true, ledgerErr(tx.Commit())
}

// ledgerQAllBatchesDone: planning is over and every planned batch is done.
const ledgerQAllBatchesDone = `plan_done = 1 AND NOT EXISTS (SELECT 1 FROM batch_claims INDEXED BY batch_claims_open
	WHERE batch_claims.send_id = sends.id AND done = 0)`

func (l *Ledger) FinishIfDone(ctx context.Context, id int64, now time.Time) (bool, error) {
	var ready bool
	if err := l.db.QueryRowContext(ctx, `SELECT state = 'sending' AND `+ledgerQAllBatchesDone+` FROM sends WHERE id = ?`, id).Scan(&ready); err != nil {
		return false, err
	}
	if !ready {
		return false, nil // the common case: no write lock taken
	}
	ms := now.UnixMilli()
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'done', finished_at = ?, updated_at = ?
		WHERE id = ? AND state = 'sending' AND `+ledgerQAllBatchesDone, ms, ms, id)
}

// ---- planning

func (l *Ledger) StartPlanning(ctx context.Context, id int64, now time.Time, claim string, leaseUntil int64) (bool, error) {
	ms := now.UnixMilli()
	if claim == "" {
		return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'planning', started_at = ?, updated_at = ?
			WHERE id = ? AND state = 'scheduled'`, ms, ms, id)
	}
	return ledgerAffected(ctx, l.db, `UPDATE sends SET state = 'planning', started_at = ?, updated_at = ?,
		plan_claim = ?, plan_lease_until = ? WHERE id = ? AND state = 'scheduled'`, ms, ms, claim, leaseUntil, id)
}

func (l *Ledger) PlanDone(ctx context.Context, id int64, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE sends SET plan_done = 1, last_error = '', updated_at = ?,
		state = CASE state WHEN 'planning' THEN 'sending' ELSE state END,
		paused_from = CASE state WHEN 'paused' THEN 'sending' ELSE paused_from END
		WHERE id = ? AND (state = 'planning' OR state = 'paused' AND paused_from = 'planning')`, now.UnixMilli(), id)
	return ledgerErr(err)
}

func (l *Ledger) NotePlanError(ctx context.Context, id int64, note string, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE sends SET last_error = ?, updated_at = ? WHERE id = ? AND state IN ('scheduled','planning')`,
		note, now.UnixMilli(), id)
	return ledgerErr(err)
}

// ledgerQHadIt lists the readers with a copy from an earlier send of an
// issue to a list (rows sent after a retry, and first copies in
// batch_sent), ascending.
const ledgerQHadIt = `SELECT d.subscriber_id FROM sends s CROSS JOIN deliveries d ON d.send_id = s.id
	WHERE s.issue_slug = ?1 AND s.list_key = ?2 AND s.id < ?3 AND d.status = 'sent'
	UNION
	SELECT j.value ->> 0 FROM sends s CROSS JOIN batch_sent bs ON bs.send_id = s.id CROSS JOIN json_each(bs.sent) j
	WHERE s.issue_slug = ?1 AND s.list_key = ?2 AND s.id < ?3
	ORDER BY 1`

func (l *Ledger) HadIt(ctx context.Context, slug, list string, before int64) ([]int64, error) {
	return sqlitedb.QueryColumn[int64](ctx, l.db, ledgerQHadIt, slug, list, before)
}

// ledgerQOpenRows lists a send's open rows, leaving out the readers of
// sent_copies.
const ledgerQOpenRows = `SELECT batch, subscriber_id FROM deliveries
		WHERE send_id = ?1 AND status IN ('queued','retry','sending')
		AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = ?1)
		ORDER BY batch, subscriber_id`

func (l *Ledger) OpenRows(ctx context.Context, sendID int64) (map[int64][]int64, error) {
	rows, err := l.db.QueryContext(ctx, ledgerQOpenRows, sendID)
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
	return ledgerAffected(ctx, l.db, `UPDATE sends SET plan_claim = ?1, plan_lease_until = ?2
	WHERE id = ?3 AND (plan_claim = '' OR plan_claim LIKE 'reclaim:%' OR plan_lease_until <= ?4)`,
		claim, until, id, now.UnixMilli())
}

func (l *Ledger) LapsedPlans(ctx context.Context, now time.Time) ([]queue.LapsedPlan, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, uid, plan_claim, plan_lease_until FROM sends
	WHERE state = 'planning' AND plan_lease_until > 0 AND plan_lease_until < ?`, now.UnixMilli())
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
	return ledgerAffected(ctx, l.db, `UPDATE sends SET plan_claim = ?1, plan_lease_until = ?2
	WHERE id = ?3 AND plan_claim = ?4 AND plan_lease_until = ?5 AND state = 'planning'`, claim, until, p.ID, p.Claim, p.Until)
}

// ---- batches

// ledgerQClaim takes a batch for a run, under a lease until ?5, unless
// another run holds it under a live lease.
const ledgerQClaim = `INSERT INTO batch_claims (send_id, batch, claim, claimed_at, lease_until, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
	ON CONFLICT (send_id, batch) DO UPDATE SET claim = excluded.claim, claimed_at = excluded.claimed_at,
		lease_until = excluded.lease_until, lo = excluded.lo, hi = excluded.hi
	WHERE batch_claims.claim = '' OR batch_claims.claim LIKE 'reclaim:%' OR batch_claims.lease_until <= ?4`

// ledgerQClaimRows reads a batch's unfinished deliveries along the
// primary key.
const ledgerQClaimRows = `SELECT subscriber_id, attempts FROM deliveries
	WHERE send_id = ? AND subscriber_id BETWEEN ? AND ? AND batch = ? AND status IN ('queued','retry','sending')
	ORDER BY subscriber_id`

// ledgerQBatchSentIDs lists the readers of a batch whose copies are in
// batch_sent.
const ledgerQBatchSentIDs = `SELECT subscriber_id FROM sent_copies WHERE send_id = ? AND batch = ?`

func (l *Ledger) Claim(ctx context.Context, b queue.BatchClaim) ([]queue.ClaimedRow, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, ledgerErr(err)
	}
	defer tx.Rollback()
	ok, err := ledgerAffected(ctx, tx, ledgerQClaim, b.SendID, b.Batch, b.Claim, b.Now, b.Until, b.Lo, b.Hi)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, queue.ErrBusy
	}
	rows, err := tx.QueryContext(ctx, ledgerQClaimRows, b.SendID, b.Lo, b.Hi, b.Batch)
	if err != nil {
		return nil, ledgerErr(err)
	}
	out := make([]queue.ClaimedRow, 0, b.Hi-b.Lo+1)
	for rows.Next() {
		var c queue.ClaimedRow
		if err := rows.Scan(&c.SubscriberID, &c.Attempts); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Copies an earlier run sent on their first attempt are in batch_sent,
	// their rows still queued: they are done.
	sent, err := sqlitedb.QueryColumn[int64](ctx, tx, ledgerQBatchSentIDs, b.SendID, b.Batch)
	if err != nil {
		return nil, err
	}
	out = ledgerLeaveOut(out, sent, func(c queue.ClaimedRow) int64 { return c.SubscriberID })
	return out, ledgerErr(tx.Commit())
}

// ledgerLeaveOut removes from rows those whose id is in done.
func ledgerLeaveOut[T any](rows []T, done []int64, id func(T) int64) []T {
	if len(done) == 0 {
		return rows
	}
	set := make(map[int64]bool, len(done))
	for _, d := range done {
		set[d] = true
	}
	out := rows[:0]
	for _, r := range rows {
		if !set[id(r)] {
			out = append(out, r)
		}
	}
	return out
}

const (
	// ledgerQBatchDone marks a batch done under the run's claim when none
	// of its rows (one primary key range) is open.
	ledgerQBatchDone = `UPDATE batch_claims SET done = 1
		WHERE send_id = ?1 AND batch = ?2 AND claim = ?3 AND done = 0
		AND NOT EXISTS (SELECT 1 FROM deliveries WHERE send_id = ?1 AND subscriber_id BETWEEN ?4 AND ?5
		                AND batch = ?2 AND status IN ('queued','retry','sending')
		                AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = ?1 AND batch = ?2))`
	// ledgerQBatchRunDone marks a batch done under the run's claim
	// without looking at its rows.
	ledgerQBatchRunDone = `UPDATE batch_claims SET done = 1 WHERE send_id = ? AND batch = ? AND claim = ? AND done = 0`
)

func (l *Ledger) FinishBatch(ctx context.Context, sendID, batch int64, claim string, lo, hi int64, allFinal bool) error {
	var err error
	if allFinal {
		_, err = l.db.ExecContext(ctx, ledgerQBatchRunDone, sendID, batch, claim)
	} else {
		_, err = l.db.ExecContext(ctx, ledgerQBatchDone, sendID, batch, claim, lo, hi)
	}
	return ledgerErr(err)
}

// The statements of a run's lease, with the arguments (until, send,
// batch, claim) and (send, batch, claim); a planning's (batch
// queue.PlanLease) are in sends.
const (
	ledgerQRenewLease       = `UPDATE batch_claims SET lease_until = ?1 WHERE send_id = ?2 AND batch = ?3 AND claim = ?4`
	ledgerQReleaseLease     = `UPDATE batch_claims SET lease_until = 0 WHERE send_id = ?1 AND batch = ?2 AND claim = ?3`
	ledgerQRenewPlanLease   = `UPDATE sends SET plan_lease_until = ?1 WHERE id = ?2 AND ?3 = -1 AND plan_claim = ?4`
	ledgerQReleasePlanLease = `UPDATE sends SET plan_lease_until = 0 WHERE id = ?1 AND ?2 = -1 AND plan_claim = ?3`
)

func (l *Ledger) RenewLeases(ctx context.Context, leases []queue.LeaseRef, until int64) ([]bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, ledgerErr(err)
	}
	defer tx.Rollback()
	lost := make([]bool, len(leases))
	for i, r := range leases {
		q := ledgerQRenewLease
		if r.Batch == queue.PlanLease {
			q = ledgerQRenewPlanLease
		}
		ok, err := ledgerAffected(ctx, tx, q, until, r.SendID, r.Batch, r.Claim)
		if err != nil {
			return nil, err
		}
		lost[i] = !ok
	}
	return lost, ledgerErr(tx.Commit())
}

func (l *Ledger) ReleaseLease(ctx context.Context, r queue.LeaseRef) error {
	q := ledgerQReleaseLease
	if r.Batch == queue.PlanLease {
		q = ledgerQReleasePlanLease
	}
	_, err := l.db.ExecContext(ctx, q, r.SendID, r.Batch, r.Claim)
	return ledgerErr(err)
}

// ledgerQLapsedLeases lists the batches of sends under way whose lease
// lapsed.
const ledgerQLapsedLeases = `SELECT bc.send_id, s.uid, bc.batch, bc.claim, bc.lease_until, bc.lo, bc.hi
	FROM batch_claims bc INDEXED BY batch_claims_leased JOIN sends s ON s.id = bc.send_id
	WHERE bc.done = 0 AND bc.lease_until > 0 AND bc.lease_until < ?1 AND s.state IN ('planning','sending')
	ORDER BY bc.lease_until LIMIT 1000`

func (l *Ledger) LapsedLeases(ctx context.Context, now time.Time) ([]queue.Lapsed, error) {
	rows, err := l.db.QueryContext(ctx, ledgerQLapsedLeases, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Lapsed
	for rows.Next() {
		var x queue.Lapsed
		if err := rows.Scan(&x.SendID, &x.UID, &x.Batch, &x.Claim, &x.Until, &x.Lo, &x.Hi); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// ledgerQTakeOver hands a batch whose lease lapsed to its new task,
// unless someone else did first (or the run renewed its lease after all).
const ledgerQTakeOver = `UPDATE batch_claims SET claim = ?1, lease_until = ?2
	WHERE send_id = ?3 AND batch = ?4 AND claim = ?5 AND lease_until = ?6 AND done = 0`

func (l *Ledger) TakeOver(ctx context.Context, x queue.Lapsed, claim string, until int64, openRows bool) (bool, []int64, error) {
	args := []any{claim, until, x.SendID, x.Batch, x.Claim, x.Until}
	if !openRows {
		ok, err := ledgerAffected(ctx, l.db, ledgerQTakeOver, args...)
		return ok, nil, err
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return false, nil, ledgerErr(err)
	}
	defer tx.Rollback()
	ok, err := ledgerAffected(ctx, tx, ledgerQTakeOver, args...)
	if err != nil || !ok {
		return false, nil, err
	}
	ids, err := ledgerOpenRowsOfBatch(ctx, tx, x.SendID, x.Batch, x.Lo, x.Hi)
	if err != nil {
		return false, nil, err
	}
	if len(ids) == 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE batch_claims SET done = 1, lease_until = 0 WHERE send_id = ? AND batch = ?`,
			x.SendID, x.Batch); err != nil {
			return false, nil, ledgerErr(err)
		}
	}
	return true, ids, ledgerErr(tx.Commit())
}

func (l *Ledger) UnfinishedBatches(ctx context.Context, sendID int64) ([]queue.BatchRange, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT batch, lo, hi FROM batch_claims INDEXED BY batch_claims_open
	WHERE send_id = ? AND done = 0 ORDER BY batch`, sendID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.BatchRange
	for rows.Next() {
		var b queue.BatchRange
		if err := rows.Scan(&b.Batch, &b.Lo, &b.Hi); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (l *Ledger) OpenRowsOfBatch(ctx context.Context, sendID, batch, lo, hi int64) ([]int64, error) {
	return ledgerOpenRowsOfBatch(ctx, l.db, sendID, batch, lo, hi)
}

// ledgerOpenRowsOfBatch lists the subscribers of a batch whose deliveries
// are open, along the primary key when the range is known (hi > 0).
func ledgerOpenRowsOfBatch(ctx context.Context, q ledgerQuerier, sendID, batch, lo, hi int64) ([]int64, error) {
	if hi == 0 {
		lo, hi = 0, 1<<62 // the range is not known: the whole send
	}
	ids, err := sqlitedb.QueryColumn[int64](ctx, q, `SELECT subscriber_id FROM deliveries
		WHERE send_id = ? AND subscriber_id BETWEEN ? AND ? AND batch = ? AND status IN ('queued','retry','sending')
		ORDER BY subscriber_id`, sendID, lo, hi, batch)
	if err != nil || len(ids) == 0 {
		return ids, err
	}
	sent, err := sqlitedb.QueryColumn[int64](ctx, q, ledgerQBatchSentIDs, sendID, batch)
	if err != nil {
		return nil, err
	}
	return ledgerLeaveOut(ids, sent, func(id int64) int64 { return id }), nil
}

func (l *Ledger) MarkBatchDone(ctx context.Context, sendID, batch int64) error {
	_, err := l.db.ExecContext(ctx, `UPDATE batch_claims SET done = 1, lease_until = 0
				WHERE send_id = ? AND batch = ? AND done = 0`, sendID, batch)
	return ledgerErr(err)
}

// ---- reading outcomes

// ledgerQFailures reads the failed and retrying rows through their
// partial index, named with INDEXED BY since without statistics SQLite
// prefers the primary key prefix; the query repeats the index's
// condition word for word.
const ledgerQFailures = `SELECT subscriber_id, status, permanent, attempts, reply, updated_at
		FROM deliveries INDEXED BY deliveries_trouble WHERE send_id = ? AND status IN ('failed','retry')
		ORDER BY updated_at DESC LIMIT ?`

func (l *Ledger) Failures(ctx context.Context, sendID int64, limit int) ([]queue.Failure, error) {
	rows, err := l.db.QueryContext(ctx, ledgerQFailures, sendID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Failure
	for rows.Next() {
		var (
			f      queue.Failure
			status string
			perm   int
			at     int64
		)
		if err := rows.Scan(&f.SubscriberID, &status, &perm, &f.Attempts, &f.Reply, &at); err != nil {
			return nil, err
		}
		f.Permanent, f.Retrying = perm != 0, status == "retry"
		f.At = time.UnixMilli(at).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// ledgerQHistory reads a reader's deliveries as they stand, one key seek
// per send.
const ledgerQHistory = `SELECT d.send_id, s.issue_slug, s.list_key, d.variant, d.status, d.attempts, d.updated_at
	FROM sends s CROSS JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = ?
	ORDER BY s.id`

func (l *Ledger) History(ctx context.Context, subscriberID int64) ([]queue.Delivered, error) {
	rows, err := l.db.QueryContext(ctx, ledgerQHistory, subscriberID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []queue.Delivered{}
	for rows.Next() {
		var (
			d  queue.Delivered
			at int64
		)
		if err := rows.Scan(&d.SendID, &d.Issue, &d.List, &d.Variant, &d.Status, &d.Attempts, &at); err != nil {
			return nil, err
		}
		d.At = time.UnixMilli(at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// ledgerQLastAttempts reads a reader's latest outcomes that reached the
// relay, newest send first.
const ledgerQLastAttempts = `SELECT d.send_id, d.status, d.permanent, d.reply, d.updated_at
	FROM sends s CROSS JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = ?
	WHERE d.status IN ('sent','failed') ORDER BY s.id DESC LIMIT ?`

func (l *Ledger) LastAttempts(ctx context.Context, subscriberID int64, n int) ([]queue.Attempt, error) {
	rows, err := l.db.QueryContext(ctx, ledgerQLastAttempts, subscriberID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Attempt
	for rows.Next() {
		var (
			a      queue.Attempt
			status string
			at     int64
		)
		if err := rows.Scan(&a.SendID, &status, &a.Permanent, &a.Reply, &at); err != nil {
			return nil, err
		}
		a.Sent, a.At = status == "sent", time.UnixMilli(at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// ledgerSendsIn lists the sends that may have delivered between since and
// until, oldest first.
func (l *Ledger) sendsIn(ctx context.Context, since, until time.Time) ([]int64, error) {
	return sqlitedb.QueryColumn[int64](ctx, l.db, `SELECT id FROM sends WHERE created_at < ? AND (finished_at IS NULL OR finished_at >= ?)`,
		until.UnixMilli(), since.UnixMilli())
}

func (l *Ledger) SentBetween(ctx context.Context, since, until time.Time) (int64, error) {
	ids, err := l.sendsIn(ctx, since, until)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, id := range ids {
		var n int64
		if err := l.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries
			WHERE send_id = ?1 AND status = 'sent' AND updated_at >= ?2 AND updated_at < ?3)
			+ (SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = ?1 AND at >= ?2 AND at < ?3)`,
			id, since.UnixMilli(), until.UnixMilli()).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (l *Ledger) Refusals(ctx context.Context, since, until time.Time, limit int) ([]queue.Refusal, error) {
	ids, err := l.sendsIn(ctx, since, until)
	if err != nil {
		return nil, err
	}
	var out []queue.Refusal
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		rows, err := l.db.QueryContext(ctx, `SELECT subscriber_id, permanent, reply, updated_at
			FROM deliveries INDEXED BY deliveries_trouble WHERE send_id = ? AND status IN ('failed','retry')
			AND status = 'failed' AND updated_at >= ? AND updated_at < ? ORDER BY updated_at DESC LIMIT ?`,
			ids[i], since.UnixMilli(), until.UnixMilli(), limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("refusals of send %d: %w", ids[i], err)
		}
		for rows.Next() {
			r := queue.Refusal{SendID: ids[i]}
			var at int64
			if err := rows.Scan(&r.SubscriberID, &r.Permanent, &r.Reply, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("refusals of send %d: %w", ids[i], err)
			}
			r.At = time.UnixMilli(at).UTC()
			out = append(out, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("refusals of send %d: %w", ids[i], err)
		}
	}
	return out, nil
}

// ---- counts

// ledgerQRacedCancel counts the send's copies in batch_sent whose rows
// were cancelled while the copies were in flight. Only copies recorded
// after the cancel (batch_sent rowids above the send's cancel_mark) can be
// such, and each costs a key seek (CROSS JOIN keeps the copies the outer
// loop).
const ledgerQRacedCancel = `SELECT count(*) FROM batch_sent bs CROSS JOIN json_each(bs.sent) j
	CROSS JOIN deliveries d ON d.send_id = bs.send_id AND d.subscriber_id = j.value ->> 0
	WHERE bs.send_id = ?1 AND bs.rowid > (SELECT cancel_mark FROM sends WHERE id = ?1) AND d.status = 'cancelled'`

// ledgerQSentCount counts a send's copies in batch_sent, from its index.
const ledgerQSentCount = `SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = ?`

func (l *Ledger) Recount(ctx context.Context, id int64) (kept, live queue.Counts, err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return kept, live, err
	}
	defer tx.Rollback()
	s, err := ledgerSend(ctx, tx, id, false)
	if err != nil {
		return kept, live, err
	}
	live, err = ledgerLiveCounts(ctx, tx, id)
	return s.Kept.Counts(), live, err
}

// ledgerLiveCounts computes a send's figures from its deliveries: the full
// recount, which reads every row of the send.
func ledgerLiveCounts(ctx context.Context, q ledgerQuerier, id int64) (queue.Counts, error) {
	rows, err := q.QueryContext(ctx, `SELECT status, permanent, count(*) FROM deliveries
		WHERE send_id = ? GROUP BY status, permanent`, id)
	if err != nil {
		return queue.Counts{}, err
	}
	defer rows.Close()
	var c queue.Counts
	for rows.Next() {
		var status string
		var perm int
		var n int64
		if err := rows.Scan(&status, &perm, &n); err != nil {
			return queue.Counts{}, err
		}
		ledgerTally(&c, status, perm != 0, n)
	}
	if err := rows.Err(); err != nil {
		return queue.Counts{}, err
	}
	var sent, raced int64
	if err := q.QueryRowContext(ctx, ledgerQSentCount, id).Scan(&sent); err != nil {
		return queue.Counts{}, err
	}
	if sent > 0 && c.Cancelled > 0 {
		if err := q.QueryRowContext(ctx, ledgerQRacedCancel, id).Scan(&raced); err != nil {
			return queue.Counts{}, err
		}
	}
	c.Sent += sent
	c.Queued -= sent - raced
	c.Cancelled -= raced
	if err := q.QueryRowContext(ctx, `SELECT ifnull((SELECT had_it FROM send_counts WHERE send_id = ?), 0)`, id).Scan(&c.AlreadyHad); err != nil {
		return queue.Counts{}, err
	}
	return c, nil
}

// ledgerTally adds n rows of a status to c.
func ledgerTally(c *queue.Counts, status string, perm bool, n int64) {
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
		if perm {
			c.FailedPerm += n
		} else {
			c.FailedTemp += n
		}
	case "cancelled":
		c.Cancelled += n
	}
}
