package queue

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
)

// goMigrations are the queue's migrations that SQL files alone cannot
// express. They are applied in version order with the files in
// migrations/.
func goMigrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(8, &goose.GoFunc{RunDB: sendLedgerUp}, &goose.GoFunc{RunDB: sendLedgerDown}),
	}
}

// Migration 8: the send's ledger.
//
//   - A send's figures are kept as its outcomes are recorded, in
//     send_counts (one small row per send), instead of being recounted
//     from every delivery row at each progress read: a read costs the
//     same at 1,000 readers as at 1,000,000. Triggers keep the row true:
//     a delivery row changing status moves one count to another, and a
//     batch_sent row adds its copies (and takes back those whose rows a
//     cancel had marked while they were in flight). Planning adds its new
//     rows itself, one UPDATE per page. Columns hold tallies of delivery
//     rows by status and of batch_sent copies; Send.Counts puts them
//     together as liveCounts, the full recount, would.
//   - A send can end failed, when it cannot be planned (the list is gone,
//     or planning failed every time it was tried). SQLite cannot change a
//     CHECK constraint in place: sends is rebuilt (as subscribers was in
//     its migration 3), with issue_json moved to the end of the row so that
//     reading a send's state and times no longer walks the issue's
//     overflow pages.
//   - sends.again marks a send of an issue to a list it went to before,
//     asked for on purpose: it leaves out the readers an earlier send gave
//     a copy (send_counts.had_it counts them).
//   - sends.request_key and request_hash make creating a send idempotent:
//     a request retried with the same key gets the send the first one
//     created; the same key with another request is refused.
//
// The old snapshot columns (planned, sent, skipped, failed_temp,
// failed_perm, written when a send ended) go; migrating down writes them
// again from send_counts, and makes failed sends cancelled.

// sendsTableV8 is the CREATE TABLE of sends from version 8, under name.
func sendsTableV8(name string) string {
	return `CREATE TABLE ` + name + ` (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uid           TEXT    NOT NULL UNIQUE,
    issue_slug    TEXT    NOT NULL,
    list_key      TEXT    NOT NULL,
    filter_json   TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('scheduled','planning','sending','done','paused','cancelled','failed')),
    paused_from   TEXT,
    scheduled_at  INTEGER NOT NULL,
    not_after     INTEGER,
    plan_cursor   INTEGER NOT NULL DEFAULT 0,
    plan_done     INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    pause_reason  TEXT    NOT NULL DEFAULT '',
    cancel_mark   INTEGER NOT NULL DEFAULT 0,
    again         INTEGER NOT NULL DEFAULT 0,
    request_key   TEXT    UNIQUE,
    request_hash  TEXT,
    issue_json    BLOB    NOT NULL
)`
}

// sendsTableV7 is the CREATE TABLE of sends of versions 1 to 7 (0001 and
// 0007's cancel_mark), under name.
func sendsTableV7(name string) string {
	return `CREATE TABLE ` + name + ` (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uid           TEXT    NOT NULL UNIQUE,
    issue_slug    TEXT    NOT NULL,
    issue_json    BLOB    NOT NULL,
    list_key      TEXT    NOT NULL,
    filter_json   TEXT,
    state         TEXT    NOT NULL CHECK (state IN ('scheduled','planning','sending','done','paused','cancelled')),
    paused_from   TEXT,
    scheduled_at  INTEGER NOT NULL,
    not_after     INTEGER,
    plan_cursor   INTEGER NOT NULL DEFAULT 0,
    plan_done     INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,
    planned       INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    failed_temp   INTEGER NOT NULL DEFAULT 0,
    failed_perm   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    pause_reason  TEXT    NOT NULL DEFAULT '',
    cancel_mark   INTEGER NOT NULL DEFAULT 0
)`
}

// sendsCommonColumns are the columns both shapes of sends have.
const sendsCommonColumns = `id, uid, issue_slug, issue_json, list_key, filter_json, state, paused_from, scheduled_at,
    not_after, plan_cursor, plan_done, batches, created_at, updated_at, started_at, finished_at, last_error,
    pause_reason, cancel_mark`

// ledgerSchema is what version 8 adds besides the rebuilt sends table.
var ledgerSchema = []string{
	`CREATE INDEX sends_state ON sends (state)`,
	// The earlier sends of an issue to a list, for Create.
	`CREATE INDEX sends_issue_list ON sends (issue_slug, list_key)`,
	`CREATE TABLE send_counts (
    send_id     INTEGER PRIMARY KEY REFERENCES sends (id) ON DELETE CASCADE,
    planned     INTEGER NOT NULL DEFAULT 0,  -- delivery rows
    had_it      INTEGER NOT NULL DEFAULT 0,  -- readers left out: an earlier send gave them the issue (again)
    queued      INTEGER NOT NULL DEFAULT 0,  -- rows queued or sending
    retry       INTEGER NOT NULL DEFAULT 0,  -- rows retry
    sent        INTEGER NOT NULL DEFAULT 0,  -- rows sent (copies sent after a retry)
    skipped     INTEGER NOT NULL DEFAULT 0,
    failed_temp INTEGER NOT NULL DEFAULT 0,
    failed_perm INTEGER NOT NULL DEFAULT 0,
    cancelled   INTEGER NOT NULL DEFAULT 0,  -- rows cancelled
    first_sent  INTEGER NOT NULL DEFAULT 0,  -- copies in batch_sent (their rows are queued, or cancelled:)
    raced       INTEGER NOT NULL DEFAULT 0   -- copies in batch_sent whose rows a cancel marked in flight
)`,
	`CREATE TRIGGER sends_counts_row AFTER INSERT ON sends BEGIN
    INSERT INTO send_counts (send_id) VALUES (new.id);
END`,
	// One count to another when a row changes status (or a failure its
	// kind). Rows are added by planning, which counts them itself.
	`CREATE TRIGGER deliveries_counts AFTER UPDATE OF status, permanent ON deliveries
WHEN old.status IS NOT new.status OR (new.status = 'failed' AND (old.permanent <> 0) IS NOT (new.permanent <> 0))
BEGIN
    UPDATE send_counts SET
        queued      = queued      + (new.status IN ('queued','sending')) - (old.status IN ('queued','sending')),
        retry       = retry       + (new.status = 'retry')     - (old.status = 'retry'),
        sent        = sent        + (new.status = 'sent')      - (old.status = 'sent'),
        skipped     = skipped     + (new.status = 'skipped')   - (old.status = 'skipped'),
        failed_temp = failed_temp + (new.status = 'failed' AND new.permanent = 0) - (old.status = 'failed' AND old.permanent = 0),
        failed_perm = failed_perm + (new.status = 'failed' AND new.permanent <> 0) - (old.status = 'failed' AND old.permanent <> 0),
        cancelled   = cancelled   + (new.status = 'cancelled') - (old.status = 'cancelled')
     WHERE send_id = new.send_id;
END`,
	// A batch_sent row's copies are sent. Those whose rows are cancelled
	// were in flight when the editor cancelled (a cancel leaves the rows of
	// copies already in batch_sent alone, and nothing else changes a row
	// once its copy is there): they are looked for, a key seek each, only
	// in a send with cancelled rows.
	`CREATE TRIGGER batch_sent_counts AFTER INSERT ON batch_sent BEGIN
    UPDATE send_counts SET
        first_sent = first_sent + new.n,
        raced = raced + CASE WHEN cancelled > 0 THEN
            (SELECT count(*) FROM json_each(new.sent) j CROSS JOIN deliveries d
              ON d.send_id = new.send_id AND d.subscriber_id = j.value ->> 0 WHERE d.status = 'cancelled')
            ELSE 0 END
     WHERE send_id = new.send_id;
END`,
	`INSERT INTO send_counts (send_id) SELECT id FROM sends`,
	qRecountRows,
	qRecountSent,
}

// qRecountRows and qRecountSent set send_counts from the delivery rows
// and batch_sent, for every send (?1 NULL) or one: what migration 8 does
// for the sends it finds, and what tests use to check the kept counts.
const (
	qRecountRows = `UPDATE send_counts SET (planned, queued, retry, sent, skipped, failed_temp, failed_perm, cancelled) =
    (SELECT count(*), ifnull(sum(status IN ('queued','sending')), 0), ifnull(sum(status = 'retry'), 0),
            ifnull(sum(status = 'sent'), 0), ifnull(sum(status = 'skipped'), 0),
            ifnull(sum(status = 'failed' AND permanent = 0), 0), ifnull(sum(status = 'failed' AND permanent <> 0), 0),
            ifnull(sum(status = 'cancelled'), 0)
       FROM deliveries d WHERE d.send_id = send_counts.send_id)
 WHERE ?1 IS NULL OR send_id = ?1`
	qRecountSent = `UPDATE send_counts SET
    first_sent = (SELECT ifnull(sum(n), 0) FROM batch_sent bs WHERE bs.send_id = send_counts.send_id),
    raced = CASE WHEN cancelled = 0 THEN 0 ELSE
        (SELECT count(*) FROM batch_sent bs CROSS JOIN json_each(bs.sent) j CROSS JOIN deliveries d
          ON d.send_id = bs.send_id AND d.subscriber_id = j.value ->> 0
         WHERE bs.send_id = send_counts.send_id AND d.status = 'cancelled') END
 WHERE ?1 IS NULL OR send_id = ?1`
)

func sendLedgerUp(ctx context.Context, db *sql.DB) error {
	return rebuildSends(ctx, db, true, func(ctx context.Context, tx *sql.Tx) error {
		stmts := []string{
			sendsTableV8("sends_v8"),
			`INSERT INTO sends_v8 (` + sendsCommonColumns + `) SELECT ` + sendsCommonColumns + ` FROM sends`,
			`DROP TABLE sends`,
			`ALTER TABLE sends_v8 RENAME TO sends`,
		}
		for _, q := range append(stmts, ledgerSchema...) {
			var args []any
			if strings.Contains(q, "?1") {
				args = []any{nil}
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("%.60s…: %w", q, err)
			}
		}
		return nil
	})
}

func sendLedgerDown(ctx context.Context, db *sql.DB) error {
	return rebuildSends(ctx, db, false, func(ctx context.Context, tx *sql.Tx) error {
		for _, q := range []string{
			sendsTableV7("sends_v7"),
			`INSERT INTO sends_v7 (` + sendsCommonColumns + `, planned, sent, skipped, failed_temp, failed_perm)
			 SELECT ` + strings.ReplaceAll(sendsCommonColumns, "state,", "CASE state WHEN 'failed' THEN 'cancelled' ELSE state END,") + `,
			        ifnull(c.planned, 0), ifnull(c.sent + c.first_sent, 0), ifnull(c.skipped, 0), ifnull(c.failed_temp, 0), ifnull(c.failed_perm, 0)
			   FROM sends LEFT JOIN send_counts c ON c.send_id = sends.id`,
			`DROP TRIGGER IF EXISTS deliveries_counts`,
			`DROP TRIGGER IF EXISTS batch_sent_counts`,
			`DROP TABLE send_counts`,
			`DROP TABLE sends`,
			`ALTER TABLE sends_v7 RENAME TO sends`,
			`CREATE INDEX sends_state ON sends (state)`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%.60s…: %w", q, err)
			}
		}
		return nil
	})
}

// rebuildSends runs rebuild in an immediate transaction on one connection
// with foreign keys off (or dropping sends would cascade into every
// delivery), keeps the AUTOINCREMENT high-water mark, checks the foreign
// keys before committing and turns them back on. It does nothing if the
// table already has (up) or lacks (down) the failed state, which makes the
// migration safe to run twice (two processes migrating a file at once).
func rebuildSends(ctx context.Context, db *sql.DB, up bool, rebuild func(context.Context, *sql.Tx) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
			err = ferr
		}
	}()
	tx, err := conn.BeginTx(ctx, nil) // immediate (the driver's _txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var schema string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'sends'`).Scan(&schema); err != nil {
		return fmt.Errorf("queue: migration 8: sends: %w", err)
	}
	if strings.Contains(schema, "'failed'") == up {
		return nil // done already
	}
	var seq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM sqlite_sequence WHERE name = 'sends'`).Scan(&seq); err != nil {
		return fmt.Errorf("queue: migration 8: %w", err)
	}
	if err := rebuild(ctx, tx); err != nil {
		return fmt.Errorf("queue: migration 8: %w", err)
	}
	if seq.Valid {
		// The copy's own mark is its highest id; a send deleted at the end
		// had a higher one, which no new send may take.
		res, err := tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'sends'`, seq.Int64)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				_, err = tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('sends', ?)`, seq.Int64)
			}
		}
		if err != nil {
			return fmt.Errorf("queue: migration 8: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	bad := rows.Next()
	rows.Close()
	if bad {
		return fmt.Errorf("queue: migration 8: rebuilding sends broke a foreign key")
	}
	return tx.Commit()
}
