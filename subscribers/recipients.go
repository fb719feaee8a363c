package subscribers

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"slices"

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
		listID, err := s.listID(ctx, s.db, q.List)
		if err != nil {
			yield(Recipient{}, fmt.Errorf("recipients: %w", err))
			return
		}
		var byRegion, byTopic bool
		var regions, topics int64
		var custom []string
		if f := q.Filter; f != nil {
			if p := checkPrefs(*f); len(p) > 0 {
				yield(Recipient{}, fmt.Errorf("recipients: filter: %w", &ValidationError{Problems: p}))
				return
			}
			regions, topics, custom = maskOf(*f)
			byRegion, byTopic = len(f.Regions) > 0, len(f.Topics) > 0
		}
		query := recipientsQuery(q.UpToID > 0, byRegion, byTopic, len(custom))
		args := []any{listID, q.AfterID}
		if q.UpToID > 0 {
			args = append(args, q.UpToID)
		}
		if byRegion {
			args = append(args, regions)
		}
		if byTopic {
			args = append(args, topics)
			for _, c := range custom {
				args = append(args, c)
			}
		}
		args = append(args, q.BatchSize)
		after := &args[1]

		stmt, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			yield(Recipient{}, fmt.Errorf("recipients: %w", err))
			return
		}
		defer stmt.Close()
		batch := make([]Recipient, 0, q.BatchSize)
		for {
			batch = batch[:0]
			if err := s.readBatch(ctx, stmt, args, &batch); err != nil {
				yield(Recipient{}, fmt.Errorf("recipients after id %d: %w", *after, err))
				return
			}
			if len(batch) == 0 {
				return
			}
			if err := s.addCustomTags(ctx, batch); err != nil {
				yield(Recipient{}, fmt.Errorf("recipients after id %d: %w", *after, err))
				return
			}
			for _, r := range batch {
				if !yield(r, nil) {
					return
				}
			}
			*after = batch[len(batch)-1].ID
			if len(batch) < q.BatchSize {
				return
			}
		}
	}
}

func (s *Store) readBatch(ctx context.Context, stmt *sql.Stmt, args []any, out *[]Recipient) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r Recipient
		var regions, topics int64
		if err := rows.Scan(&r.ID, &r.PublicID, &r.Email, &r.Name, &regions, &topics); err != nil {
			return err
		}
		r.PublicID = s.pids.forRow(r.ID, r.PublicID)
		r.Prefs = prefsOf(regions, topics, nil)
		*out = append(*out, r)
	}
	return rows.Err()
}

// addCustomTags fills in the custom topic tags of a batch with one range
// query.
func (s *Store) addCustomTags(ctx context.Context, batch []Recipient) error {
	rows, err := s.db.QueryContext(ctx, qTagsInRange, batch[0].ID, batch[len(batch)-1].ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var id int64
		var tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return err
		}
		for i < len(batch) && batch[i].ID < id {
			i++
		}
		if i == len(batch) {
			break
		}
		if batch[i].ID != id {
			continue
		}
		r := &batch[i]
		ts := slices.Clone(r.Prefs.Topics)
		r.Prefs = audience.Prefs{Regions: r.Prefs.Regions, Topics: append(ts, audience.Topic(tag))}
	}
	return rows.Err()
}
