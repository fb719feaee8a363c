package queue_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

func TestSemaphoreCapsAcrossProcessesAndLeasesExpire(t *testing.T) {
	rdb := testutil.RedisDB(t)
	ctx := context.Background()
	// Two semaphores on one key stand for two worker processes.
	a := queue.NewSemaphore(rdb, "relay", 2, 400*time.Millisecond)
	b := queue.NewSemaphore(rdb, "relay", 2, 400*time.Millisecond)
	defer b.Close()
	r1, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third slot of two: %v, want to wait", err)
	}
	r1()
	if _, err := b.Acquire(ctx); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	// A holder that dies keeps its slot only until its lease runs out.
	a.Close()
	dying := queue.NewSemaphore(rdb, "other", 1, 300*time.Millisecond)
	if _, err := dying.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	other := queue.NewSemaphore(rdb, "other", 1, 300*time.Millisecond)
	defer other.Close()
	cctx, ccancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer ccancel()
	if _, err := other.Acquire(cctx); err == nil {
		t.Fatal("slot free while its holder is alive")
	}
	queue.StopRenewal(dying)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	if _, err := other.Acquire(wctx); err != nil {
		t.Fatalf("lease of a dead holder did not expire: %v", err)
	}
}

// TestLimiterAndSemaphoreWaitOutARedisOutageThenFailFast: with Redis
// gone, the first caller waits out the grace period (a failover takes a
// few seconds) before failing; later callers in the same outage fail at
// once instead of each waiting again.
func TestLimiterAndSemaphoreWaitOutARedisOutageThenFailFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	lim := queue.NewLimiter(rdb, "relay", 100)
	sem := queue.NewSemaphore(rdb, "relay", 2, time.Second)
	defer sem.Close()
	const grace = time.Second
	queue.SetRedisGrace(lim, sem, grace)
	ctx := context.Background()

	start := time.Now()
	if err := lim.Wait(ctx); err == nil {
		t.Fatal("limiter without Redis allowed a message")
	}
	if d := time.Since(start); d < grace {
		t.Errorf("limiter gave up after %v, before the grace of %v", d, grace)
	}
	start = time.Now()
	if err := lim.Wait(ctx); err == nil || time.Since(start) > grace/2 {
		t.Errorf("second wait in the same outage: %v after %v, want a quick error", err, time.Since(start))
	}

	start = time.Now()
	if _, err := sem.Acquire(ctx); err == nil {
		t.Fatal("semaphore without Redis gave a slot")
	}
	if d := time.Since(start); d < grace {
		t.Errorf("semaphore gave up after %v, before the grace of %v", d, grace)
	}
	// A cancelled caller does not wait for the grace.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	lim2 := queue.NewLimiter(rdb, "relay2", 100)
	start = time.Now()
	if err := lim2.Wait(cctx); err == nil || time.Since(start) > grace/2 {
		t.Errorf("cancelled wait: %v after %v", err, time.Since(start))
	}
}
