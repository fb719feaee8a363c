package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
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
    ON CONFLICT DO NOTHING
), cons AS (
    INSERT INTO consents (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
    SELECT id, consented_at, method, form_version, text_sha256, ip, user_agent, $4, prefs, $1
      FROM staged WHERE consented_at IS NOT NULL
), tags AS (
    INSERT INTO subscriber_tags (subscriber_id, tag)
    SELECT id, unnest(tags) FROM staged WHERE tags IS NOT NULL
)
SELECT st.ord FROM ` + subStageTable + ` st LEFT JOIN ins ON ins.email_key = st.email_key WHERE ins.id IS NULL`

// PrepareImportRow implements subscribers.Storage: COPY takes the row's
// fields as they are.
func (s *Subscribers) PrepareImportRow(*subscribers.NewRow) {}

// subImport is an import's connection, with its staging table.
type subImport struct {
	conn   *sql.Conn
	dryRun bool
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
	return &subImport{conn: conn, dryRun: c.DryRun}, nil
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
	// the merge's joins run as nested loops, quadratic in the batch.
	if _, err := t.tx.ExecContext(ctx, `ANALYZE `+subStageTable); err != nil {
		return nil, err
	}
	// The merge holds a batch's new rows (ins, staged) in memory: at the
	// default work_mem (4MB) they spill to a temporary file.
	if _, err := t.tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return nil, err
	}
	left, err := subColumn[int32](ctx, t.tx, subMerge, pgT(b.At), b.Cause, b.ListID, b.ListKey)
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
