package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tayori-news/tayori/subscribers"
)

// An import's new subscribers go to PostgreSQL with COPY (pgx CopyFrom)
// into a temporary staging table of the import's connection, then one
// set-based merge: a statement whose INSERT … SELECT … ON CONFLICT writes
// the subscribers and whose data-modifying CTEs write their history
// entries, memberships, consents and custom tags from what it inserted.
// A row whose address someone else added since the batch looked (ON
// CONFLICT DO NOTHING) is handed back, never lost silently.
//
// Half of the merge's time went to the foreign-key checks: one query per
// history entry, membership and consent (and tag), 80,000 per batch of
// 20,000, each checking a subscriber the same statement had just
// inserted or the one list the import writes. Where the import's role
// may set session_replication_role (a superuser, or on PostgreSQL 15 and
// later a role given GRANT SET ON PARAMETER session_replication_role),
// the merge runs with it set to replica, which skips those checks: the
// references hold by construction (ids the statement inserted, which no
// other transaction can see yet, and a list row the batch locks FOR KEY
// SHARE as the check would). Replica mode skips ordinary triggers too,
// so it is used only when the tables the merge writes have no trigger
// that fires on INSERT besides those foreign keys and the change log's
// tag trigger (which logs nothing for a new subscriber); a trigger added
// later makes imports take the checked path (subImportChecks, looked at
// when the import begins and again, under lock, before each merge).

const subStageTable = "tayori_import_stage"

// subStageColumns are the staging table's columns, in COPY order.
var subStageColumns = []string{"ord", "email", "email_key", "name", "status", "regions", "topics", "tags",
	"consented_at", "method", "form_version", "text_sha256", "ip", "user_agent", "prefs"}

const subCreateStage = `CREATE TEMPORARY TABLE IF NOT EXISTS ` + subStageTable + ` (
    ord          integer NOT NULL,
    email        text    NOT NULL,
    email_key    text    NOT NULL,
    name         text    NOT NULL,
    status       text    NOT NULL,
    regions      bigint  NOT NULL,
    topics       bigint  NOT NULL,
    tags         text[],
    consented_at timestamptz,
    method       text,
    form_version text,
    text_sha256  text,
    ip           text,
    user_agent   text,
    prefs        text
) ON COMMIT DELETE ROWS`

// subMerge: $1 the time, $2 the cause, $3 the list id, $4 the list key.
// It returns the staging rows it did not insert.
const subMerge = `WITH ins AS (
    INSERT INTO subscribers (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
    SELECT email, email_key, name, status, regions, topics, $1, $1, $1 FROM ` + subStageTable + ` ORDER BY ord
    ON CONFLICT (email_key) DO NOTHING
    RETURNING id, email_key, status
), staged AS (
    SELECT ins.id, st.consented_at, st.method, st.form_version, st.text_sha256, st.ip, st.user_agent, st.prefs, st.tags
      FROM ins JOIN ` + subStageTable + ` st ON st.email_key = ins.email_key
), hist AS (
    INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause)
    SELECT id, $1, '', status, '', $2 FROM ins
), memb AS (
    INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
    SELECT $3, id, 1, $1, $1 FROM ins WHERE status NOT IN ('unsubscribed', 'complained')
), cons AS (
    INSERT INTO consents (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
    SELECT id, consented_at, method, form_version, text_sha256, ip, user_agent, $4, prefs, $1
      FROM staged WHERE consented_at IS NOT NULL
), tags AS (
    INSERT INTO subscriber_tags (subscriber_id, tag)
    SELECT id, unnest(tags) FROM staged WHERE tags IS NOT NULL
)
` + subMergeLeft

// subMergeLeft ends subMerge: the staging rows it did not insert.
const subMergeLeft = `
SELECT st.ord FROM ` + subStageTable + ` st LEFT JOIN ins ON ins.email_key = st.email_key WHERE ins.id IS NULL`

// subMergePlain is subMerge without ON CONFLICT: a plain insert costs
// the address index a third less than a speculative one, and the batch
// looked its addresses up in the same transaction, so a conflict is a
// race that merge answers by running subMerge instead. Without ON
// CONFLICT every staging row is inserted (or the statement fails), so it
// does not look for the ones left out either.
var subMergePlain = strings.Replace(strings.Replace(subMerge, "\n    ON CONFLICT (email_key) DO NOTHING\n", "\n", 1),
	subMergeLeft, "\nSELECT 0::integer WHERE false", 1)

// PrepareImportRow implements subscribers.Storage: COPY takes the row's
// fields as they are.
func (s *Subscribers) PrepareImportRow(*subscribers.NewRow) {}

// subImportTables are the tables subMerge writes.
const subImportTables = `'{subscribers,status_history,memberships,consents,subscriber_tags}'::regclass[]`

// subImportChecks counts what would behave differently if subMerge ran
// with session_replication_role = replica: triggers on the tables it
// writes that fire on INSERT (tgtype bit 4) and are enabled in either
// mode, except the foreign keys whose references the merge guarantees
// and the change log's tag trigger; and rewrite rules on those tables.
const subImportChecks = `SELECT
  (SELECT count(*) FROM pg_trigger t LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint
    WHERE t.tgrelid = ANY(` + subImportTables + `) AND t.tgenabled IN ('O', 'R') AND t.tgtype & 4 <> 0
      AND NOT (t.tgrelid = 'subscriber_tags'::regclass AND t.tgname = 'subscriber_changes_tag_added' AND NOT t.tgisinternal)
      AND NOT (t.tgisinternal AND c.contype = 'f' AND c.conrelid = t.tgrelid AND (c.conrelid::regclass::text, c.confrelid::regclass::text) IN
           (('status_history', 'subscribers'), ('memberships', 'subscribers'), ('memberships', 'lists'),
            ('consents', 'subscribers'), ('subscriber_tags', 'subscribers'))))
  + (SELECT count(*) FROM pg_rewrite WHERE ev_class = ANY(` + subImportTables + `))`

// subImport is an import's connection, with its staging table.
type subImport struct {
	conn   *sql.Conn
	dryRun bool
	// unchecked: subMerge runs with session_replication_role = replica.
	unchecked bool
}

// uncheckedMerge reports whether the import may run its merges with
// session_replication_role = replica (see the top of this file): the
// role may set it, and nothing but the foreign keys it skips would be
// skipped with them.
func uncheckedMerge(ctx context.Context, conn *sql.Conn) (bool, error) {
	if _, err := conn.ExecContext(ctx, `SET session_replication_role = replica`); err != nil {
		return false, nil // not permitted: the checked merge
	}
	if _, err := conn.ExecContext(ctx, `RESET session_replication_role`); err != nil {
		return false, err
	}
	var n int
	if err := conn.QueryRowContext(ctx, subImportChecks).Scan(&n); err != nil {
		return false, fmt.Errorf("triggers of the imported tables: %w", err)
	}
	return n == 0, nil
}

// BeginImport implements subscribers.Storage.
func (s *Subscribers) BeginImport(ctx context.Context, c subscribers.ImportConfig) (subscribers.ImportSession, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, subCreateStage); err != nil {
		conn.Close()
		return nil, fmt.Errorf("staging table: %w", err)
	}
	unchecked, err := uncheckedMerge(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if c.Logger != nil {
		c.Logger.DebugContext(ctx, "import: merge", "foreign_key_checks", !unchecked)
	}
	return &subImport{conn: conn, dryRun: c.DryRun, unchecked: unchecked}, nil
}

// Begin implements subscribers.ImportSession.
func (imp *subImport) Begin(ctx context.Context) (subscribers.ImportTx, error) {
	tx, err := imp.conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &subImportTx{subQueries: subQueries{q: tx}, tx: tx, imp: imp}, nil
}

// Close implements subscribers.ImportSession.
func (imp *subImport) Close(ctx context.Context, flush bool) error {
	imp.conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+subStageTable)
	return imp.conn.Close()
}

type subImportTx struct {
	subQueries
	tx  *sql.Tx
	imp *subImport
}

func (t *subImportTx) Commit() error   { return t.tx.Commit() }
func (t *subImportTx) Rollback() error { return t.tx.Rollback() }

// Existing implements subscribers.ImportTx in one query over an array of keys.
func (t *subImportTx) Existing(ctx context.Context, listID int64, keys []string) (map[string]subscribers.ExistingRow, error) {
	out := make(map[string]subscribers.ExistingRow)
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT s.id, s.email_key, s.name, s.status, s.regions, s.topics,
       COALESCE((SELECT string_agg(t.tag, ',') FROM subscriber_tags t WHERE t.subscriber_id = s.id), ''),
       COALESCE((SELECT m.subscribed FROM memberships m WHERE m.subscriber_id = s.id AND m.list_id = $1), -1)
  FROM subscribers s WHERE s.email_key = ANY($2)`, listID, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e subscribers.ExistingRow
		var key, status, tags string
		if err := rows.Scan(&e.ID, &key, &e.Name, &status, &e.Regions, &e.Topics, &tags, &e.Membership); err != nil {
			return nil, err
		}
		e.Status, e.Tags = subscribers.Status(status), subSplit(tags)
		out[key] = e
	}
	return out, rows.Err()
}

func (t *subImportTx) SuppressionCount(ctx context.Context) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM suppressions`).Scan(&n)
	return n, err
}

func (t *subImportTx) AllSuppressions(ctx context.Context) ([][]byte, error) {
	return subColumn[[]byte](ctx, t.tx, `SELECT hash FROM suppressions`)
}

func (t *subImportTx) SuppressedAmong(ctx context.Context, hashes [][]byte) ([][]byte, error) {
	return subColumn[[]byte](ctx, t.tx, `SELECT hash FROM suppressions WHERE hash = ANY($1)`, hashes)
}

// InsertNew implements subscribers.ImportTx: COPY into the staging table,
// then subMerge.
func (t *subImportTx) InsertNew(ctx context.Context, b subscribers.NewBatch) ([]*subscribers.NewRow, error) {
	rows := b.Rows
	if len(rows) == 0 {
		return nil, nil
	}
	err := t.imp.conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("COPY needs the pgx driver, not %T", dc)
		}
		_, err := pc.Conn().CopyFrom(ctx, pgx.Identifier{subStageTable}, subStageColumns,
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				r := rows[i]
				v := []any{int32(i), r.Email, r.Key, r.Name, string(r.Status), r.Regions, r.Topics, nil,
					nil, nil, nil, nil, nil, nil, nil}
				if len(r.Custom) > 0 {
					v[7] = r.Custom
				}
				if c := r.Consent; c != nil {
					v[8], v[9], v[10], v[11], v[12], v[13], v[14] = c.At.UTC(), string(c.Method), c.FormVersion, c.TextSHA256, c.IP, c.UserAgent, r.PrefsKey
				}
				return v, nil
			}))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("copy into the staging table: %w", err)
	}
	// A temporary table has no statistics until analysed: without them
	// the merge's joins run as nested loops, quadratic in the batch. The
	// joins need its row count, not the spread of its values: a sample of
	// 300 rows (statistics target 1) gives that in a few milliseconds,
	// where the default target's 20,000 sorted in the collation of each
	// text column took 100–400 ms a batch.
	if _, err := t.tx.ExecContext(ctx, `SET LOCAL default_statistics_target = 1`); err != nil {
		return nil, err
	}
	if _, err := t.tx.ExecContext(ctx, `ANALYZE `+subStageTable); err != nil {
		return nil, err
	}
	// The merge holds a batch's new rows (ins, staged) in memory: at the
	// default work_mem (4MB) they spill to a temporary file.
	if _, err := t.tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return nil, err
	}
	left, err := t.merge(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	var lost []*subscribers.NewRow
	for _, i := range left {
		lost = append(lost, rows[i])
	}
	// ON COMMIT DELETE ROWS empties the table at commit; a dry run's
	// batches share one transaction, so empty it now.
	if t.imp.dryRun {
		if _, err := t.tx.ExecContext(ctx, `TRUNCATE `+subStageTable); err != nil {
			return nil, err
		}
	}
	return lost, nil
}

// merge runs subMerge, without its foreign-key checks when the import
// may (subImport.unchecked). It returns the staging rows not inserted.
func (t *subImportTx) merge(ctx context.Context, b subscribers.NewBatch) ([]int32, error) {
	args := []any{pgT(b.At), b.Cause, b.ListID, b.ListKey}
	if !t.imp.unchecked {
		return t.insert(ctx, args)
	}
	// The written tables in the mode the inserts take anyway, which
	// CREATE TRIGGER and CREATE RULE wait for; then no trigger or rule
	// can appear between this look and the merge.
	if _, err := t.tx.ExecContext(ctx, `LOCK TABLE subscribers, status_history, memberships, consents, subscriber_tags IN ROW EXCLUSIVE MODE`); err != nil {
		return nil, err
	}
	var n int
	if err := t.tx.QueryRowContext(ctx, subImportChecks).Scan(&n); err != nil {
		return nil, fmt.Errorf("triggers of the imported tables: %w", err)
	}
	if n > 0 {
		return t.insert(ctx, args) // one appeared since the import began
	}
	// The lock the memberships' check would take: the list cannot go
	// before this transaction ends.
	var one int
	if err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE id = $1 FOR KEY SHARE`, b.ListID).Scan(&one); err != nil {
		if subNoRows(err) {
			return nil, fmt.Errorf("list %d: %w", b.ListID, subscribers.ErrNotFound)
		}
		return nil, err
	}
	if _, err := t.tx.ExecContext(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return nil, err
	}
	left, err := t.insert(ctx, args)
	if err != nil {
		return nil, err
	}
	// The rest of the transaction (updates of known subscribers in a dry
	// run's later batches, suppressions) runs its triggers as usual.
	if _, err := t.tx.ExecContext(ctx, `SET LOCAL session_replication_role = origin`); err != nil {
		return nil, err
	}
	return left, nil
}

// insert runs subMergePlain in a savepoint and, if an address was taken
// since the batch looked (a unique violation of the address index), rolls
// it back and runs subMerge, which hands such rows back.
func (t *subImportTx) insert(ctx context.Context, args []any) ([]int32, error) {
	if _, err := t.tx.ExecContext(ctx, `SAVEPOINT tayori_merge`); err != nil {
		return nil, err
	}
	left, err := subColumn[int32](ctx, t.tx, subMergePlain, args...)
	if err == nil {
		_, err = t.tx.ExecContext(ctx, `RELEASE SAVEPOINT tayori_merge`)
		return left, err
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" || pe.ConstraintName != "subscribers_email_key_key" {
		return nil, err
	}
	if _, err := t.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT tayori_merge`); err != nil {
		return nil, err
	}
	return subColumn[int32](ctx, t.tx, subMerge, args...)
}
