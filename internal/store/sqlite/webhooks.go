package sqlite

// The webhooks' storage on SQLite (webhooks.Store): endpoints, the outbox
// of events, deliveries and their attempts. Times are Unix milliseconds.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/webhooks"
)

// Webhooks keeps the webhooks in a SQLite database whose schema
// store.Migrate applied. It is safe for concurrent use.
type Webhooks struct{ db *sql.DB }

// NewWebhooks returns the webhooks' storage in db.
func NewWebhooks(db *sql.DB) *Webhooks { return &Webhooks{db: db} }

var _ webhooks.Store = (*Webhooks)(nil)

func hookMS(t time.Time) int64 { return t.UnixMilli() }

func hookTime(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

const hookEndpointCols = `id, url, description, secret, events, enabled, created_at, updated_at`

func hookScanEndpoint(sc interface{ Scan(...any) error }) (webhooks.Endpoint, error) {
	var e webhooks.Endpoint
	var events string
	var created, updated int64
	if err := sc.Scan(&e.ID, &e.URL, &e.Description, &e.Secret, &events, &e.Enabled, &created, &updated); err != nil {
		return webhooks.Endpoint{}, err
	}
	if events != "" {
		e.Events = strings.Split(events, ",")
	}
	e.CreatedAt, e.UpdatedAt = hookTime(created), hookTime(updated)
	return e, nil
}

// AddEndpoint implements webhooks.Store.
func (s *Webhooks) AddEndpoint(ctx context.Context, e webhooks.Endpoint, now time.Time) (webhooks.Endpoint, error) {
	err := s.db.QueryRowContext(ctx, `INSERT INTO webhook_endpoints (url, description, secret, events, enabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.URL, e.Description, e.Secret, strings.Join(e.Events, ","), e.Enabled,
		hookMS(now), hookMS(now)).Scan(&e.ID)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhooks: add endpoint: %w", err)
	}
	e.CreatedAt, e.UpdatedAt = now.UTC(), now.UTC()
	return e, nil
}

// Endpoint implements webhooks.Store.
func (s *Webhooks) Endpoint(ctx context.Context, id int64) (webhooks.Endpoint, error) {
	e, err := hookScanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+hookEndpointCols+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return webhooks.Endpoint{}, fmt.Errorf("webhooks: endpoint %d: %w", id, webhooks.ErrNotFound)
	}
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("webhooks: endpoint %d: %w", id, err)
	}
	return e, nil
}

// Endpoints implements webhooks.Store.
func (s *Webhooks) Endpoints(ctx context.Context) ([]webhooks.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hookEndpointCols+` FROM webhook_endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []webhooks.Endpoint
	for rows.Next() {
		e, err := hookScanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetEnabled implements webhooks.Store.
func (s *Webhooks) SetEnabled(ctx context.Context, id int64, on bool, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = ?, updated_at = ? WHERE id = ?`, on, hookMS(now), id)
	if err != nil {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, webhooks.ErrNotFound)
	}
	return nil
}

// DeleteEndpoint implements webhooks.Store.
func (s *Webhooks) DeleteEndpoint(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("webhooks: delete endpoint %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, webhooks.ErrNotFound)
	}
	return nil
}

// AddEvent implements webhooks.Store.
func (s *Webhooks) AddEvent(ctx context.Context, msgID, typ string, body []byte, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_events (msg_id, type, body, created_at) VALUES (?, ?, ?, ?)`,
		msgID, typ, body, hookMS(now)); err != nil {
		return fmt.Errorf("webhooks: add event %s: %w", typ, err)
	}
	return nil
}

// Undispatched implements webhooks.Store.
func (s *Webhooks) Undispatched(ctx context.Context, limit int) ([]webhooks.OutboxEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, type FROM webhook_events WHERE dispatched_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: outbox: %w", err)
	}
	defer rows.Close()
	var out []webhooks.OutboxEvent
	for rows.Next() {
		var e webhooks.OutboxEvent
		if err := rows.Scan(&e.ID, &e.Type); err != nil {
			return nil, fmt.Errorf("webhooks: outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FanOut implements webhooks.Store.
func (s *Webhooks) FanOut(ctx context.Context, e webhooks.OutboxEvent, now time.Time) ([]int64, error) {
	wrap := func(err error) error { return fmt.Errorf("webhooks: fan out event %d: %w", e.ID, err) }
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhook_endpoints WHERE enabled = 1`)
	if err != nil {
		return nil, wrap(err)
	}
	var targets []int64
	for rows.Next() {
		var id int64
		var events string
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return nil, wrap(err)
		}
		if events == "" || slices.Contains(strings.Split(events, ","), e.Type) {
			targets = append(targets, id)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, wrap(err)
	}
	for _, id := range targets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (event_id, endpoint_id) DO NOTHING`, e.ID, id, hookMS(now)); err != nil {
			return nil, wrap(err)
		}
	}
	ids, err := sqlitedb.QueryColumn[int64](ctx, tx, `SELECT id FROM webhook_deliveries WHERE event_id = ? AND state = 'pending' ORDER BY id`, e.ID)
	if err != nil {
		return nil, wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err)
	}
	return ids, nil
}

// MarkDispatched implements webhooks.Store.
func (s *Webhooks) MarkDispatched(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_events SET dispatched_at = ? WHERE id = ?`, hookMS(now), id); err != nil {
		return fmt.Errorf("webhooks: event %d dispatched: %w", id, err)
	}
	return nil
}

// Job implements webhooks.Store.
func (s *Webhooks) Job(ctx context.Context, id int64) (webhooks.Job, error) {
	var j webhooks.Job
	err := s.db.QueryRowContext(ctx, `SELECT d.id, d.state, ev.msg_id, ev.type, ev.body, ep.id, ep.url, ep.secret, ep.enabled
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
		WHERE d.id = ?`, id).Scan(&j.DeliveryID, &j.State, &j.MsgID, &j.Type, &j.Body, &j.EndpointID, &j.URL, &j.Secret, &j.Enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return webhooks.Job{}, fmt.Errorf("webhooks: delivery %d: %w", id, webhooks.ErrNotFound)
	}
	if err != nil {
		return webhooks.Job{}, fmt.Errorf("webhooks: delivery %d: %w", id, err)
	}
	return j, nil
}

// RecordAttempt implements webhooks.Store. A delivery that no longer
// exists (its endpoint deleted meanwhile) is webhooks.ErrNotFound.
func (s *Webhooks) RecordAttempt(ctx context.Context, id int64, a webhooks.Attempt, state string) error {
	wrap := func(err error) error { return fmt.Errorf("webhooks: record attempt of delivery %d: %w", id, err) }
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, updated_at = ?
		WHERE id = ?`, state, a.Status, hookMS(a.At), id)
	if err != nil {
		return wrap(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wrap(webhooks.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status, response, duration_ms) VALUES (?, ?, ?, ?, ?)`,
		id, hookMS(a.At), a.Status, a.Response, a.Duration.Milliseconds()); err != nil {
		return wrap(err)
	}
	if err := tx.Commit(); err != nil {
		return wrap(err)
	}
	return nil
}

// Requeue implements webhooks.Store.
func (s *Webhooks) Requeue(ctx context.Context, id int64, taskID string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', task_id = ?, updated_at = ? WHERE id = ?`,
		taskID, hookMS(now), id)
	if err != nil {
		return fmt.Errorf("webhooks: replay delivery %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: delivery %d: %w", id, webhooks.ErrNotFound)
	}
	return nil
}

// Pending implements webhooks.Store.
func (s *Webhooks) Pending(ctx context.Context, before time.Time, afterID int64, limit int) ([]webhooks.PendingDelivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.task_id FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
		WHERE d.state = 'pending' AND d.updated_at < ? AND d.id > ? AND ep.enabled ORDER BY d.id LIMIT ?`, hookMS(before), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: pending deliveries: %w", err)
	}
	defer rows.Close()
	var out []webhooks.PendingDelivery
	for rows.Next() {
		var d webhooks.PendingDelivery
		if err := rows.Scan(&d.ID, &d.TaskID); err != nil {
			return nil, fmt.Errorf("webhooks: pending deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Trim implements webhooks.Store.
func (s *Webhooks) Trim(ctx context.Context, before time.Time) (deliveries, events int64, err error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE state = 'delivered' AND updated_at < ?`, hookMS(before))
	if err != nil {
		return 0, 0, fmt.Errorf("webhooks: trim the delivery log: %w", err)
	}
	deliveries, _ = res.RowsAffected()
	res, err = s.db.ExecContext(ctx, `DELETE FROM webhook_events WHERE dispatched_at IS NOT NULL AND created_at < ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`, hookMS(before))
	if err != nil {
		return deliveries, 0, fmt.Errorf("webhooks: trim the outbox: %w", err)
	}
	events, _ = res.RowsAffected()
	return deliveries, events, nil
}

// Deliveries implements webhooks.Store.
func (s *Webhooks) Deliveries(ctx context.Context, endpointID int64, limit int) ([]webhooks.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.endpoint_id, ev.msg_id, ev.type, d.state, d.attempts, d.last_status, ev.created_at, d.updated_at,
		coalesce((SELECT response FROM webhook_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1), '')
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
		WHERE d.endpoint_id = ? ORDER BY d.id DESC LIMIT ?`, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries of endpoint %d: %w", endpointID, err)
	}
	defer rows.Close()
	var out []webhooks.Delivery
	for rows.Next() {
		var d webhooks.Delivery
		var created, updated int64
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.MsgID, &d.Type, &d.State, &d.Attempts, &d.LastStatus, &created, &updated, &d.LastResponse); err != nil {
			return nil, fmt.Errorf("webhooks: deliveries of endpoint %d: %w", endpointID, err)
		}
		d.CreatedAt, d.UpdatedAt = hookTime(created), hookTime(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Attempts implements webhooks.Store.
func (s *Webhooks) Attempts(ctx context.Context, id int64) ([]webhooks.Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, status, response, duration_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("webhooks: attempts of delivery %d: %w", id, err)
	}
	defer rows.Close()
	var out []webhooks.Attempt
	for rows.Next() {
		var a webhooks.Attempt
		var at, dur int64
		if err := rows.Scan(&at, &a.Status, &a.Response, &dur); err != nil {
			return nil, fmt.Errorf("webhooks: attempts of delivery %d: %w", id, err)
		}
		a.At, a.Duration = hookTime(at), time.Duration(dur)*time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}
