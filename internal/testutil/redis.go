package testutil

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisURLEnv names the variable that points tests at a Redis server; the
// Makefile sets it to the server it found or started. Unset, tests use
// redis://127.0.0.1:6379.
const RedisURLEnv = "TAYORI_TEST_REDIS_URL"

// lockDB is the database that holds the claims on test databases; tests
// get databases 1 to 14, never 0 (an operator's default) or 15.
const lockDB = 15

// RedisURL returns the base URL of the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv(RedisURLEnv); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

// RedisDB hands the test a Redis database of its own: it claims a free
// database number (1–14) across all test processes, flushes it, and on
// cleanup flushes it again, closes the client and releases the claim. It
// fails the test, never skips it, when Redis is unreachable.
func RedisDB(tb testing.TB) *redis.Client {
	tb.Helper()
	c, _ := RedisDBNumber(tb)
	return c
}

// RedisDBNumber is RedisDB that also returns the database number, for tests
// that hand a redis:// URL to a child process.
func RedisDBNumber(tb testing.TB) (*redis.Client, int) {
	tb.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		tb.Fatalf("%s=%q: %v", RedisURLEnv, RedisURL(), err)
	}
	ctx := context.Background()
	lockOpt := *opt
	lockOpt.DB = lockDB
	locks := redis.NewClient(&lockOpt)
	defer locks.Close()
	if err := locks.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis at %s is unreachable (%v).\nRun the tests with `make test`, which finds or starts a Redis, or start one with `make redis` and set %s.", opt.Addr, err, RedisURLEnv)
	}
	owner := fmt.Sprintf("%d:%s:%d", os.Getpid(), tb.Name(), time.Now().UnixNano())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for n := 1; n <= 14; n++ {
			key := "tayori:testdb:" + strconv.Itoa(n)
			ok, err := locks.SetNX(ctx, key, owner, 15*time.Minute).Result()
			if err != nil {
				tb.Fatalf("claim a Redis test database: %v", err)
			}
			if !ok {
				continue
			}
			o := *opt
			o.DB = n
			c := redis.NewClient(&o)
			if err := c.FlushDB(ctx).Err(); err != nil {
				tb.Fatalf("flush Redis db %d: %v", n, err)
			}
			tb.Cleanup(func() {
				c.FlushDB(context.Background())
				c.Close()
				l := redis.NewClient(&lockOpt)
				// Release only our own claim.
				if v, _ := l.Get(context.Background(), key).Result(); v == owner {
					l.Del(context.Background(), key)
				}
				l.Close()
			})
			return c, n
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no free Redis test database among 1–14 after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RedisDBURL returns a redis:// URL for database n of the test server.
func RedisDBURL(tb testing.TB, n int) string {
	tb.Helper()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		tb.Fatal(err)
	}
	u := "redis://"
	if opt.Password != "" {
		u += ":" + opt.Password + "@"
	}
	return u + opt.Addr + "/" + strconv.Itoa(n)
}
