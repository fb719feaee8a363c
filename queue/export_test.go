package queue

// StopRenewal simulates the death of a process holding slots of s: its
// leases stop being renewed and are never released.
func StopRenewal(s *Semaphore) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
}
