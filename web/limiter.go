package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// limiter counts requests per key in fixed windows in Redis, so that every
// server process shares the same counts. Keys are hashed: no address or IP
// is stored in Redis in the clear.
type limiter struct {
	rdb redis.UniversalClient
	now func() time.Time
}

func newLimiter(rdb redis.UniversalClient, now func() time.Time) *limiter {
	return &limiter{rdb: rdb, now: now}
}

// incrScript increments a window's counter and sets its expiry on first use.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// allow counts one request of key in scope and reports whether it is
// within max per window.
func (l *limiter) allow(ctx context.Context, scope, key string, max int, window time.Duration) (bool, error) {
	k := l.key(scope, key, window)
	n, err := incrScript.Run(ctx, l.rdb, []string{k}, window.Milliseconds()+1000).Int64()
	if err != nil {
		return false, fmt.Errorf("rate limit: %w", err)
	}
	return n <= int64(max), nil
}

func (l *limiter) key(scope, key string, window time.Duration) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	slot := l.now().UnixMilli() / window.Milliseconds()
	return fmt.Sprintf("tayori:web:rl:%s:%d:%s", scope, slot, hex.EncodeToString(sum[:12]))
}
