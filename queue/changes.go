package queue

import (
	"context"
	"fmt"
)

// readerWatch keeps a running batch's readers current: the batch reads
// its readers once when it starts, and then, at each state check (every
// stateCheckEvery), asks the Directory's ChangeFeed whether any subscriber
// changed since; if so it re-reads only the changed readers among those
// it has not handled yet. An unsubscribe or a preference change then
// takes effect for every copy not yet handed to the relay, at the cost of
// one small query per check when nobody changed.
type readerWatch struct {
	feed ChangeFeed // nil: the Directory offers none; readers are read once
	dir  Directory
	list string
	mark int64
}

// watchReaders returns the watch of a batch's readers; call it before
// the batch reads them, so that no change between the two is missed.
func (s *Service) watchReaders(ctx context.Context, list string) (*readerWatch, error) {
	w := &readerWatch{dir: s.deps.Directory, list: list}
	feed, ok := s.deps.Directory.(ChangeFeed)
	if !ok {
		return w, nil
	}
	m, err := feed.ChangeMark(ctx)
	if err != nil {
		return nil, err
	}
	w.feed, w.mark = feed, m
	return w, nil
}

// refresh re-reads the readers of pending that changed since the last
// look, updating byID (a reader no longer active is removed from it),
// and returns how many it re-read.
func (w *readerWatch) refresh(ctx context.Context, pending []claimed, byID map[int64]*Recipient) (int, error) {
	if w.feed == nil || len(pending) == 0 {
		return 0, nil
	}
	m, err := w.feed.ChangeMark(ctx)
	if err != nil || m == w.mark {
		return 0, err
	}
	changed, next, complete, err := w.feed.ChangedSince(ctx, w.mark)
	if err != nil {
		return 0, err
	}
	w.mark = next
	var ids []int64
	if complete {
		set := make(map[int64]bool, len(changed))
		for _, id := range changed {
			set[id] = true
		}
		for _, c := range pending {
			if set[c.SubscriberID] {
				ids = append(ids, c.SubscriberID)
			}
		}
	} else {
		for _, c := range pending {
			ids = append(ids, c.SubscriberID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	recips, err := w.dir.Lookup(ctx, w.list, ids)
	if err != nil {
		return 0, fmt.Errorf("re-read %d changed readers: %w", len(ids), err)
	}
	for _, id := range ids {
		delete(byID, id)
	}
	for i := range recips {
		byID[recips[i].ID] = &recips[i]
	}
	return len(ids), nil
}
