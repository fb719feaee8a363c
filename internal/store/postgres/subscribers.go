package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tayori-news/tayori/subscribers"
)

// Subscribers is subscribers.Storage on PostgreSQL.
type Subscribers struct {
	subQueries
	db *sql.DB
}

var _ subscribers.Storage = (*Subscribers)(nil)

// NewSubscribers returns the subscribers storage over db (driver "pgx",
// opened by store.Open), whose schema store.Migrate applied.
func NewSubscribers(db *sql.DB) *Subscribers {
	return &Subscribers{subQueries: subQueries{q: db}, db: db}
}

// subDBTX is what *sql.DB, *sql.Conn and *sql.Tx share.
type subDBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// subQueries runs subscribers.Queries on a database or in a transaction.
// In InTx's transactions (lock) a subscriber is read FOR UPDATE: the
// store reads a subscriber, decides, and writes (a confirm token's nonce,
// a status change), and under READ COMMITTED two such transactions must
// not both decide on the same old row, as SQLite's single writer ensures.
type subQueries struct {
	q    subDBTX
	lock bool
}

// InTx implements subscribers.Storage.
func (s *Subscribers) InTx(ctx context.Context, fn func(subscribers.Queries) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(subQueries{q: tx, lock: true}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// pgT is a time as stored: timestamptz, in UTC at microseconds.
func pgT(t time.Time) time.Time { return t.UTC() }

// pgTime reads a stored time in UTC (zero for NULL).
func pgTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func subNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

func subBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// subSplit splits a comma-separated aggregate, sorted.
func subSplit(s string) []string {
	if s == "" {
		return nil
	}
	out := strings.Split(s, ",")
	slices.Sort(out)
	return out
}

// subColumn reads one column of every row.
func subColumn[T any](ctx context.Context, q subDBTX, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const subCols = `SELECT s.id, COALESCE(s.email, ''), s.name, s.status, s.regions, s.topics,
       s.confirm_seq, s.legal_hold, s.created_at, s.updated_at, s.erased_at,
       COALESCE((SELECT string_agg(l.key, ',') FROM memberships m JOIN lists l ON l.id = m.list_id
                 WHERE m.subscriber_id = s.id AND m.subscribed = 1), ''),
       COALESCE((SELECT string_agg(t.tag, ',') FROM subscriber_tags t WHERE t.subscriber_id = s.id), '')
  FROM subscribers s`

type subScanner interface{ Scan(dest ...any) error }

func subScan(sc subScanner) (subscribers.Record, error) {
	var (
		r                        subscribers.Record
		status                   string
		hold                     int64
		created, updated, erased sql.NullTime
		lists, tags              string
	)
	if err := sc.Scan(&r.ID, &r.Email, &r.Name, &status, &r.Regions, &r.Topics,
		&r.ConfirmSeq, &hold, &created, &updated, &erased, &lists, &tags); err != nil {
		return subscribers.Record{}, err
	}
	r.Status = subscribers.Status(status)
	r.LegalHold = hold != 0
	r.CreatedAt, r.UpdatedAt, r.ErasedAt = pgTime(created), pgTime(updated), pgTime(erased)
	r.Lists, r.Tags = subSplit(lists), subSplit(tags)
	return r, nil
}

func (s subQueries) subOne(ctx context.Context, query string, arg any) (subscribers.Record, error) {
	r, err := subScan(s.q.QueryRowContext(ctx, query, arg))
	if subNoRows(err) {
		return r, subscribers.ErrNotFound
	}
	return r, err
}

func (s subQueries) subMany(ctx context.Context, query string, args ...any) ([]subscribers.Record, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.Record
	for rows.Next() {
		r, err := subScan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s subQueries) SubscriberByID(ctx context.Context, id int64) (subscribers.Record, error) {
	return s.subOne(ctx, subCols+` WHERE s.id = $1`+s.forUpdate(), id)
}

func (s subQueries) SubscriberByEmailKey(ctx context.Context, key string) (subscribers.Record, error) {
	return s.subOne(ctx, subCols+` WHERE s.email_key = $1`+s.forUpdate(), key)
}

func (s subQueries) forUpdate() string {
	if s.lock {
		return ` FOR UPDATE OF s`
	}
	return ""
}

func (s subQueries) SubscribersByID(ctx context.Context, ids []int64) ([]subscribers.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.subMany(ctx, subCols+` WHERE s.id = ANY($1)`, ids)
}

func subEscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (s subQueries) ListSubscribers(ctx context.Context, q subscribers.ListQuery) ([]subscribers.Record, error) {
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	where := []string{"s.id > " + arg(q.AfterID)}
	if !q.IncludeErased {
		where = append(where, "s.erased_at IS NULL")
	}
	if q.Search != "" {
		like := arg("%" + subEscapeLike(strings.ToLower(q.Search)) + "%")
		where = append(where, `(LOWER(s.email) LIKE `+like+` ESCAPE '\' OR LOWER(s.name) LIKE `+like+` ESCAPE '\')`)
	}
	if q.Status != "" {
		where = append(where, "s.status = "+arg(string(q.Status)))
	}
	if q.List != "" {
		where = append(where, `EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
		   WHERE m.subscriber_id = s.id AND m.subscribed = 1 AND l.key = `+arg(q.List)+`)`)
	}
	limit := arg(q.Limit)
	return s.subMany(ctx, subCols+" WHERE "+strings.Join(where, " AND ")+" ORDER BY s.id LIMIT "+limit, args...)
}

func (s subQueries) EmailOf(ctx context.Context, id int64) (string, error) {
	var email string
	err := s.q.QueryRowContext(ctx, `SELECT COALESCE(email, '') FROM subscribers WHERE id = $1`, id).Scan(&email)
	if subNoRows(err) {
		return "", subscribers.ErrNotFound
	}
	return email, err
}

func (s subQueries) InsertSubscriber(ctx context.Context, r subscribers.NewRecord) (int64, error) {
	now := pgT(r.At)
	var id int64
	err := s.q.QueryRowContext(ctx, `INSERT INTO subscribers
       (email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		r.Email, r.EmailKey, r.Name, string(r.Status), r.Regions, r.Topics, now, now, now).Scan(&id)
	return id, subUnique(err)
}

func (s subQueries) subExec(ctx context.Context, query string, args ...any) error {
	_, err := s.q.ExecContext(ctx, query, args...)
	return err
}

func (s subQueries) subExecN(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s subQueries) SetStatus(ctx context.Context, id int64, st subscribers.Status, at time.Time) error {
	now := pgT(at)
	return s.subExec(ctx, `UPDATE subscribers SET status = $1, status_at = $2, updated_at = $3 WHERE id = $4`, string(st), now, now, id)
}

func (s subQueries) SetName(ctx context.Context, id int64, name string, at time.Time) error {
	return s.subExec(ctx, `UPDATE subscribers SET name = $1, updated_at = $2 WHERE id = $3`, name, pgT(at), id)
}

func (s subQueries) SetPrefs(ctx context.Context, id int64, regions, topics int64, custom []string, at time.Time) error {
	if err := s.subExec(ctx, `UPDATE subscribers SET regions = $1, topics = $2, updated_at = $3 WHERE id = $4`, regions, topics, pgT(at), id); err != nil {
		return err
	}
	if err := s.subExec(ctx, `DELETE FROM subscriber_tags WHERE subscriber_id = $1`, id); err != nil {
		return err
	}
	return s.AddTags(ctx, id, custom)
}

func (s subQueries) AddTags(ctx context.Context, id int64, tags []string) error {
	for _, t := range tags {
		if err := s.subExec(ctx, `INSERT INTO subscriber_tags (subscriber_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, t); err != nil {
			return err
		}
	}
	return nil
}

func (s subQueries) AdvanceConfirm(ctx context.Context, id int64, at time.Time) error {
	return s.subExec(ctx, `UPDATE subscribers SET confirm_seq = confirm_seq + 1, updated_at = $1 WHERE id = $2`, pgT(at), id)
}

func (s subQueries) SetPendingChoice(ctx context.Context, id int64, choice string, at time.Time) error {
	return s.subExec(ctx, `UPDATE subscribers SET pending_choice = $1, updated_at = $2 WHERE id = $3`, choice, pgT(at), id)
}

func (s subQueries) PendingChoice(ctx context.Context, id int64) (string, error) {
	var c string
	err := s.q.QueryRowContext(ctx, `SELECT pending_choice FROM subscribers WHERE id = $1`, id).Scan(&c)
	if subNoRows(err) {
		return "", subscribers.ErrNotFound
	}
	return c, err
}

func (s subQueries) ListSkipsNothing(ctx context.Context, key string) (bool, error) {
	var skip int64
	err := s.q.QueryRowContext(ctx, `SELECT skip_nothing FROM lists WHERE key = $1`, key).Scan(&skip)
	if subNoRows(err) {
		return false, subscribers.ErrNotFound
	}
	return skip != 0, err
}

func (s subQueries) SetListSkipsNothing(ctx context.Context, key string, skip bool) error {
	n, err := s.subExecN(ctx, `UPDATE lists SET skip_nothing = $1 WHERE key = $2`, subBool(skip), key)
	if err == nil && n == 0 {
		return subscribers.ErrNotFound
	}
	return err
}

func (s subQueries) ListCountsClicks(ctx context.Context, key string) (bool, error) {
	var on int64
	err := s.q.QueryRowContext(ctx, `SELECT count_clicks FROM lists WHERE key = $1`, key).Scan(&on)
	if subNoRows(err) {
		return false, subscribers.ErrNotFound
	}
	return on != 0, err
}

func (s subQueries) SetListCountsClicks(ctx context.Context, key string, on bool) error {
	n, err := s.subExecN(ctx, `UPDATE lists SET count_clicks = $1 WHERE key = $2`, subBool(on), key)
	if err == nil && n == 0 {
		return subscribers.ErrNotFound
	}
	return err
}

func (s subQueries) SetLegalHold(ctx context.Context, id int64, hold bool, at time.Time) (bool, error) {
	n, err := s.subExecN(ctx, `UPDATE subscribers SET legal_hold = $1, updated_at = $2 WHERE id = $3`, subBool(hold), pgT(at), id)
	return n > 0, err
}

func (s subQueries) Touch(ctx context.Context, id int64, at time.Time) error {
	return s.subExec(ctx, `UPDATE subscribers SET updated_at = $1 WHERE id = $2`, pgT(at), id)
}

func (s subQueries) EraseData(ctx context.Context, id int64, st subscribers.Status, at time.Time) error {
	for _, q := range []string{
		`DELETE FROM subscriber_tags WHERE subscriber_id = $1`,
		`DELETE FROM memberships WHERE subscriber_id = $1`,
		`DELETE FROM consents WHERE subscriber_id = $1`,
		`UPDATE status_history SET cause = '' WHERE subscriber_id = $1`,
	} {
		if err := s.subExec(ctx, q, id); err != nil {
			return err
		}
	}
	now := pgT(at)
	return s.subExec(ctx, `UPDATE subscribers SET email = NULL, email_key = NULL, name = '', pending_choice = '', status = $1, regions = 0, topics = 0,
       legal_hold = 0, updated_at = $2, status_at = $3, erased_at = $4 WHERE id = $5`, string(st), now, now, now, id)
}

func (s subQueries) PurgeConsents(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.subExecN(ctx, `DELETE FROM consents WHERE subscriber_id IN (
       SELECT id FROM subscribers
        WHERE status IN ('unsubscribed', 'bounced', 'complained') AND legal_hold = 0 AND status_at < $1)`, pgT(cutoff))
}

func (s subQueries) PurgePending(ctx context.Context, cutoff time.Time) (int64, error) {
	return s.subExecN(ctx, `DELETE FROM subscribers WHERE status = 'pending' AND created_at < $1 AND legal_hold = 0
       AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.subscriber_id = subscribers.id)`, pgT(cutoff))
}

func (s subQueries) ListID(ctx context.Context, key string) (int64, error) {
	var id int64
	err := s.q.QueryRowContext(ctx, `SELECT id FROM lists WHERE key = $1`, key).Scan(&id)
	if subNoRows(err) {
		return 0, subscribers.ErrNotFound
	}
	return id, err
}

func (s subQueries) ListKey(ctx context.Context, id int64) (string, error) {
	var k string
	err := s.q.QueryRowContext(ctx, `SELECT key FROM lists WHERE id = $1`, id).Scan(&k)
	if subNoRows(err) {
		return "", subscribers.ErrNotFound
	}
	return k, err
}

func (s subQueries) InsertList(ctx context.Context, key, name string, at time.Time) (int64, error) {
	var id int64
	err := s.q.QueryRowContext(ctx, `INSERT INTO lists (key, name, created_at) VALUES ($1, $2, $3) RETURNING id`, key, name, pgT(at)).Scan(&id)
	return id, subUnique(err)
}

func (s subQueries) Lists(ctx context.Context) ([]subscribers.List, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT l.id, l.key, l.name, l.created_at,
       COALESCE(SUM(CASE WHEN m.subscribed = 1 AND s.status = 'active' THEN 1 ELSE 0 END), 0),
       COUNT(m.subscriber_id)
  FROM lists l
  LEFT JOIN memberships m ON m.list_id = l.id
  LEFT JOIN subscribers s ON s.id = m.subscriber_id
 GROUP BY l.id, l.key, l.name, l.created_at
 ORDER BY l.key COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.List
	for rows.Next() {
		var l subscribers.List
		var created sql.NullTime
		if err := rows.Scan(&l.ID, &l.Key, &l.Name, &created, &l.Active, &l.Total); err != nil {
			return nil, err
		}
		l.CreatedAt = pgTime(created)
		out = append(out, l)
	}
	return out, rows.Err()
}

func (s subQueries) JoinList(ctx context.Context, listID, id int64, at time.Time) (bool, error) {
	now := pgT(at)
	n, err := s.subExecN(ctx, `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       VALUES ($1, $2, 1, $3, $4)
       ON CONFLICT (list_id, subscriber_id) DO UPDATE SET subscribed = 1, updated_at = excluded.updated_at
       WHERE memberships.subscribed = 0`, listID, id, now, now)
	return n > 0, err
}

func (s subQueries) JoinListIfNew(ctx context.Context, listID, id int64, at time.Time) error {
	now := pgT(at)
	return s.subExec(ctx, `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
       VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING`, listID, id, now, now)
}

func (s subQueries) LeaveList(ctx context.Context, listID, id int64, at time.Time) (bool, error) {
	n, err := s.subExecN(ctx, `UPDATE memberships SET subscribed = 0, updated_at = $1 WHERE list_id = $2 AND subscriber_id = $3 AND subscribed = 1`,
		pgT(at), listID, id)
	return n > 0, err
}

func (s subQueries) LeaveAll(ctx context.Context, id int64, at time.Time) error {
	return s.subExec(ctx, `UPDATE memberships SET subscribed = 0, updated_at = $1 WHERE subscriber_id = $2 AND subscribed = 1`, pgT(at), id)
}

func (s subQueries) Memberships(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE subscriber_id = $1 AND subscribed = 1`, id).Scan(&n)
	return n, err
}

func (s subQueries) ConsentExists(ctx context.Context, id int64, c subscribers.ConsentRow) (bool, error) {
	var one int
	err := s.q.QueryRowContext(ctx, `SELECT 1 FROM consents WHERE subscriber_id = $1 AND consented_at = $2 AND method = $3
       AND form_version = $4 AND text_sha256 = $5 LIMIT 1`, id, pgT(c.At), string(c.Method), c.FormVersion, c.TextSHA256).Scan(&one)
	if subNoRows(err) {
		return false, nil
	}
	return err == nil, err
}

func (s subQueries) InsertConsent(ctx context.Context, id int64, c subscribers.ConsentRow) error {
	return s.subExec(ctx, `INSERT INTO consents
       (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, id, pgT(c.At), string(c.Method), c.FormVersion, c.TextSHA256,
		c.IP, c.Agent, c.Lists, c.Prefs, pgT(c.RecordedAt))
}

func (s subQueries) Consents(ctx context.Context, id int64) ([]subscribers.ConsentRow, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at
  FROM consents WHERE subscriber_id = $1 ORDER BY consented_at, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.ConsentRow
	for rows.Next() {
		var c subscribers.ConsentRow
		var at, recorded sql.NullTime
		var method string
		if err := rows.Scan(&c.ID, &at, &method, &c.FormVersion, &c.TextSHA256, &c.IP, &c.Agent, &c.Lists, &c.Prefs, &recorded); err != nil {
			return nil, err
		}
		c.At, c.RecordedAt, c.Method = pgTime(at), pgTime(recorded), subscribers.Method(method)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s subQueries) LatestConsents(ctx context.Context, ids []int64) (map[int64]subscribers.ConsentRow, error) {
	out := make(map[int64]subscribers.ConsentRow, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.q.QueryContext(ctx, `SELECT subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent
  FROM consents WHERE subscriber_id = ANY($1) ORDER BY subscriber_id, consented_at, id`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var c subscribers.ConsentRow
		var at sql.NullTime
		var method string
		if err := rows.Scan(&id, &at, &method, &c.FormVersion, &c.TextSHA256, &c.IP, &c.Agent); err != nil {
			return nil, err
		}
		c.At, c.Method = pgTime(at), subscribers.Method(method)
		out[id] = c // later rows are newer
	}
	return out, rows.Err()
}

func (s subQueries) InsertHistory(ctx context.Context, id int64, c subscribers.StatusChange) error {
	return s.subExec(ctx, `INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, pgT(c.At), string(c.From), string(c.To), c.List, c.Cause)
}

func (s subQueries) History(ctx context.Context, id int64) ([]subscribers.StatusChange, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT at, from_status, to_status, list, cause FROM status_history WHERE subscriber_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.StatusChange
	for rows.Next() {
		var at sql.NullTime
		var from, to, list, cause string
		if err := rows.Scan(&at, &from, &to, &list, &cause); err != nil {
			return nil, err
		}
		out = append(out, subscribers.StatusChange{At: pgTime(at), From: subscribers.Status(from), To: subscribers.Status(to), List: list, Cause: cause})
	}
	return out, rows.Err()
}

func (s subQueries) AnySuppressed(ctx context.Context, hashes [][]byte) (bool, error) {
	var any bool
	err := s.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions WHERE hash = ANY($1))`, hashes).Scan(&any)
	return any, err
}

func (s subQueries) Suppress(ctx context.Context, e subscribers.Suppression) error {
	return s.subExec(ctx, `INSERT INTO suppressions (hash, key_id, reason, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		e.Hash, e.KeyID, string(e.Reason), pgT(e.CreatedAt))
}

func (s subQueries) DeleteSuppression(ctx context.Context, hash []byte) error {
	return s.subExec(ctx, `DELETE FROM suppressions WHERE hash = $1`, hash)
}

func (s subQueries) SuppressionUnder(ctx context.Context, hash []byte, keyID string) (subscribers.Suppression, error) {
	var reason string
	var created sql.NullTime
	err := s.q.QueryRowContext(ctx, `SELECT reason, created_at FROM suppressions WHERE hash = $1 AND key_id = $2`, hash, keyID).Scan(&reason, &created)
	if subNoRows(err) {
		return subscribers.Suppression{}, subscribers.ErrNotFound
	}
	return subscribers.Suppression{Hash: hash, KeyID: keyID, Reason: subscribers.Reason(reason), CreatedAt: pgTime(created)}, err
}

func (s subQueries) SuppressionCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT key_id, count(*) FROM suppressions GROUP BY key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

func (s subQueries) SuppressedReaders(ctx context.Context) ([]string, error) {
	return subColumn[string](ctx, s.q, `SELECT email FROM subscribers WHERE email IS NOT NULL AND status IN ('bounced', 'complained')`)
}

func (s subQueries) InsertFeedback(ctx context.Context, e subscribers.FeedbackEvent) (bool, error) {
	n, err := s.subExecN(ctx, `INSERT INTO feedback_events
       (report_key, seq, received_at, kind, status, auth, domain, detail, subscriber_id, send_id, matched_by, action)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (report_key, seq) DO NOTHING`,
		e.ReportKey, e.Seq, pgT(e.ReceivedAt), e.Kind, e.Status, e.Auth, e.Domain, e.Detail,
		subNullID(e.SubscriberID), subNullID(e.SendID), e.MatchedBy, e.Action)
	return n > 0, err
}

func subNullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// ---- Storage's own methods ----

// PublicIDKey implements subscribers.Storage.
func (s *Subscribers) PublicIDKey(ctx context.Context, key []byte) ([]byte, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO store_keys (name, value) VALUES ('public_id', $1) ON CONFLICT DO NOTHING`, key); err != nil {
		return nil, err
	}
	var stored []byte
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM store_keys WHERE name = 'public_id'`).Scan(&stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// The change log's positions are transaction ids, not seq (see
// subscriber_changes in ../schema/postgres/00001_subscribers.sql): a
// mark m means "every change by a transaction with xid <= m is known".
// Only changes below a horizon are handed out: every transaction below
// it that could write this database's log has ended by the reading
// statement's snapshot. A change of a transaction still open, even one
// that took an earlier seq than a change already committed, is held back
// until it ends, so a reader that advanced its mark can never miss it.
//
// The horizon is the lowest xid the snapshot lists as in progress,
// leaving out transactions pg_stat_activity shows in another database
// (they never write this log), else the snapshot's xmax. A transaction
// whose database is not visible (another role's session without
// pg_read_all_stats, a prepared transaction, one that just ended) counts
// as in progress: it can delay the log's readers, never make them miss.
const subChangeHorizon = `(SELECT coalesce(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) x
      WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                         WHERE a.backend_xid::text::bigint = x::text::bigint % 4294967296
                           AND a.datname IS DISTINCT FROM current_database())),
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint))`

// ChangeMark implements subscribers.Storage: the newest change below the
// horizon (or the trim horizon, if newer), so the mark moves only when
// the log does.
func (s *Subscribers) ChangeMark(ctx context.Context) (int64, error) {
	var m int64
	err := s.db.QueryRowContext(ctx, `SELECT greatest(
    (SELECT coalesce(max(xid), 0) FROM subscriber_changes WHERE xid < h.x),
    (SELECT coalesce(max(xid), 0) FROM subscriber_changes_trimmed WHERE xid < h.x))
  FROM `+subChangeHorizon+` h(x)`).Scan(&m)
	return m, err
}

// ChangesAfter implements subscribers.Storage. A change's Seq is its
// transaction's xid (several changes may share one); first is one past
// the highest xid ever deleted from the log (0: none deleted), so that
// first <= mark+1 exactly when nothing after mark was trimmed. One
// statement reads both, from one snapshot.
func (s *Subscribers) ChangesAfter(ctx context.Context, mark int64, limit int) (int64, []subscribers.Change, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.xid, c.xid, c.subscriber_id
  FROM subscriber_changes_trimmed t
  LEFT JOIN LATERAL (SELECT xid, subscriber_id FROM subscriber_changes
                      WHERE xid > $1 AND xid < (SELECT x FROM `+subChangeHorizon+` h(x))
                      ORDER BY xid, seq LIMIT $2) c ON true`, mark, limit)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var first int64
	var out []subscribers.Change
	for rows.Next() {
		var trimmed int64
		var seq, id sql.NullInt64
		if err := rows.Scan(&trimmed, &seq, &id); err != nil {
			return 0, nil, err
		}
		if trimmed > 0 {
			first = trimmed + 1
		}
		if seq.Valid {
			out = append(out, subscribers.Change{Seq: seq.Int64, SubscriberID: id.Int64})
		}
	}
	return first, out, rows.Err()
}

// FeedbackSeen implements subscribers.Storage.
func (s *Subscribers) FeedbackSeen(ctx context.Context, reportKey string) (bool, error) {
	var seen bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM feedback_events WHERE report_key = $1)`, reportKey).Scan(&seen)
	return seen, err
}

// FeedbackEvents implements subscribers.Storage.
func (s *Subscribers) FeedbackEvents(ctx context.Context, q subscribers.FeedbackQuery) ([]subscribers.FeedbackEvent, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if !q.Since.IsZero() {
		where = append(where, "received_at >= "+arg(pgT(q.Since)))
	}
	if q.SubscriberID != 0 {
		where = append(where, "subscriber_id = "+arg(q.SubscriberID))
	}
	if len(q.Kinds) > 0 {
		where = append(where, "kind = ANY("+arg(q.Kinds)+")")
	}
	if q.BeforeID != 0 {
		where = append(where, "(received_at, id) < (SELECT received_at, id FROM feedback_events WHERE id = "+arg(q.BeforeID)+")")
	}
	query := `SELECT id, report_key, seq, received_at, kind, status, auth, domain, detail,
       COALESCE(subscriber_id, 0), COALESCE(send_id, 0), matched_by, action FROM feedback_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY received_at DESC, id DESC LIMIT " + arg(q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.FeedbackEvent
	for rows.Next() {
		var e subscribers.FeedbackEvent
		var at sql.NullTime
		if err := rows.Scan(&e.ID, &e.ReportKey, &e.Seq, &at, &e.Kind, &e.Status, &e.Auth, &e.Domain, &e.Detail,
			&e.SubscriberID, &e.SendID, &e.MatchedBy, &e.Action); err != nil {
			return nil, err
		}
		e.ReceivedAt = pgTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SoftBouncedSends implements subscribers.Storage.
func (s *Subscribers) SoftBouncedSends(ctx context.Context, subscriberID int64) ([]int64, error) {
	return subColumn[int64](ctx, s.db, `SELECT DISTINCT send_id FROM feedback_events
       WHERE subscriber_id = $1 AND send_id IS NOT NULL AND kind = 'soft' ORDER BY send_id`, subscriberID)
}

// FeedbackCounts implements subscribers.Storage.
func (s *Subscribers) FeedbackCounts(ctx context.Context, since, until time.Time) ([]subscribers.FeedbackCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, auth, matched_by <> '', count(*) FROM feedback_events
       WHERE received_at >= $1 AND received_at < $2 GROUP BY kind, auth, matched_by <> ''`, pgT(since), pgT(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []subscribers.FeedbackCount
	for rows.Next() {
		var c subscribers.FeedbackCount
		if err := rows.Scan(&c.Kind, &c.Auth, &c.Matched, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// subUnique maps a unique violation to subscribers.ErrExists.
func subUnique(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("%w (%s)", subscribers.ErrExists, pe.ConstraintName)
	}
	return err
}
