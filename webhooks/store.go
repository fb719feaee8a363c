package webhooks

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// This file holds all the SQL of the webhooks (SQLite). The Service uses
// it only through the Store interface (service.go), so another engine can
// implement it.

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is the goose version table of the webhooks' migrations.
const VersionTable = "webhooks_migrations"

// SQLStore is the Store on SQLite.
type SQLStore struct{ db *sql.DB }

// OpenSQLStore applies the webhooks' migrations to db and returns the store.
func OpenSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, sub, VersionTable); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return &SQLStore{db: db}, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

const endpointCols = `id, url, description, secret, events, enabled, created_at, updated_at`

func scanEndpoint(sc interface{ Scan(...any) error }) (Endpoint, error) {
	var e Endpoint
	var events string
	var created, updated int64
	if err := sc.Scan(&e.ID, &e.URL, &e.Description, &e.Secret, &events, &e.Enabled, &created, &updated); err != nil {
		return Endpoint{}, err
	}
	if events != "" {
		e.Events = strings.Split(events, ",")
	}
	e.CreatedAt, e.UpdatedAt = fromMS(created), fromMS(updated)
	return e, nil
}

// AddEndpoint stores a new endpoint and returns it with its id.
func (s *SQLStore) AddEndpoint(ctx context.Context, e Endpoint, now time.Time) (Endpoint, error) {
	err := s.db.QueryRowContext(ctx, `INSERT INTO webhook_endpoints (url, description, secret, events, enabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.URL, e.Description, e.Secret, strings.Join(e.Events, ","), e.Enabled,
		ms(now), ms(now)).Scan(&e.ID)
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhooks: add endpoint: %w", err)
	}
	e.CreatedAt, e.UpdatedAt = now.UTC(), now.UTC()
	return e, nil
}

// Endpoint returns endpoint id, or ErrNotFound.
func (s *SQLStore) Endpoint(ctx context.Context, id int64) (Endpoint, error) {
	e, err := scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, fmt.Errorf("webhooks: endpoint %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhooks: endpoint %d: %w", id, err)
	}
	return e, nil
}

// Endpoints lists every endpoint, oldest first.
func (s *SQLStore) Endpoints(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	defer rows.Close()
	var out []Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// SetEnabled turns endpoint id on or off.
func (s *SQLStore) SetEnabled(ctx context.Context, id int64, on bool, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_endpoints SET enabled = ?, updated_at = ? WHERE id = ?`, on, ms(now), id)
	if err != nil {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteEndpoint removes endpoint id with its deliveries and attempts.
func (s *SQLStore) DeleteEndpoint(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("webhooks: delete endpoint %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: endpoint %d: %w", id, ErrNotFound)
	}
	return nil
}

// AddEvent writes an event to the outbox.
func (s *SQLStore) AddEvent(ctx context.Context, msgID, typ string, body []byte, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_events (msg_id, type, body, created_at) VALUES (?, ?, ?, ?)`,
		msgID, typ, body, ms(now)); err != nil {
		return fmt.Errorf("webhooks: add event %s: %w", typ, err)
	}
	return nil
}

// Undispatched returns up to limit events whose deliveries are not queued
// yet, oldest first.
func (s *SQLStore) Undispatched(ctx context.Context, limit int) ([]OutboxEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, type FROM webhook_events WHERE dispatched_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		if err := rows.Scan(&e.ID, &e.Type); err != nil {
			return nil, fmt.Errorf("webhooks: outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FanOut records one delivery of event per enabled endpoint that takes its
// type (once: a second call adds none) and returns the ids of the event's
// deliveries still pending.
func (s *SQLStore) FanOut(ctx context.Context, e OutboxEvent, now time.Time) ([]int64, error) {
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
	rows.Close()
	for _, id := range targets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (event_id, endpoint_id, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (event_id, endpoint_id) DO NOTHING`, e.ID, id, ms(now)); err != nil {
			return nil, wrap(err)
		}
	}
	ids, err := sqlitedb.QueryColumn[int64](ctx, tx, `SELECT id FROM webhook_deliveries WHERE event_id = ? AND state = 'pending' ORDER BY id`, e.ID)
	if err != nil {
		return nil, wrap(err)
	}
	return ids, wrap2(tx.Commit(), wrap)
}

func wrap2(err error, wrap func(error) error) error {
	if err != nil {
		return wrap(err)
	}
	return nil
}

// MarkDispatched records that every delivery of event id is queued.
func (s *SQLStore) MarkDispatched(ctx context.Context, id int64, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_events SET dispatched_at = ? WHERE id = ?`, ms(now), id); err != nil {
		return fmt.Errorf("webhooks: event %d dispatched: %w", id, err)
	}
	return nil
}

// Job returns what one attempt of delivery id needs, or ErrNotFound.
func (s *SQLStore) Job(ctx context.Context, id int64) (Job, error) {
	var j Job
	err := s.db.QueryRowContext(ctx, `SELECT d.id, d.state, ev.msg_id, ev.type, ev.body, ep.id, ep.url, ep.secret, ep.enabled
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
		WHERE d.id = ?`, id).Scan(&j.DeliveryID, &j.State, &j.MsgID, &j.Type, &j.Body, &j.EndpointID, &j.URL, &j.Secret, &j.Enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("webhooks: delivery %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("webhooks: delivery %d: %w", id, err)
	}
	return j, nil
}

// RecordAttempt stores one attempt of delivery id and moves the delivery
// to state (pending while retries remain).
func (s *SQLStore) RecordAttempt(ctx context.Context, id int64, a Attempt, state string) error {
	wrap := func(err error) error { return fmt.Errorf("webhooks: record attempt of delivery %d: %w", id, err) }
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status, response, duration_ms) VALUES (?, ?, ?, ?, ?)`,
		id, ms(a.At), a.Status, a.Response, a.Duration.Milliseconds()); err != nil {
		return wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1, last_status = ?, updated_at = ?
		WHERE id = ?`, state, a.Status, ms(a.At), id); err != nil {
		return wrap(err)
	}
	return wrap2(tx.Commit(), wrap)
}

// Requeue moves delivery id back to pending (a replay).
func (s *SQLStore) Requeue(ctx context.Context, id int64, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', updated_at = ? WHERE id = ?`, ms(now), id)
	if err != nil {
		return fmt.Errorf("webhooks: replay delivery %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhooks: delivery %d: %w", id, ErrNotFound)
	}
	return nil
}

// Deliveries returns the newest deliveries to endpoint id, up to limit.
func (s *SQLStore) Deliveries(ctx context.Context, endpointID int64, limit int) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, d.endpoint_id, ev.msg_id, ev.type, d.state, d.attempts, d.last_status, ev.created_at, d.updated_at,
		coalesce((SELECT response FROM webhook_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1), '')
		FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
		WHERE d.endpoint_id = ? ORDER BY d.id DESC LIMIT ?`, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries of endpoint %d: %w", endpointID, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var created, updated int64
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.MsgID, &d.Type, &d.State, &d.Attempts, &d.LastStatus, &created, &updated, &d.LastResponse); err != nil {
			return nil, fmt.Errorf("webhooks: deliveries of endpoint %d: %w", endpointID, err)
		}
		d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Attempts returns the attempts of delivery id, oldest first.
func (s *SQLStore) Attempts(ctx context.Context, id int64) ([]Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, status, response, duration_ms FROM webhook_attempts WHERE delivery_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("webhooks: attempts of delivery %d: %w", id, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at, dur int64
		if err := rows.Scan(&at, &a.Status, &a.Response, &dur); err != nil {
			return nil, fmt.Errorf("webhooks: attempts of delivery %d: %w", id, err)
		}
		a.At, a.Duration = fromMS(at), time.Duration(dur)*time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}
