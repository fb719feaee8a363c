package subscribers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/subscribers/token"
)

// Options configure a Store. Zero values are replaced by the documented
// defaults.
type Options struct {
	// Keyring signs and verifies tokens and keys the suppression hashes
	// (with a key derived from each secret). Required.
	Keyring *token.Keyring
	// Now is the clock. Default: the keyring's clock.
	Now func() time.Time
	// Logger receives debug and info records (with subscriber ids, never
	// addresses). Default: discard.
	Logger *slog.Logger
	// ConfirmTTL is how long a confirm token stays valid. Default 48h.
	ConfirmTTL time.Duration
	// ConsentRetention is how long consent records are kept after a
	// subscriber stops receiving mail (unsubscribed, bounced, complained)
	// before PurgeConsents may delete them. Default 31 days (特定電子メール法
	// 施行規則 Art. 4: one month after the last send).
	ConsentRetention time.Duration
	// BatchSize is the default batch of Recipients and Import. Default 1000.
	BatchSize int
}

// Store keeps subscribers, lists, consent records, status history and the
// suppression list in a Storage (SQLite or PostgreSQL). It is safe for
// concurrent use; other packages define the small interfaces they need
// over it.
type Store struct {
	st        Storage
	pids      publicIDs
	ring      *token.Keyring
	supp      []suppKey
	now       func() time.Time
	log       *slog.Logger
	opts      Options
	defListID int64
}

// Open returns a Store over st, whose schema store.Migrate has applied
// (Open does not migrate). It creates the public-id key on first use.
func Open(ctx context.Context, st Storage, opts Options) (*Store, error) {
	if st == nil {
		return nil, errors.New("subscribers: no Storage")
	}
	if opts.Keyring == nil {
		return nil, errors.New("subscribers: Options.Keyring is required")
	}
	if opts.Now == nil {
		opts.Now = opts.Keyring.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ConfirmTTL <= 0 {
		opts.ConfirmTTL = 48 * time.Hour
	}
	if opts.ConsentRetention <= 0 {
		opts.ConsentRetention = 31 * 24 * time.Hour
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	pids, err := initPublicIDKey(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("subscribers: %w", err)
	}
	s := &Store{st: st, pids: pids, ring: opts.Keyring, now: opts.Now, log: opts.Logger, opts: opts}
	s.supp = suppressionKeys(opts.Keyring)
	if s.defListID, err = st.ListID(ctx, DefaultList); err != nil {
		return nil, fmt.Errorf("subscribers: default list %q (is the schema migrated? store.Migrate): %w", DefaultList, err)
	}
	return s, nil
}

// Keyring returns the store's token keyring.
func (s *Store) Keyring() *token.Keyring { return s.ring }

// inTx runs fn in a write transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(q Queries) error) error {
	return s.st.InTx(ctx, fn)
}

// nowUTC is the clock's time in UTC at the microsecond both engines keep.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ---- preference bitmasks ----

// maskOf returns the region and standard-topic bitmasks of p and its
// custom tags.
func maskOf(p audience.Prefs) (regions, topics int64, custom []string) {
	for _, r := range p.Regions {
		if i := slices.Index(audience.Regions, r); i >= 0 {
			regions |= 1 << i
		}
	}
	for _, t := range p.Topics {
		if i := slices.Index(audience.StandardTopics, t); i >= 0 {
			topics |= 1 << i
		} else if t != "" && !slices.Contains(custom, string(t)) {
			custom = append(custom, string(t))
		}
	}
	slices.Sort(custom)
	return regions, topics, custom
}

// prefsCache holds the Prefs of every (regions, standard topics) mask pair,
// so streaming recipients allocates nothing for preferences.
var prefsCache = func() [][]audience.Prefs {
	nr, nt := 1<<len(audience.Regions), 1<<len(audience.StandardTopics)
	c := make([][]audience.Prefs, nr)
	for r := range nr {
		c[r] = make([]audience.Prefs, nt)
		for t := range nt {
			p := audience.Prefs{Regions: []audience.Region{}, Topics: []audience.Topic{}}
			for i, reg := range audience.Regions {
				if r&(1<<i) != 0 {
					p.Regions = append(p.Regions, reg)
				}
			}
			for i, top := range audience.StandardTopics {
				if t&(1<<i) != 0 {
					p.Topics = append(p.Topics, top)
				}
			}
			c[r][t] = p
		}
	}
	return c
}()

// prefsOf rebuilds preferences from the masks and custom tags (sorted).
// Without custom tags the result is shared and must not be modified.
func prefsOf(regions, topics int64, custom []string) audience.Prefs {
	r := regions & (1<<len(audience.Regions) - 1)
	t := topics & (1<<len(audience.StandardTopics) - 1)
	p := prefsCache[r][t]
	if len(custom) == 0 {
		return p
	}
	ts := make([]audience.Topic, len(p.Topics), len(p.Topics)+len(custom))
	copy(ts, p.Topics)
	for _, c := range custom {
		ts = append(ts, audience.Topic(c))
	}
	return audience.Prefs{Regions: p.Regions, Topics: ts}
}

// splitList splits a comma-separated list, sorted.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	out := strings.Split(s, ",")
	slices.Sort(out)
	return out
}

// subscriberOf turns a stored record into a Subscriber.
func (s *Store) subscriberOf(r Record) Subscriber {
	sub := Subscriber{ID: r.ID, PublicID: s.pids.of(r.ID), Email: r.Email, Name: r.Name, Status: r.Status,
		Prefs: prefsOf(r.Regions, r.Topics, r.Tags), Lists: r.Lists, confirmSeq: uint64(r.ConfirmSeq),
		LegalHold: r.LegalHold, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, ErasedAt: r.ErasedAt}
	if sub.Lists == nil {
		sub.Lists = []string{}
	}
	return sub
}
