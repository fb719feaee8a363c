package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The run reads the store directly, read-only, for what the product
// records: a send's state, and each delivery as the delivery_state view
// gives it (docs/design/delivery.md). These queries are the only place
// the chaos suite knows the ledger's schema.

// delivery is one reader's row of the send as the ledger holds it.
type delivery struct {
	batch     int64
	status    string // queued, sending, retry, sent, skipped, failed, cancelled
	permanent bool
	reply     string
}

// open reports whether the ledger still has the copy to send.
func (d delivery) open() bool {
	return d.status == "queued" || d.status == "sending" || d.status == "retry"
}

var seqRE = regexp.MustCompile(`chaos queued as (\d+)`)

// seq returns the relay's sequence number of the copy the ledger records
// as accepted (from the relay's reply it keeps), or 0.
func (d delivery) seq() int {
	if d.status != "sent" {
		return 0
	}
	m := seqRE.FindStringSubmatch(d.reply)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ledger reads the store.
type ledger struct {
	db *sql.DB
}

// readers maps the imported readers' addresses (lower case) to their ids.
func (l ledger) readers(ctx context.Context) (map[string]int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT id, email FROM subscribers WHERE email IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("read the readers: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			return nil, err
		}
		out[strings.ToLower(email)] = id
	}
	return out, rows.Err()
}

// state returns the send's state.
func (l ledger) state(ctx context.Context, sendID int64) (string, error) {
	var st string
	err := l.db.QueryRowContext(ctx, `SELECT state FROM sends WHERE id = ?`, sendID).Scan(&st)
	if err != nil {
		return "", fmt.Errorf("read send %d: %w", sendID, err)
	}
	return st, nil
}

// deliveries returns every delivery of the send by reader id.
func (l ledger) deliveries(ctx context.Context, sendID int64) (map[int64]delivery, error) {
	rows, err := l.db.QueryContext(ctx,
		`SELECT subscriber_id, batch, status, permanent, reply FROM delivery_state WHERE send_id = ?`, sendID)
	if err != nil {
		return nil, fmt.Errorf("read the deliveries of send %d: %w", sendID, err)
	}
	defer rows.Close()
	out := map[int64]delivery{}
	for rows.Next() {
		var id int64
		var d delivery
		var perm int
		if err := rows.Scan(&id, &d.batch, &d.status, &perm, &d.reply); err != nil {
			return nil, err
		}
		d.permanent = perm != 0
		out[id] = d
	}
	return out, rows.Err()
}

// runningBatches returns the send's batches a run has claimed and not
// finished: their readers have been read for sending.
func (l ledger) runningBatches(ctx context.Context, sendID int64) (map[int64]bool, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT batch FROM batch_claims WHERE send_id = ? AND claim <> '' AND done = 0`, sendID)
	if err != nil {
		return nil, fmt.Errorf("read the running batches of send %d: %w", sendID, err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out[b] = true
	}
	return out, rows.Err()
}
