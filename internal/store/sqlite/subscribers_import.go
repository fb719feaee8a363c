package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tayori-news/tayori/internal/jsonb"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/subscribers"
)

// The import's set-based inserts take an array of rows in SQLite's binary
// JSON (internal/jsonb), built in Go: most of each row's array is encoded
// by PrepareImportRow in the import's reading goroutine, so the database
// goroutine only adds ids and array headers. Per-row statements spent most
// of their time in the driver (binding, stepping, resetting) rather than
// in SQLite; this way a batch of thousands of rows costs a handful of
// statements.
const (
	subInsertSubscribersJSON = `INSERT INTO subscribers
       (id, email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
       SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, ?2, ?2, ?2
         FROM jsonb_each(?1)`
	// The history entries and memberships of an import's new subscribers
	// are read back from their rows, by the batch's range of ids, rather
	// than parsed from JSON again.
	subInsertHistoryRange = `INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause)
       SELECT id, ?3, '', status, '', ?4 FROM subscribers WHERE id BETWEEN ?1 AND ?2`
	subJoinListRange = `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       SELECT ?1, id, 1, ?4, ?4 FROM subscribers
        WHERE id BETWEEN ?2 AND ?3 AND status NOT IN ('unsubscribed', 'complained') ON CONFLICT DO NOTHING`
	// The rows of one statement share method, form version and text hash
	// (a file usually has one of each), bound once instead of repeated in
	// every row's JSON.
	subInsertConsentsJSON = `INSERT INTO consents
       (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
       SELECT value ->> 0, value ->> 1, ?4, ?5, ?6, value ->> 2, value ->> 3, ?2, value ->> 4, ?3
         FROM jsonb_each(?1)`
	// subExistingAmong: ?2 is a JSONB array of address keys, rather than
	// thousands of parameters in chunks, each chunk a statement to compile.
	subExistingAmong = `SELECT s.id, s.email_key, s.name, s.status, s.regions, s.topics,
       COALESCE((SELECT group_concat(t.tag) FROM subscriber_tags t WHERE t.subscriber_id = s.id), ''),
       COALESCE((SELECT m.subscribed FROM memberships m WHERE m.subscriber_id = s.id AND m.list_id = ?1), -1)
  FROM subscribers s WHERE s.email_key IN (SELECT value FROM json_each(?2))`
)

// PrepareImportRow implements subscribers.Storage: the row's elements of
// the subscribers array after its id (email, key, name, status, regions,
// topics) and of the consents array (consented_at, ip, user_agent, prefs).
func (s *Subscribers) PrepareImportRow(r *subscribers.NewRow) {
	b := make([]byte, 0, 32+len(r.Email)+len(r.Key)+len(r.Name))
	b = subAppendTexts(b, r.Email, r.Key, r.Name, string(r.Status))
	b = jsonb.AppendInt(b, r.Regions)
	r.Encoded[0] = jsonb.AppendInt(b, r.Topics)
	if c := r.Consent; c != nil {
		b := make([]byte, 0, 64+len(c.IP)+len(c.UserAgent))
		r.Encoded[1] = subAppendTexts(b, subTime(c.At), c.IP, c.UserAgent, r.PrefsKey)
	}
}

// subAppendTexts appends each v as a JSONB text element.
func subAppendTexts(b []byte, vs ...string) []byte {
	for _, v := range vs {
		b = jsonb.AppendText(b, v)
	}
	return b
}

// subImport is an import's connection: one for the whole import, with a
// larger page cache (the address index is written in random order when
// the file is, and a cache that holds it turns page reads into memory
// work), whose commits do not checkpoint the WAL themselves: a
// checkpointer on another connection copies it into the database file
// while the next batch is written (see subCheckpointer). Both settings are
// restored at Close.
type subImport struct {
	conn    *sql.Conn
	ckpt    *subCheckpointer
	restore []string
}

// BeginImport implements subscribers.Storage.
func (s *Subscribers) BeginImport(ctx context.Context, c subscribers.ImportConfig) (subscribers.ImportSession, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	imp := &subImport{conn: conn}
	if c.CacheMiB > 0 {
		var prev int64
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&prev); err == nil {
			conn.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", c.CacheMiB*1024))
			imp.restore = append(imp.restore, fmt.Sprintf("PRAGMA cache_size = %d", prev))
		}
	}
	if !c.DryRun {
		var prev int64
		if err := conn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&prev); err != nil {
			imp.Close(ctx, false)
			return nil, err
		}
		log := c.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if imp.ckpt, err = subStartCheckpointer(ctx, s.db, log); err != nil {
			imp.Close(ctx, false)
			return nil, err
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
			imp.Close(ctx, false)
			return nil, err
		}
		imp.restore = append(imp.restore, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", prev))
	}
	return imp, nil
}

// Begin implements subscribers.ImportSession.
func (imp *subImport) Begin(ctx context.Context) (subscribers.ImportTx, error) {
	tx, err := imp.conn.BeginTx(ctx, nil) // immediate (the driver's _txlock)
	if err != nil {
		return nil, err
	}
	return &subImportTx{subQueries: subQueries{q: tx}, tx: tx, imp: imp}, nil
}

// Close implements subscribers.ImportSession: with flush, the last
// batches' WAL goes into the database file before the import returns, so
// that the next writer starts the WAL afresh.
func (imp *subImport) Close(ctx context.Context, flush bool) error {
	var err error
	if imp.ckpt != nil {
		if flush {
			err = imp.ckpt.sync()
		}
		imp.ckpt.stop()
	}
	for _, q := range imp.restore {
		imp.conn.ExecContext(context.WithoutCancel(ctx), q)
	}
	imp.conn.Close()
	return err
}

type subImportTx struct {
	subQueries
	tx  *sql.Tx
	imp *subImport
}

func (t *subImportTx) Commit() error {
	if err := t.tx.Commit(); err != nil {
		return err
	}
	if t.imp.ckpt != nil {
		t.imp.ckpt.committed()
	}
	return nil
}

func (t *subImportTx) Rollback() error { return t.tx.Rollback() }

// Existing implements subscribers.ImportTx in one query: the keys go to
// SQLite as one JSONB array.
func (t *subImportTx) Existing(ctx context.Context, listID int64, keys []string) (map[string]subscribers.ExistingRow, error) {
	out := make(map[string]subscribers.ExistingRow)
	if len(keys) == 0 {
		return out, nil
	}
	arr, at := jsonb.BeginArray(make([]byte, 0, 5+len(keys)*32))
	for _, k := range keys {
		arr = jsonb.AppendText(arr, k)
	}
	arr = jsonb.EndArray(arr, at)
	rows, err := t.tx.QueryContext(ctx, subExistingAmong, listID, arr)
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
	return sqlitedb.QueryColumn[[]byte](ctx, t.tx, `SELECT hash FROM suppressions`)
}

func (t *subImportTx) SuppressedAmong(ctx context.Context, hashes [][]byte) ([][]byte, error) {
	var out [][]byte
	for chunk := range slices.Chunk(hashes, 500) {
		found, err := sqlitedb.QueryColumn[[]byte](ctx, t.tx, `SELECT hash FROM suppressions WHERE hash IN `+subPlaceholders(len(chunk)), subArgs(chunk)...)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

// InsertNew implements subscribers.ImportTx: one JSONB array per table and
// one INSERT … SELECT FROM jsonb_each(?) each.
//
// Ids are assigned here, after the largest id in the table: the import
// holds the write lock (BEGIN IMMEDIATE) for the whole transaction, and
// SQLite would pick the same ids itself. So no row is ever lost to a
// concurrent writer.
func (t *subImportTx) InsertNew(ctx context.Context, b subscribers.NewBatch) ([]*subscribers.NewRow, error) {
	rows := b.Rows
	if len(rows) == 0 {
		return nil, nil
	}
	var maxID int64
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM subscribers`).Scan(&maxID); err != nil {
		return nil, err
	}
	enc, err := subEncodeNew(rows, maxID+1)
	if err != nil {
		return nil, err
	}
	now := subTime(b.At)
	if err := t.insertSubscribers(ctx, enc, b, now); err != nil {
		return nil, err
	}
	if err := t.insertConsents(ctx, enc, b.ListKey, now); err != nil {
		return nil, err
	}
	for i, r := range rows {
		if len(r.Custom) > 0 {
			if err := t.AddTags(ctx, enc.lo+int64(i), r.Custom); err != nil {
				return nil, fmt.Errorf("row %d: tag: %w", r.Line, err)
			}
		}
	}
	return nil, nil
}

// subNewRows is a batch of new subscribers encoded for InsertNew, with
// ids lo to hi in row order.
type subNewRows struct {
	lo, hi int64
	// subs is a JSONB array of [id, email, email_key, name, status,
	// regions, topics], one per row.
	subs []byte
	// cons holds, per (method, form version, text hash), a JSONB array of
	// [id, consented_at, ip, user_agent, prefs], one per row with a
	// consent, each starting at offset 0 of its slice and not yet ended
	// (jsonb.EndArray(cons[g], 0)); groups are its keys in first-seen
	// order.
	cons   map[subConsentGroup][]byte
	groups []subConsentGroup
}

// subConsentGroup is what the consents of one statement share.
type subConsentGroup struct{ method, form, sha string }

// subEncodeNew encodes rows, each prepared by PrepareImportRow, giving
// them ids from lo on in order. Only ids and array headers are added
// here; the rest of each row was encoded in the reading goroutine.
func subEncodeNew(rows []*subscribers.NewRow, lo int64) (*subNewRows, error) {
	enc := &subNewRows{lo: lo, hi: lo + int64(len(rows)) - 1, cons: map[subConsentGroup][]byte{}}
	subs, subsAt := jsonb.BeginArray(make([]byte, 0, len(rows)*120))
	var idBuf [24]byte
	for i, r := range rows {
		if r.Encoded[0] == nil {
			return nil, fmt.Errorf("row %d: not prepared for the import (PrepareImportRow)", r.Line)
		}
		idElem := jsonb.AppendInt(idBuf[:0], lo+int64(i))
		subs = jsonb.AppendArrayHeader(subs, len(idElem)+len(r.Encoded[0]))
		subs = append(append(subs, idElem...), r.Encoded[0]...)
		if c := r.Consent; c != nil {
			g := subConsentGroup{string(c.Method), c.FormVersion, c.TextSHA256}
			buf, ok := enc.cons[g]
			if !ok {
				enc.groups = append(enc.groups, g)
				buf, _ = jsonb.BeginArray(make([]byte, 0, len(rows)*64))
			}
			buf = jsonb.AppendArrayHeader(buf, len(idElem)+len(r.Encoded[1]))
			enc.cons[g] = append(append(buf, idElem...), r.Encoded[1]...)
		}
	}
	enc.subs = jsonb.EndArray(subs, subsAt)
	return enc, nil
}

// insertSubscribers inserts the encoded subscribers, then their first
// history entries and their memberships of b's list (not for those
// imported unsubscribed or complained), read back by their range of ids.
func (t *subImportTx) insertSubscribers(ctx context.Context, enc *subNewRows, b subscribers.NewBatch, now string) error {
	if _, err := t.tx.ExecContext(ctx, subInsertSubscribersJSON, enc.subs, now); err != nil {
		return fmt.Errorf("insert subscribers: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, subInsertHistoryRange, enc.lo, enc.hi, now, b.Cause); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if _, err := t.tx.ExecContext(ctx, subJoinListRange, b.ListID, enc.lo, enc.hi, now); err != nil {
		return fmt.Errorf("join list: %w", err)
	}
	return nil
}

// insertConsents inserts the encoded consent records, one statement per
// group, for the list listKey.
func (t *subImportTx) insertConsents(ctx context.Context, enc *subNewRows, listKey, now string) error {
	for _, g := range enc.groups {
		arr := jsonb.EndArray(enc.cons[g], 0)
		if _, err := t.tx.ExecContext(ctx, subInsertConsentsJSON, arr, listKey, now, g.method, g.form, g.sha); err != nil {
			return fmt.Errorf("consent: %w", err)
		}
	}
	return nil
}
