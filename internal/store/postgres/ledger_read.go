package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/queue"
)

func (l *Ledger) Failures(ctx context.Context, sendID int64, limit int) ([]queue.Failure, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT subscriber_id, status, permanent, attempts, reply, updated_at
		FROM deliveries WHERE send_id = $1 AND status IN ('failed','retry')
		ORDER BY updated_at DESC LIMIT $2`, sendID, limit)
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

func (l *Ledger) History(ctx context.Context, subscriberID int64) ([]queue.Delivered, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT d.send_id, s.issue_slug, s.list_key, d.variant, d.status, d.attempts, d.updated_at
	FROM sends s JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = $1
	ORDER BY s.id`, subscriberID)
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

func (l *Ledger) LastAttempts(ctx context.Context, subscriberID int64, n int) ([]queue.Attempt, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT d.send_id, d.status, d.permanent, d.reply, d.updated_at
	FROM sends s JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = $1
	WHERE d.status IN ('sent','failed') ORDER BY s.id DESC LIMIT $2`, subscriberID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queue.Attempt
	for rows.Next() {
		var (
			a      queue.Attempt
			status string
			perm   int
			at     int64
		)
		if err := rows.Scan(&a.SendID, &status, &perm, &a.Reply, &at); err != nil {
			return nil, err
		}
		a.Sent, a.Permanent, a.At = status == "sent", perm != 0, time.UnixMilli(at).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// sendsIn lists the sends that may have delivered between since and
// until, oldest first.
func (l *Ledger) sendsIn(ctx context.Context, since, until time.Time) ([]int64, error) {
	return ledgerColumn[int64](ctx, l.db, `SELECT id FROM sends WHERE created_at < $1 AND (finished_at IS NULL OR finished_at >= $2) ORDER BY id`,
		until.UnixMilli(), since.UnixMilli())
}

func (l *Ledger) SentBetween(ctx context.Context, since, until time.Time) (int64, error) {
	ids, err := l.sendsIn(ctx, since, until)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	var n int64
	err = l.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries
			WHERE send_id = ANY($1) AND status = 'sent' AND updated_at >= $2 AND updated_at < $3)
			+ (SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = ANY($1) AND at >= $2 AND at < $3)`,
		ids, since.UnixMilli(), until.UnixMilli()).Scan(&n)
	return n, err
}

func (l *Ledger) Refusals(ctx context.Context, since, until time.Time, limit int) ([]queue.Refusal, error) {
	ids, err := l.sendsIn(ctx, since, until)
	if err != nil {
		return nil, err
	}
	var out []queue.Refusal
	for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
		rows, err := l.db.QueryContext(ctx, `SELECT subscriber_id, permanent, reply, updated_at
			FROM deliveries WHERE send_id = $1 AND status = 'failed' AND updated_at >= $2 AND updated_at < $3
			ORDER BY updated_at DESC LIMIT $4`,
			ids[i], since.UnixMilli(), until.UnixMilli(), limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("refusals of send %d: %w", ids[i], err)
		}
		for rows.Next() {
			r := queue.Refusal{SendID: ids[i]}
			var (
				perm int
				at   int64
			)
			if err := rows.Scan(&r.SubscriberID, &perm, &r.Reply, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("refusals of send %d: %w", ids[i], err)
			}
			r.Permanent, r.At = perm != 0, time.UnixMilli(at).UTC()
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

// Recount reads the kept counts and recounts every row in one snapshot
// (REPEATABLE READ).
func (l *Ledger) Recount(ctx context.Context, id int64) (kept, live queue.Counts, err error) {
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return kept, live, err
	}
	defer tx.Rollback()
	s, err := ledgerSend(ctx, tx, id, false)
	if err != nil {
		return kept, live, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT status, permanent, count(*) FROM deliveries
		WHERE send_id = $1 GROUP BY status, permanent`, id)
	if err != nil {
		return kept, live, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			perm   int
			n      int64
		)
		if err := rows.Scan(&status, &perm, &n); err != nil {
			return kept, live, err
		}
		ledgerTally(&live, status, perm != 0, n)
	}
	if err := rows.Err(); err != nil {
		return kept, live, err
	}
	var sent, raced int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0) FROM batch_sent WHERE send_id = $1`, id).Scan(&sent); err != nil {
		return kept, live, err
	}
	if sent > 0 && live.Cancelled > 0 {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sent_copies c
			JOIN deliveries d ON d.send_id = c.send_id AND d.subscriber_id = c.subscriber_id
			WHERE c.send_id = $1 AND d.status = 'cancelled'`, id).Scan(&raced); err != nil {
			return kept, live, err
		}
	}
	live.Sent += sent
	live.Queued -= sent - raced
	live.Cancelled -= raced
	live.AlreadyHad = s.Kept.HadIt
	return s.Kept.Counts(), live, nil
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
