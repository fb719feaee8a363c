package web

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeliveryFailures returns a Deps.Failures that reads a send's failed
// deliveries, with the relay's last reply, from the queue's deliveries
// table in db. It is a stopgap until package queue exposes the same list
// itself; it only reads.
func DeliveryFailures(db *sql.DB) func(ctx context.Context, sendID int64, limit int) ([]Failure, error) {
	return func(ctx context.Context, sendID int64, limit int) ([]Failure, error) {
		rows, err := db.QueryContext(ctx, `SELECT subscriber_id, permanent, attempts, reply, updated_at
			FROM deliveries WHERE send_id = ? AND (status = 'failed' OR status = 'retry')
			ORDER BY updated_at DESC LIMIT ?`, sendID, limit)
		if err != nil {
			return nil, fmt.Errorf("failures of send %d: %w", sendID, err)
		}
		defer rows.Close()
		var out []Failure
		for rows.Next() {
			var f Failure
			var perm int
			var at int64
			if err := rows.Scan(&f.SubscriberID, &perm, &f.Attempts, &f.Reply, &at); err != nil {
				return nil, fmt.Errorf("failures of send %d: %w", sendID, err)
			}
			f.Permanent = perm != 0
			f.At = time.UnixMilli(at).UTC()
			out = append(out, f)
		}
		return out, rows.Err()
	}
}
