package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limiter is a global messages-per-second limit shared by every worker
// process through Redis (GCRA, github.com/go-redis/redis_rate). Each
// process reserves tokens in small chunks, so the limit costs one Redis
// round trip per chunk, not per message. A nil *Limiter allows everything.
type Limiter struct {
	rl    *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
	chunk int
	down  outage

	mu     sync.Mutex
	tokens int
}

// RedisGrace is how long the limiter and the semaphore wait for Redis to
// answer again before they give up on a message: long enough for a
// Sentinel failover (a few seconds after the primary is declared down,
// see docs/deploy.md), so that a failover costs no reader an attempt.
// Once Redis has failed for longer, they fail at once until it answers.
const RedisGrace = 30 * time.Second

// outage tracks a spell of Redis errors, shared by the callers of one
// limiter or semaphore.
type outage struct {
	grace time.Duration // RedisGrace unless a test sets it

	mu    sync.Mutex
	since time.Time // zero: Redis answered last time
}

// do calls fn until it succeeds, ctx ends, or Redis has failed for longer
// than the grace period, waiting a little longer after each failure. Only
// fn's errors are returned; a failure past the grace fails at once.
func (o *outage) do(ctx context.Context, fn func() error) error {
	grace := o.grace
	if grace == 0 {
		grace = RedisGrace
	}
	wait := 50 * time.Millisecond
	for {
		err := fn()
		o.mu.Lock()
		if err == nil {
			o.since = time.Time{}
			o.mu.Unlock()
			return nil
		}
		now := time.Now()
		if o.since.IsZero() {
			o.since = now
		}
		over := now.Sub(o.since) >= grace
		o.mu.Unlock()
		if over || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// NewLimiter returns a limiter of perSecond messages per second under key
// (for example the relay's host:port), or nil when perSecond ≤ 0.
func NewLimiter(rdb redis.UniversalClient, key string, perSecond int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	chunk := max(1, perSecond/50) // ≤ 50 Redis round trips a second per process
	return &Limiter{
		rl:    redis_rate.NewLimiter(rdb),
		key:   "tayori:smtp:" + key,
		limit: redis_rate.Limit{Rate: perSecond, Period: time.Second, Burst: max(chunk, perSecond/10)},
		chunk: chunk,
	}
}

// Wait blocks until one message may be sent, or ctx ends. While Redis
// does not answer it waits up to RedisGrace for it (a failover), then
// returns the error.
func (l *Limiter) Wait(ctx context.Context) error {
	if l == nil {
		return nil
	}
	for {
		l.mu.Lock()
		if l.tokens > 0 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		var res *redis_rate.Result
		err := l.down.do(ctx, func() (err error) {
			res, err = l.rl.AllowAtMost(ctx, l.key, l.limit, l.chunk)
			return err
		})
		if err != nil {
			l.mu.Unlock()
			return fmt.Errorf("queue: rate limit: %w", err)
		}
		if res.Allowed > 0 {
			l.tokens = res.Allowed - 1
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		wait := max(res.RetryAfter, time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Semaphore caps SMTP connections across all worker processes. Each slot
// is a lease in a Redis sorted set, renewed while held and expiring on its
// own if the holding process dies. A nil *Semaphore never blocks.
type Semaphore struct {
	rdb  redis.UniversalClient
	key  string
	max  int
	ttl  time.Duration
	poll time.Duration
	down outage

	mu     sync.Mutex
	held   map[string]struct{}
	stop   chan struct{}
	closed bool
	wg     sync.WaitGroup
}

// ErrClosed is returned by a closed Semaphore.
var ErrClosed = errors.New("queue: closed")

var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0`)

// NewSemaphore returns a semaphore of n slots under key, or nil when n ≤ 0.
// ttl is how long a lease outlives a dead holder (default 30s).
func NewSemaphore(rdb redis.UniversalClient, key string, n int, ttl time.Duration) *Semaphore {
	if n <= 0 {
		return nil
	}
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	s := &Semaphore{
		rdb: rdb, key: "tayori:smtp-conns:" + key, max: n, ttl: ttl, poll: 50 * time.Millisecond,
		held: map[string]struct{}{}, stop: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.renew()
	return s
}

// Acquire takes a slot, waiting until one is free or ctx ends. The
// returned release gives it back; it is safe to call more than once.
// While Redis does not answer it waits up to RedisGrace, as Limiter.Wait.
func (s *Semaphore) Acquire(ctx context.Context) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		s.mu.Unlock()
		var ok int
		err := s.down.do(ctx, func() (err error) {
			now := time.Now()
			ok, err = acquireScript.Run(ctx, s.rdb, []string{s.key},
				now.UnixMilli(), now.Add(s.ttl).UnixMilli(), s.max, id, (2 * s.ttl).Milliseconds()).Int()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("queue: connection slot: %w", err)
		}
		if ok == 1 {
			s.mu.Lock()
			s.held[id] = struct{}{}
			s.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					s.mu.Lock()
					delete(s.held, id)
					s.mu.Unlock()
					// Best effort: an unreleased lease expires after ttl.
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					s.rdb.ZRem(ctx, s.key, id)
				})
			}, nil
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Semaphore) renew() {
	defer s.wg.Done()
	tick := time.NewTicker(s.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		ids := make([]any, 0, len(s.held))
		for id := range s.held {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		exp := float64(time.Now().Add(s.ttl).UnixMilli())
		zs := make([]redis.Z, len(ids))
		for i, id := range ids {
			zs[i] = redis.Z{Score: exp, Member: id}
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
		s.rdb.ZAddXX(ctx, s.key, zs...)
		s.rdb.PExpire(ctx, s.key, 2*s.ttl)
		cancel()
	}
}

// Close stops renewing and releases every slot this process holds.
func (s *Semaphore) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ids := make([]any, 0, len(s.held))
	for id := range s.held {
		ids = append(ids, id)
	}
	s.held = map[string]struct{}{}
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	if len(ids) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.rdb.ZRem(ctx, s.key, ids...).Err(); err != nil {
			return fmt.Errorf("queue: release connection slots: %w", err)
		}
	}
	return nil
}
