package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

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
