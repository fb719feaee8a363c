package queue

import (
	"context"
	"time"
)

// StopRenewal simulates the death of a process holding slots of s: its
// leases stop being renewed and are never released.
func StopRenewal(s *Semaphore) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
}

// SetRedisGrace shortens how long l and s wait for Redis to come back.
func SetRedisGrace(l *Limiter, s *Semaphore, d time.Duration) {
	if l != nil {
		l.down.grace = d
	}
	if s != nil {
		s.down.grace = d
	}
}

// KeptAndRecount reads a send's kept counts (what a progress read
// returns) and counts its rows (liveCounts), in one transaction so that
// both see the same outcomes.
func KeptAndRecount(ctx context.Context, s *Service, id int64) (kept, recount Counts, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return kept, recount, err
	}
	defer tx.Rollback()
	snd, err := getSend(ctx, tx, id, false)
	if err != nil {
		return kept, recount, err
	}
	recount, err = liveCounts(ctx, tx, id)
	return snd.Counts, recount, err
}
