package postgres

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"

	"github.com/tayori-news/tayori/queue"
)

// InsertDeliveries records a page of planning in one transaction. The
// send's row is locked first (the order every writer of a send follows);
// the common case (no row planned before) is one plain INSERT from arrays,
// pipelined with the page's other writes; if some rows existed (planning
// resumed after a crash: the INSERT fails on the primary key and the
// transaction is rolled back) the page is written again row by row, so
// that batches hold exactly the new rows.
func (l *Ledger) InsertDeliveries(ctx context.Context, p queue.PlanPage) ([]int64, error) {
	ids, ok, err := l.insertSet(ctx, p)
	if err == nil && !ok {
		ids, _, err = l.insertPage(ctx, p)
	}
	return ids, err
}

const (
	ledgerQPlanLock   = `SELECT plan_claim FROM sends WHERE id = $1 FOR NO KEY UPDATE`
	ledgerQPlanClaims = `INSERT INTO batch_claims (send_id, batch, claim, claimed_at)
			SELECT $1, b, '', 0 FROM generate_series($2::bigint, $3::bigint) AS b
			ON CONFLICT (send_id, batch) DO NOTHING`
	ledgerQPlanCursor = `UPDATE sends SET plan_cursor = $1, batches = $2, updated_at = $3 WHERE id = $4`
	ledgerQPlanCounts = `UPDATE send_counts SET planned = planned + $1, queued = queued + $1, had_it = had_it + $2
		WHERE send_id = $3`
)

// insertSet writes the page assuming none of its rows exists: four round
// trips (BEGIN, the send's lock and claim, the page's writes, COMMIT)
// whatever the page's size. ok is false if some row existed.
func (l *Ledger) insertSet(ctx context.Context, p queue.PlanPage) (ids []int64, ok bool, err error) {
	ids = make([]int64, len(p.Rows))
	variants := make([]string, len(p.Rows))
	for i, r := range p.Rows {
		ids[i], variants[i] = r.SubscriberID, r.Variant
	}
	err = l.withConn(ctx, func(c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return ledgerErr(err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		var claim string
		if err := tx.QueryRow(ctx, ledgerQPlanLock, p.SendID).Scan(&claim); err != nil {
			return ledgerErr(err)
		}
		if p.PlanClaim != "" && claim != p.PlanClaim {
			return queue.ErrLeaseLost
		}
		var q pgx.Batch
		if len(ids) > 0 {
			// A plain INSERT: ON CONFLICT's speculative insertion
			// costs a third more, and a conflict is the rare resumed
			// page, which the row-by-row path handles.
			q.Queue(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
				SELECT $1, r.id, $2 + (r.n - 1) / $3, r.variant, $4
				  FROM unnest($5::bigint[], $6::text[]) WITH ORDINALITY AS r(id, variant, n)`,
				p.SendID, p.FirstBatch, p.BatchSize, p.Now, ids, variants)
		}
		bs := int64(p.BatchSize)
		nb := (int64(len(ids)) + bs - 1) / bs
		if nb > 0 {
			q.Queue(ledgerQPlanClaims, p.SendID, p.FirstBatch, p.FirstBatch+nb-1)
		}
		q.Queue(ledgerQPlanCursor, p.Cursor, p.FirstBatch+nb, p.Now, p.SendID)
		q.Queue(ledgerQPlanCounts, len(ids), p.Had, p.SendID)
		if err := tx.SendBatch(ctx, &q).Close(); err != nil {
			if ledgerCode(err) == ledgerUniqueViolation {
				return nil // planned before: ok stays false
			}
			return ledgerErr(err)
		}
		if err := tx.Commit(ctx); err != nil {
			return ledgerErr(err)
		}
		ok = true
		return nil
	})
	if err != nil || !ok {
		return nil, false, err
	}
	return ids, true, nil
}

// insertPage writes the page row by row, for a page some of whose rows
// were planned before.
func (l *Ledger) insertPage(ctx context.Context, p queue.PlanPage) ([]int64, bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, ledgerErr(err)
	}
	defer tx.Rollback()
	var claim string
	if err := tx.QueryRowContext(ctx, ledgerQPlanLock, p.SendID).Scan(&claim); err != nil {
		return nil, false, ledgerErr(err)
	}
	if p.PlanClaim != "" && claim != p.PlanClaim {
		return nil, false, queue.ErrLeaseLost
	}
	ids, err := ledgerInsertEach(ctx, tx, p)
	if err != nil {
		return nil, false, ledgerErr(err)
	}
	bs := int64(p.BatchSize)
	nb := (int64(len(ids)) + bs - 1) / bs
	if nb > 0 {
		if _, err := tx.ExecContext(ctx, ledgerQPlanClaims, p.SendID, p.FirstBatch, p.FirstBatch+nb-1); err != nil {
			return nil, false, ledgerErr(err)
		}
	}
	if _, err := tx.ExecContext(ctx, ledgerQPlanCursor, p.Cursor, p.FirstBatch+nb, p.Now, p.SendID); err != nil {
		return nil, false, ledgerErr(err)
	}
	// had_it: the page's first planning counted them.
	if _, err := tx.ExecContext(ctx, ledgerQPlanCounts, len(ids), 0, p.SendID); err != nil {
		return nil, false, ledgerErr(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, ledgerErr(err)
	}
	return ids, true, nil
}

// ledgerInsertEach inserts row by row and returns only the new rows.
func ledgerInsertEach(ctx context.Context, tx *sql.Tx, p queue.PlanPage) ([]int64, error) {
	st, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var ids []int64
	for _, r := range p.Rows {
		res, err := st.ExecContext(ctx, p.SendID, r.SubscriberID, p.FirstBatch+int64(len(ids)/p.BatchSize), r.Variant, p.Now)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // planned before
		}
		ids = append(ids, r.SubscriberID)
	}
	return ids, nil
}
