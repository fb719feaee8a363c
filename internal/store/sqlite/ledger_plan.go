package sqlite

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/tayori-news/tayori/internal/jsonw"
	"github.com/tayori-news/tayori/queue"
)

// InsertDeliveries records a page of planning in one transaction.
//
// The common case (none of the rows planned before) is one set-based
// INSERT … SELECT FROM jsonb_each(?) for the whole page; if some rows
// existed already (planning resumed after a crash) the page is written
// again row by row, so that batches hold exactly the new rows.
func (l *Ledger) InsertDeliveries(ctx context.Context, p queue.PlanPage) ([]int64, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, ledgerErr(err)
	}
	defer tx.Rollback()
	if err := ledgerCheckPlanClaim(ctx, tx, p); err != nil {
		return nil, err
	}
	ids, ok, err := ledgerInsertSet(ctx, tx, p)
	if err != nil {
		return nil, ledgerErr(err)
	}
	had := p.Had
	if !ok {
		tx.Rollback()
		if tx, err = l.db.BeginTx(ctx, nil); err != nil {
			return nil, ledgerErr(err)
		}
		defer tx.Rollback()
		if err := ledgerCheckPlanClaim(ctx, tx, p); err != nil {
			return nil, err
		}
		if ids, err = ledgerInsertEach(ctx, tx, p); err != nil {
			return nil, ledgerErr(err)
		}
		had = 0 // its first planning counted them
	}
	// Each batch has its claims row from the start: the send is done when
	// all of them are (a re-plan leaves existing rows as they are).
	bs := int64(p.BatchSize)
	nb := (int64(len(ids)) + bs - 1) / bs
	for b := p.FirstBatch; b < p.FirstBatch+nb; b++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batch_claims (send_id, batch, claim, claimed_at) VALUES (?, ?, '', 0)
			ON CONFLICT (send_id, batch) DO NOTHING`, p.SendID, b); err != nil {
			return nil, ledgerErr(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE send_counts SET planned = planned + ?1, queued = queued + ?1, had_it = had_it + ?2
		WHERE send_id = ?3`, len(ids), had, p.SendID); err != nil {
		return nil, ledgerErr(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sends SET plan_cursor = ?, batches = ?, updated_at = ? WHERE id = ?`,
		p.Cursor, p.FirstBatch+nb, p.Now, p.SendID); err != nil {
		return nil, ledgerErr(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, ledgerErr(err)
	}
	return ids, nil
}

// ledgerCheckPlanClaim fails with queue.ErrLeaseLost when the page is
// planned under a lease that is no longer the send's.
func ledgerCheckPlanClaim(ctx context.Context, tx *sql.Tx, p queue.PlanPage) error {
	if p.PlanClaim == "" {
		return nil
	}
	var claim string
	if err := tx.QueryRowContext(ctx, `SELECT plan_claim FROM sends WHERE id = ?`, p.SendID).Scan(&claim); err != nil {
		return ledgerErr(err)
	}
	if claim != p.PlanClaim {
		return queue.ErrLeaseLost
	}
	return nil
}

// ledgerInsertSet inserts every row with one statement, assuming none
// exists; ok is false (and the transaction must be rolled back) if some did.
func ledgerInsertSet(ctx context.Context, tx *sql.Tx, p queue.PlanPage) ([]int64, bool, error) {
	if len(p.Rows) == 0 {
		return nil, true, nil
	}
	ids := make([]int64, len(p.Rows))
	buf := make([]byte, 0, len(p.Rows)*32)
	buf = append(buf, '[')
	for i, r := range p.Rows {
		ids[i] = r.SubscriberID
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		buf = strconv.AppendInt(buf, r.SubscriberID, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, p.FirstBatch+int64(i/p.BatchSize), 10)
		buf = append(buf, ',')
		buf = jsonw.AppendString(buf, r.Variant)
		buf = append(buf, ']')
	}
	buf = append(buf, ']')
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		SELECT ?1, value ->> 0, value ->> 1, value ->> 2, ?3 FROM jsonb_each(?2) WHERE true ON CONFLICT DO NOTHING`,
		p.SendID, string(buf), p.Now)
	if err != nil {
		return nil, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(p.Rows)) {
		return nil, false, err
	}
	return ids, true, nil
}

// ledgerInsertEach inserts row by row and returns only the new rows.
func ledgerInsertEach(ctx context.Context, tx *sql.Tx, p queue.PlanPage) ([]int64, error) {
	st, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
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
