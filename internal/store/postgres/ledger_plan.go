package postgres

import (
	"context"
	"database/sql"

	"github.com/tayori-news/tayori/queue"
)

// InsertDeliveries records a page of planning in one transaction. The
// send's row is locked first (the order every writer of a send follows);
// the common case (no row planned before) is one INSERT from arrays; if
// some rows existed (planning resumed after a crash) the page is written
// again row by row, so that batches hold exactly the new rows.
func (l *Ledger) InsertDeliveries(ctx context.Context, p queue.PlanPage) ([]int64, error) {
	ids, ok, err := l.insertPage(ctx, p, true)
	if err == nil && !ok {
		ids, _, err = l.insertPage(ctx, p, false)
	}
	return ids, err
}

func (l *Ledger) insertPage(ctx context.Context, p queue.PlanPage, set bool) ([]int64, bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, ledgerErr(err)
	}
	defer tx.Rollback()
	var claim string
	if err := tx.QueryRowContext(ctx, `SELECT plan_claim FROM sends WHERE id = $1 FOR NO KEY UPDATE`, p.SendID).Scan(&claim); err != nil {
		return nil, false, ledgerErr(err)
	}
	if p.PlanClaim != "" && claim != p.PlanClaim {
		return nil, false, queue.ErrLeaseLost
	}
	var ids []int64
	had := p.Had
	if set {
		var ok bool
		if ids, ok, err = ledgerInsertSet(ctx, tx, p); err != nil || !ok {
			return nil, false, ledgerErr(err)
		}
	} else {
		if ids, err = ledgerInsertEach(ctx, tx, p); err != nil {
			return nil, false, ledgerErr(err)
		}
		had = 0 // its first planning counted them
	}
	bs := int64(p.BatchSize)
	nb := (int64(len(ids)) + bs - 1) / bs
	if nb > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batch_claims (send_id, batch, claim, claimed_at)
			SELECT $1, b, '', 0 FROM generate_series($2::bigint, $3::bigint) AS b
			ON CONFLICT (send_id, batch) DO NOTHING`, p.SendID, p.FirstBatch, p.FirstBatch+nb-1); err != nil {
			return nil, false, ledgerErr(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sends SET plan_cursor = $1, batches = $2, updated_at = $3 WHERE id = $4`,
		p.Cursor, p.FirstBatch+nb, p.Now, p.SendID); err != nil {
		return nil, false, ledgerErr(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE send_counts SET planned = planned + $1, queued = queued + $1, had_it = had_it + $2
		WHERE send_id = $3`, len(ids), had, p.SendID); err != nil {
		return nil, false, ledgerErr(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, ledgerErr(err)
	}
	return ids, true, nil
}

// ledgerInsertSet inserts every row with one statement, assuming none
// exists; ok is false if some did (the transaction is then rolled back).
func ledgerInsertSet(ctx context.Context, tx *sql.Tx, p queue.PlanPage) ([]int64, bool, error) {
	if len(p.Rows) == 0 {
		return nil, true, nil
	}
	ids := make([]int64, len(p.Rows))
	variants := make([]string, len(p.Rows))
	for i, r := range p.Rows {
		ids[i], variants[i] = r.SubscriberID, r.Variant
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at)
		SELECT $1, r.id, $2 + (r.n - 1) / $3, r.variant, $4
		  FROM unnest($5::bigint[], $6::text[]) WITH ORDINALITY AS r(id, variant, n)
		ON CONFLICT DO NOTHING`, p.SendID, p.FirstBatch, p.BatchSize, p.Now, ids, variants)
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
