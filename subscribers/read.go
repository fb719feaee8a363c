package subscribers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tayori-news/tayori/audience"
)

type scanner interface{ Scan(dest ...any) error }

// scanSubscriber scans a row of subscriberCols.
func (s *Store) scanSubscriber(sc scanner) (Subscriber, error) {
	var (
		sub                        Subscriber
		status                     string
		regions, topics, seq, hold int64
		created, updated, erased   string
		lists, tags                string
	)
	if err := sc.Scan(&sub.ID, &sub.PublicID, &sub.Email, &sub.Name, &status, &regions, &topics,
		&seq, &hold, &created, &updated, &erased, &lists, &tags); err != nil {
		return Subscriber{}, err
	}
	sub.PublicID = s.pids.forRow(sub.ID, sub.PublicID)
	sub.Status = Status(status)
	sub.Prefs = prefsOf(regions, topics, splitList(tags))
	sub.Lists = splitList(lists)
	if sub.Lists == nil {
		sub.Lists = []string{}
	}
	sub.confirmSeq = uint64(seq)
	sub.LegalHold = hold != 0
	sub.CreatedAt, sub.UpdatedAt, sub.ErasedAt = parseTime(created), parseTime(updated), parseTime(erased)
	return sub, nil
}

func (s *Store) getOne(ctx context.Context, q dbtx, query string, arg any) (Subscriber, error) {
	sub, err := s.scanSubscriber(q.QueryRowContext(ctx, query, arg))
	if isNoRows(err) {
		return Subscriber{}, ErrNotFound
	}
	return sub, err
}

// Get returns the subscriber with internal id id, or ErrNotFound. Erased
// subscribers are returned (with ErasedAt set and no personal data) so that
// their old links still resolve.
func (s *Store) Get(ctx context.Context, id int64) (Subscriber, error) {
	sub, err := s.getOne(ctx, s.db, qGetByID, id)
	if err != nil {
		return Subscriber{}, fmt.Errorf("get subscriber %d: %w", id, err)
	}
	return sub, nil
}

// GetByPublicID returns the subscriber with the given public id, or
// ErrNotFound.
func (s *Store) GetByPublicID(ctx context.Context, publicID string) (Subscriber, error) {
	if publicID == "" || len(publicID) > 64 {
		return Subscriber{}, fmt.Errorf("get subscriber: %w", ErrNotFound)
	}
	sub, err := s.getByPublicID(ctx, s.db, publicID)
	if err != nil {
		return Subscriber{}, fmt.Errorf("get subscriber by public id: %w", err)
	}
	return sub, nil
}

// getByPublicID finds a subscriber by a derived public id or, for one
// created before migration 3, by the id it stored.
func (s *Store) getByPublicID(ctx context.Context, q dbtx, publicID string) (Subscriber, error) {
	if id, ok := s.pids.id(publicID); ok {
		return s.getOne(ctx, q, qGetByDerivedID, id)
	}
	return s.getOne(ctx, q, qGetByPublicID, publicID)
}

// FindByEmail normalises email and returns its subscriber, or ErrNotFound
// (a *FieldError if the address is malformed). Addresses are matched
// case-insensitively (one subscriber per mailbox), though the local part is
// stored and used as given.
func (s *Store) FindByEmail(ctx context.Context, email string) (Subscriber, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return Subscriber{}, err
	}
	sub, err := s.getOne(ctx, s.db, qGetByEmail, emailKey(e))
	if err != nil {
		return Subscriber{}, fmt.Errorf("find subscriber by email: %w", err)
	}
	return sub, nil
}

// maxInArgs bounds the ids of one IN (…) query.
const maxInArgs = 500

// GetMany returns the current state of the subscribers with the given ids
// (status, address, name, preferences, lists) keyed by id, in one query per
// 500 ids. The delivery worker calls it just before sending a batch so that
// an unsubscribe, bounce or erasure since the send started is honoured. Ids
// that do not exist are absent from the map.
func (s *Store) GetMany(ctx context.Context, ids []int64) (map[int64]Subscriber, error) {
	out := make(map[int64]Subscriber, len(ids))
	for chunk := range slices.Chunk(ids, maxInArgs) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.db.QueryContext(ctx, qGetMany+placeholders(len(chunk)), args...)
		if err != nil {
			return nil, fmt.Errorf("get subscribers: %w", err)
		}
		for rows.Next() {
			sub, err := s.scanSubscriber(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("get subscribers: %w", err)
			}
			out[sub.ID] = sub
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("get subscribers: %w", err)
		}
	}
	return out, nil
}

// ListQuery selects a page of subscribers for List.
type ListQuery struct {
	// Search matches a substring of the address or the name
	// (case-insensitive for ASCII). Empty matches everyone.
	Search string
	// Status keeps only subscribers with this status; empty keeps all.
	Status Status
	// List keeps only members of this list key; empty keeps all.
	List string
	// AfterID starts the page after this id (keyset paging: pass the last
	// id of the previous page).
	AfterID int64
	// Limit is the page size. Default 50, at most 1000.
	Limit int
	// IncludeErased also returns erased tombstones.
	IncludeErased bool
}

// List returns a page of subscribers ordered by id.
func (s *Store) List(ctx context.Context, q ListQuery) ([]Subscriber, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	var where []string
	var args []any
	where = append(where, "s.id > ?")
	args = append(args, q.AfterID)
	if !q.IncludeErased {
		where = append(where, "s.erased_at IS NULL")
	}
	if q.Search != "" {
		like := "%" + escapeLike(strings.ToLower(q.Search)) + "%"
		where = append(where, `(LOWER(s.email) LIKE ? ESCAPE '\' OR LOWER(s.name) LIKE ? ESCAPE '\')`)
		args = append(args, like, like)
	}
	if q.Status != "" {
		if _, err := ParseStatus(string(q.Status)); err != nil {
			return nil, err
		}
		where = append(where, "s.status = ?")
		args = append(args, string(q.Status))
	}
	if q.List != "" {
		where = append(where, `EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id
		   WHERE m.subscriber_id = s.id AND m.subscribed = 1 AND l.key = ?)`)
		args = append(args, q.List)
	}
	query := qListPage + " WHERE " + strings.Join(where, " AND ") + " ORDER BY s.id LIMIT ?"
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	defer rows.Close()
	var out []Subscriber
	for rows.Next() {
		sub, err := s.scanSubscriber(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscribers: %w", err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	return out, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// History returns a subscriber's status changes, oldest first.
func (s *Store) History(ctx context.Context, id int64) ([]StatusChange, error) {
	rows, err := s.db.QueryContext(ctx, qHistory, id)
	if err != nil {
		return nil, fmt.Errorf("status history: %w", err)
	}
	defer rows.Close()
	out := []StatusChange{}
	for rows.Next() {
		var at, from, to, list, cause string
		if err := rows.Scan(&at, &from, &to, &list, &cause); err != nil {
			return nil, fmt.Errorf("status history: %w", err)
		}
		out = append(out, StatusChange{At: parseTime(at), From: Status(from), To: Status(to), List: list, Cause: cause})
	}
	return out, rows.Err()
}

// Consents returns a subscriber's consent records, oldest first.
func (s *Store) Consents(ctx context.Context, id int64) ([]Consent, error) {
	rows, err := s.db.QueryContext(ctx, qConsents, id)
	if err != nil {
		return nil, fmt.Errorf("consents: %w", err)
	}
	defer rows.Close()
	out := []Consent{}
	for rows.Next() {
		var c Consent
		var at, method, lists, prefs, recorded string
		if err := rows.Scan(&c.ID, &at, &method, &c.FormVersion, &c.TextSHA256, &c.IP, &c.UserAgent, &lists, &prefs, &recorded); err != nil {
			return nil, fmt.Errorf("consents: %w", err)
		}
		c.At, c.RecordedAt, c.Method = parseTime(at), parseTime(recorded), Method(method)
		c.Lists = splitList(lists)
		c.Prefs = parsePrefsKey(prefs)
		out = append(out, c)
	}
	return out, rows.Err()
}

// parsePrefsKey reverses audience.Prefs.Key ("jp,us|policy,reports").
func parsePrefsKey(k string) audience.Prefs {
	regs, tops, _ := strings.Cut(k, "|")
	r, _ := audience.ParseRegions(regs)
	t, _ := audience.ParseTopics(tops)
	if r == nil {
		r = []audience.Region{}
	}
	if t == nil {
		t = []audience.Topic{}
	}
	return audience.Prefs{Regions: r, Topics: t}
}
