package queue

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// SetSchedulerLeaseTTL shortens the scheduler lease of s (renewed every
// ttl/3; RunScheduler tries to take it, and Every runs, as often).
func SetSchedulerLeaseTTL(s *Service, ttl time.Duration) { s.schedTTL = ttl }

// SchedulerLeaseKey is the Redis key of the scheduler lease.
const SchedulerLeaseKey = schedulerLeaseKey

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
// returns) and counts its rows (the full recount), in one transaction so
// that both see the same outcomes.
func KeptAndRecount(ctx context.Context, s *Service, id int64) (kept, recount Counts, err error) {
	return s.ledger.Recount(ctx, id)
}

// TestEngine is a database engine the tests of this package run on. The
// external test package sets TestEngines up (engines_test.go): it may
// import internal/store, which imports this package; this package's own
// tests may not.
type TestEngine struct {
	Name string
	// Open returns a ledger on a fresh migrated database of the engine,
	// and the database, closed when the test ends.
	Open func(tb testing.TB) (Ledger, *sql.DB)
}

// TestEngines are the engines, SQLite first; TestRedis hands a test a
// Redis database of its own.
var (
	TestEngines []TestEngine
	TestRedis   func(tb testing.TB) *redis.Client
)

var placeholder = regexp.MustCompile(`\?(\d*)`)

// Rebind rewrites a test's query with ? or ?N placeholders for engine:
// PostgreSQL numbers them $N.
func Rebind(engine, q string) string {
	if engine != "postgres" {
		return q
	}
	n := 0
	return placeholder.ReplaceAllStringFunc(q, func(m string) string {
		if len(m) > 1 {
			return "$" + m[1:]
		}
		n++
		return "$" + strconv.Itoa(n)
	})
}
