package subscribers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tayori-news/tayori/audience"
)

func (s *Store) getByID(ctx context.Context, q Queries, id int64) (Subscriber, error) {
	r, err := q.SubscriberByID(ctx, id)
	if err != nil {
		return Subscriber{}, err
	}
	return s.subscriberOf(r), nil
}

func (s *Store) getByEmail(ctx context.Context, q Queries, email string) (Subscriber, error) {
	r, err := q.SubscriberByEmailKey(ctx, emailKey(email))
	if err != nil {
		return Subscriber{}, err
	}
	return s.subscriberOf(r), nil
}

// Get returns the subscriber with internal id id, or ErrNotFound. Erased
// subscribers are returned (with ErasedAt set and no personal data) so that
// their old links still resolve.
func (s *Store) Get(ctx context.Context, id int64) (Subscriber, error) {
	sub, err := s.getByID(ctx, s.st, id)
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
	sub, err := s.getByPublicID(ctx, s.st, publicID)
	if err != nil {
		return Subscriber{}, fmt.Errorf("get subscriber by public id: %w", err)
	}
	return sub, nil
}

// getByPublicID finds a subscriber by its public id.
func (s *Store) getByPublicID(ctx context.Context, q Queries, publicID string) (Subscriber, error) {
	id, ok := s.pids.id(publicID)
	if !ok {
		return Subscriber{}, ErrNotFound
	}
	return s.getByID(ctx, q, id)
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
	sub, err := s.getByEmail(ctx, s.st, e)
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
		recs, err := s.st.SubscribersByID(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("get subscribers: %w", err)
		}
		for _, r := range recs {
			out[r.ID] = s.subscriberOf(r)
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
	if q.Status != "" {
		if _, err := ParseStatus(string(q.Status)); err != nil {
			return nil, err
		}
	}
	recs, err := s.st.ListSubscribers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	var out []Subscriber
	for _, r := range recs {
		out = append(out, s.subscriberOf(r))
	}
	return out, nil
}

// History returns a subscriber's status changes, oldest first.
func (s *Store) History(ctx context.Context, id int64) ([]StatusChange, error) {
	out, err := s.st.History(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("status history: %w", err)
	}
	if out == nil {
		out = []StatusChange{}
	}
	return out, nil
}

// Consents returns a subscriber's consent records, oldest first.
func (s *Store) Consents(ctx context.Context, id int64) ([]Consent, error) {
	rows, err := s.st.Consents(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("consents: %w", err)
	}
	out := make([]Consent, 0, len(rows))
	for _, r := range rows {
		out = append(out, consentOf(r))
	}
	return out, nil
}

func consentOf(r ConsentRow) Consent {
	return Consent{ID: r.ID, At: r.At, Method: r.Method, FormVersion: r.FormVersion, TextSHA256: r.TextSHA256,
		IP: r.IP, UserAgent: r.Agent, Lists: splitList(r.Lists), Prefs: parsePrefsKey(r.Prefs), RecordedAt: r.RecordedAt}
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
