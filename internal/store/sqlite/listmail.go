package sqlite

// The ledger's outbox of list mails (queue.ListMailOutbox): the welcome
// mail, kept until the relay accepts it. Times are Unix milliseconds.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tayori-news/tayori/queue"
)

var _ queue.ListMailOutbox = (*Ledger)(nil)

// AddListMail implements queue.ListMailOutbox.
func (l *Ledger) AddListMail(ctx context.Context, r queue.ListMailRow) (bool, error) {
	res, err := l.db.ExecContext(ctx, `INSERT INTO list_mail (key, subscriber_id, list, payload, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`, r.Key, r.SubscriberID, r.List, r.Payload, r.At.UnixMilli(), r.At.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("list mail %q: %w", r.Key, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ListMailState implements queue.ListMailOutbox.
func (l *Ledger) ListMailState(ctx context.Context, key string) (string, bool, error) {
	var state string
	err := l.db.QueryRowContext(ctx, `SELECT state FROM list_mail WHERE key = ?`, key).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("list mail %q: %w", key, err)
	}
	return state, true, nil
}

// SetListMailState implements queue.ListMailOutbox.
func (l *Ledger) SetListMailState(ctx context.Context, key, state string, now time.Time) error {
	if _, err := l.db.ExecContext(ctx, `UPDATE list_mail SET state = ?, payload = NULL, updated_at = ? WHERE key = ? AND state = 'pending'`,
		state, now.UnixMilli(), key); err != nil {
		return fmt.Errorf("list mail %q %s: %w", key, state, err)
	}
	return nil
}

// PendingListMail implements queue.ListMailOutbox.
func (l *Ledger) PendingListMail(ctx context.Context, before time.Time, after string, limit int) ([]queue.ListMailRow, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT key, subscriber_id, list, payload, updated_at FROM list_mail
		WHERE state = 'pending' AND updated_at < ? AND key > ? ORDER BY key LIMIT ?`, before.UnixMilli(), after, limit)
	if err != nil {
		return nil, fmt.Errorf("pending list mail: %w", err)
	}
	defer rows.Close()
	var out []queue.ListMailRow
	for rows.Next() {
		var r queue.ListMailRow
		var at int64
		if err := rows.Scan(&r.Key, &r.SubscriberID, &r.List, &r.Payload, &at); err != nil {
			return nil, fmt.Errorf("pending list mail: %w", err)
		}
		r.At = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// TrimListMail implements queue.ListMailOutbox.
func (l *Ledger) TrimListMail(ctx context.Context, before time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, `DELETE FROM list_mail WHERE state <> 'pending' AND updated_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("trim list mail: %w", err)
	}
	return res.RowsAffected()
}
