package queue

import "time"

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
