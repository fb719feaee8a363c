package queue

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Delivered is one send as it concerns one subscriber: what a data export
// (GDPR Art. 15/20) lists as their send history.
type Delivered struct {
	SendID   int64     `json:"send_id"`
	Issue    string    `json:"issue"`
	List     string    `json:"list"`
	Variant  string    `json:"variant"`
	Status   string    `json:"status"` // queued, sending, retry, sent, skipped, failed, cancelled
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"` // of the last change
}

// DeliveryHistory lists every delivery to the subscriber, oldest send
// first. It needs only the store, not Redis, and migrates db first, so it
// works on a database no worker has used yet.
func DeliveryHistory(ctx context.Context, db *sql.DB, subscriberID int64) ([]Delivered, error) {
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	return deliveryHistory(ctx, db, subscriberID)
}

// DeliveryHistory lists every delivery to the subscriber, oldest send
// first, from the database the Service migrated when it started.
func (s *Service) DeliveryHistory(ctx context.Context, subscriberID int64) ([]Delivered, error) {
	return deliveryHistory(ctx, s.db, subscriberID)
}

// qHistory finds a subscriber's deliveries send by send, one primary key
// seek each (CROSS JOIN keeps sends the outer loop): deliveries have no
// index by subscriber (migration 0006). delivery_state is the row as it
// stands, with its batch_sent entry if the copy went on its first attempt
// (migration 0007).
const qHistory = `SELECT d.send_id, s.issue_slug, s.list_key, d.variant, d.status, d.attempts, d.updated_at
	FROM sends s CROSS JOIN delivery_state d ON d.send_id = s.id AND d.subscriber_id = ?
	ORDER BY s.id`

func deliveryHistory(ctx context.Context, db *sql.DB, subscriberID int64) ([]Delivered, error) {
	rows, err := db.QueryContext(ctx, qHistory, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("queue: delivery history of subscriber %d: %w", subscriberID, err)
	}
	defer rows.Close()
	out := []Delivered{}
	for rows.Next() {
		var (
			d  Delivered
			at int64
		)
		if err := rows.Scan(&d.SendID, &d.Issue, &d.List, &d.Variant, &d.Status, &d.Attempts, &at); err != nil {
			return nil, fmt.Errorf("queue: delivery history of subscriber %d: %w", subscriberID, err)
		}
		d.At = time.UnixMilli(at).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: delivery history of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}
