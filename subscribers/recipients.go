package subscribers

import (
	"context"
	"fmt"
	"iter"

	"github.com/tayori-news/tayori/audience"
)

// RecipientQuery selects the recipients of a send.
type RecipientQuery struct {
	// List is the list key. Default DefaultList.
	List string
	// Filter keeps subscribers whose preferences intersect it: at least one
	// region in common and at least one topic in common (standard or
	// custom). An empty dimension does not restrict. nil means every
	// active member.
	Filter *audience.Prefs
	// AfterID resumes after this subscriber id (the last id handled).
	AfterID int64
	// UpToID, if positive, ends the stream after this subscriber id.
	UpToID int64
	// BatchSize is how many rows each query reads (and the memory held).
	// Default Options.BatchSize (1000); at most MaxBatchSize.
	BatchSize int
}

// MaxBatchSize bounds RecipientQuery.BatchSize.
const MaxBatchSize = 10_000

// Recipient is what the delivery path needs of a subscriber.
type Recipient struct {
	ID       int64
	PublicID string
	Email    string
	Name     string
	// Prefs may share its slices with other recipients: read-only.
	Prefs audience.Prefs
}

// Recipients streams the active members of q.List matching q.Filter in
// ascending id order. It reads BatchSize rows per query with keyset paging
// (id > last id) and holds no cursor open while the caller works, so memory
// stays constant and a send can resume from the last id it handled. An
// error ends the sequence after being yielded once.
//
//	for r, err := range store.Recipients(ctx, q) {
//		if err != nil { return err }
//		…
//	}
func (s *Store) Recipients(ctx context.Context, q RecipientQuery) iter.Seq2[Recipient, error] {
	return func(yield func(Recipient, error) bool) {
		if q.List == "" {
			q.List = DefaultList
		}
		if q.BatchSize <= 0 {
			q.BatchSize = s.opts.BatchSize
		}
		q.BatchSize = min(q.BatchSize, MaxBatchSize)
		listID, err := s.listID(ctx, s.st, q.List)
		if err != nil {
			yield(Recipient{}, fmt.Errorf("recipients: %w", err))
			return
		}
		scan := RecipientScan{ListID: listID, UpToID: max(q.UpToID, 0), Limit: q.BatchSize}
		if f := q.Filter; f != nil {
			if p := checkPrefs(*f); len(p) > 0 {
				yield(Recipient{}, fmt.Errorf("recipients: filter: %w", &ValidationError{Problems: p}))
				return
			}
			scan.Regions, scan.Topics, scan.Custom = maskOf(*f)
			scan.ByRegion, scan.ByTopic = len(f.Regions) > 0, len(f.Topics) > 0
		}
		pager, err := s.st.Recipients(ctx, scan)
		if err != nil {
			yield(Recipient{}, fmt.Errorf("recipients: %w", err))
			return
		}
		defer pager.Close()
		after := q.AfterID
		rows := make([]RecipientRow, 0, q.BatchSize)
		for {
			rows, err = pager.Page(ctx, after, rows)
			if err != nil {
				yield(Recipient{}, fmt.Errorf("recipients after id %d: %w", after, err))
				return
			}
			if len(rows) == 0 {
				return
			}
			for i := range rows {
				r := &rows[i]
				if !yield(Recipient{ID: r.ID, PublicID: s.pids.of(r.ID), Email: r.Email, Name: r.Name,
					Prefs: prefsOf(r.Regions, r.Topics, r.Tags)}, nil) {
					return
				}
			}
			after = rows[len(rows)-1].ID
			if len(rows) < q.BatchSize {
				return
			}
		}
	}
}
