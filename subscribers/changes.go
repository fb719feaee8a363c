package subscribers

import (
	"context"
	"fmt"
)

// The change log (table subscriber_changes): triggers record every subscriber whose
// status, list memberships, preferences, address or name changed, in
// order, so that a send under way can re-read only those readers.

// maxChangesRead bounds what ChangedSince returns: past it, the caller is
// told to re-read everyone instead (a large import under way).
const maxChangesRead = 10_000

// ChangeMark returns the position of the newest entry in the change log
// (0 if none): pass it to ChangedSince later to learn who changed since.
// It reads one row.
func (s *Store) ChangeMark(ctx context.Context) (int64, error) {
	m, err := s.st.ChangeMark(ctx)
	if err != nil {
		return 0, fmt.Errorf("subscribers: change mark: %w", err)
	}
	return m, nil
}

// ChangedSince returns the subscribers whose status, memberships,
// preferences, address or name changed after mark (each once), and the
// mark to pass next time. complete is false when the changes since mark
// are no longer all known (the log was trimmed past mark, or more than
// 10,000 changes happened): the caller must then re-read everyone it
// holds.
func (s *Store) ChangedSince(ctx context.Context, mark int64) (ids []int64, next int64, complete bool, err error) {
	wrap := func(err error) error { return fmt.Errorf("subscribers: changes since %d: %w", mark, err) }
	first, changes, err := s.st.ChangesAfter(ctx, mark, maxChangesRead+1)
	if err != nil {
		return nil, mark, false, wrap(err)
	}
	next = mark
	seen := map[int64]bool{}
	n := len(changes)
	for _, c := range changes {
		next = c.Seq
		if !seen[c.SubscriberID] {
			seen[c.SubscriberID] = true
			ids = append(ids, c.SubscriberID)
		}
	}
	if n > maxChangesRead {
		// Too many to list: the caller re-reads everyone; the next call
		// starts from the newest entry.
		m, err := s.ChangeMark(ctx)
		return nil, m, false, err
	}
	return ids, next, first == 0 || first <= mark+1, nil
}
