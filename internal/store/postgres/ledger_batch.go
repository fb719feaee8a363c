package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tayori-news/tayori/queue"
)

// ledgerQClaim takes a batch for a run, under a lease until $5, unless
// another run holds it under a live lease.
const ledgerQClaim = `INSERT INTO batch_claims (send_id, batch, claim, claimed_at, lease_until, lo, hi) VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (send_id, batch) DO UPDATE SET claim = excluded.claim, claimed_at = excluded.claimed_at,
		lease_until = excluded.lease_until, lo = excluded.lo, hi = excluded.hi
	WHERE batch_claims.claim = '' OR batch_claims.claim LIKE 'reclaim:%' OR batch_claims.lease_until <= $4`

// ledgerQClaimRows reads a batch's open deliveries along the primary key,
// leaving out the copies in batch_sent, once the claim ($5) is the
// batch's (ledgerQClaim just took it, in the same transaction).
const ledgerQClaimRows = `SELECT d.subscriber_id, d.attempts FROM deliveries d
	WHERE d.send_id = $1 AND d.subscriber_id BETWEEN $2 AND $3 AND d.batch = $4 AND d.status IN ('queued','retry','sending')
	AND d.subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = $1 AND batch = $4)
	AND EXISTS (SELECT 1 FROM batch_claims b WHERE b.send_id = $1 AND b.batch = $4 AND b.claim = $5)
	ORDER BY d.subscriber_id`

// Claim takes the batch and reads its open rows in one round trip: the
// two statements run as one transaction (the claims row stays locked until
// it commits: a group commit under the old claim waits, then finds it
// gone), the read with a snapshot taken after the claim, so it sees every
// outcome committed under the old claim.
func (l *Ledger) Claim(ctx context.Context, b queue.BatchClaim) ([]queue.ClaimedRow, error) {
	var out []queue.ClaimedRow
	err := l.withConn(ctx, func(c *pgx.Conn) error {
		var q pgx.Batch
		q.Queue(ledgerQClaim, b.SendID, b.Batch, b.Claim, b.Now, b.Until, b.Lo, b.Hi)
		q.Queue(ledgerQClaimRows, b.SendID, b.Lo, b.Hi, b.Batch, b.Claim)
		br := c.SendBatch(ctx, &q)
		defer br.Close()
		tag, err := br.Exec()
		if err != nil {
			return ledgerErr(err)
		}
		if tag.RowsAffected() == 0 {
			return queue.ErrBusy
		}
		rows, err := br.Query()
		if err != nil {
			return ledgerErr(err)
		}
		out = make([]queue.ClaimedRow, 0, b.Hi-b.Lo+1)
		var cr queue.ClaimedRow
		_, err = pgx.ForEachRow(rows, []any{&cr.SubscriberID, &cr.Attempts}, func() error {
			out = append(out, cr)
			return nil
		})
		if err != nil {
			return ledgerErr(err)
		}
		return ledgerErr(br.Close())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const (
	ledgerQBatchDone = `UPDATE batch_claims SET done = 1, lease_until = 0
		WHERE send_id = $1 AND batch = $2 AND claim = $3 AND done = 0
		AND NOT EXISTS (SELECT 1 FROM deliveries WHERE send_id = $1 AND subscriber_id BETWEEN $4 AND $5
		                AND batch = $2 AND status IN ('queued','retry','sending')
		                AND subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = $1 AND batch = $2))`
	ledgerQBatchRunDone = `UPDATE batch_claims SET done = 1, lease_until = 0 WHERE send_id = $1 AND batch = $2 AND claim = $3 AND done = 0`
)

// FinishBatch ends the batch and its lease in one write, so that the
// run's ReleaseLease that follows finds nothing to change and commits no
// write (no WAL flush).
func (l *Ledger) FinishBatch(ctx context.Context, sendID, batch int64, claim string, lo, hi int64, allFinal bool) error {
	var err error
	if allFinal {
		_, err = l.db.ExecContext(ctx, ledgerQBatchRunDone, sendID, batch, claim)
	} else {
		_, err = l.db.ExecContext(ctx, ledgerQBatchDone, sendID, batch, claim, lo, hi)
	}
	return ledgerErr(err)
}

const (
	ledgerQRenewLease       = `UPDATE batch_claims SET lease_until = $1 WHERE send_id = $2 AND batch = $3 AND claim = $4`
	ledgerQReleaseLease     = `UPDATE batch_claims SET lease_until = 0 WHERE send_id = $1 AND batch = $2 AND claim = $3 AND lease_until <> 0`
	ledgerQRenewPlanLease   = `UPDATE sends SET plan_lease_until = $1 WHERE id = $2 AND plan_claim = $3`
	ledgerQReleasePlanLease = `UPDATE sends SET plan_lease_until = 0 WHERE id = $1 AND plan_claim = $2`
)

// RenewLeases renews in the order every writer locks: plannings (sends)
// first, then batch claims by send and batch, so that renewing leases and
// a group commit (which locks the claims it records under, in the same
// order) never wait for each other in a circle.
func (l *Ledger) RenewLeases(ctx context.Context, leases []queue.LeaseRef, until int64) ([]bool, error) {
	order := make([]int, len(leases))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := leases[a], leases[b]
		if px, py := x.Batch == queue.PlanLease, y.Batch == queue.PlanLease; px != py {
			if px {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(x.SendID, y.SendID); c != 0 {
			return c
		}
		return cmp.Compare(x.Batch, y.Batch)
	})
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, ledgerErr(err)
	}
	defer tx.Rollback()
	lost := make([]bool, len(leases))
	for _, i := range order {
		r := leases[i]
		var ok bool
		if r.Batch == queue.PlanLease {
			ok, err = ledgerAffected(ctx, tx, ledgerQRenewPlanLease, until, r.SendID, r.Claim)
		} else {
			ok, err = ledgerAffected(ctx, tx, ledgerQRenewLease, until, r.SendID, r.Batch, r.Claim)
		}
		if err != nil {
			return nil, err
		}
		lost[i] = !ok
	}
	return lost, ledgerErr(tx.Commit())
}

func (l *Ledger) ReleaseLease(ctx context.Context, r queue.LeaseRef) error {
	var err error
	if r.Batch == queue.PlanLease {
		_, err = l.db.ExecContext(ctx, ledgerQReleasePlanLease, r.SendID, r.Claim)
	} else {
		_, err = l.db.ExecContext(ctx, ledgerQReleaseLease, r.SendID, r.Batch, r.Claim)
	}
	return ledgerErr(err)
}

func (l *Ledger) LapsedLeases(ctx context.Context, now time.Time) ([]queue.Lapsed, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT bc.send_id, s.uid, bc.batch, bc.claim, bc.lease_until, bc.lo, bc.hi
	FROM batch_claims bc JOIN sends s ON s.id = bc.send_id
	WHERE bc.done = 0 AND bc.lease_until > 0 AND bc.lease_until < $1 AND s.state IN ('planning','sending')
	ORDER BY bc.lease_until LIMIT 1000`, now.UnixMilli())
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

const ledgerQTakeOver = `UPDATE batch_claims SET claim = $1, lease_until = $2
	WHERE send_id = $3 AND batch = $4 AND claim = $5 AND lease_until = $6 AND done = 0`

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
		if _, err := tx.ExecContext(ctx, `UPDATE batch_claims SET done = 1, lease_until = 0 WHERE send_id = $1 AND batch = $2`,
			x.SendID, x.Batch); err != nil {
			return false, nil, ledgerErr(err)
		}
	}
	return true, ids, ledgerErr(tx.Commit())
}

func (l *Ledger) UnfinishedBatches(ctx context.Context, sendID int64) ([]queue.BatchRange, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT batch, lo, hi FROM batch_claims
	WHERE send_id = $1 AND done = 0 ORDER BY batch`, sendID)
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

func ledgerOpenRowsOfBatch(ctx context.Context, q ledgerQuerier, sendID, batch, lo, hi int64) ([]int64, error) {
	if hi == 0 {
		lo, hi = 0, 1<<62 // the range is not known: the whole send
	}
	return ledgerColumn[int64](ctx, q, `SELECT d.subscriber_id FROM deliveries d
		WHERE d.send_id = $1 AND d.subscriber_id BETWEEN $2 AND $3 AND d.batch = $4 AND d.status IN ('queued','retry','sending')
		AND d.subscriber_id NOT IN (SELECT subscriber_id FROM sent_copies WHERE send_id = $1 AND batch = $4)
		ORDER BY d.subscriber_id`, sendID, lo, hi, batch)
}

func (l *Ledger) MarkBatchDone(ctx context.Context, sendID, batch int64) error {
	_, err := l.db.ExecContext(ctx, `UPDATE batch_claims SET done = 1, lease_until = 0
				WHERE send_id = $1 AND batch = $2 AND done = 0`, sendID, batch)
	return ledgerErr(err)
}
