package redisurl_test

import (
	"context"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/redisurl"
	"github.com/tayori-news/tayori/internal/testutil"
)

// TestFailoverClientFollowsThePrimary runs a real primary, replica and
// Sentinel: the client built from the Sentinel form writes to the primary,
// and after the primary is killed and the replica promoted it reads what
// it wrote and writes again, on the new primary.
func TestFailoverClientFollowsThePrimary(t *testing.T) {
	rs := testutil.StartRedisSentinel(t)
	opt, err := redisurl.Parse(rs.URL(3))
	if err != nil {
		t.Fatal(err)
	}
	c := opt.NewClient("test", 4)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	old, err := rs.KillPrimary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	now, err := rs.WaitPrimaryChange(ctx, old, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("primary %s killed; %s promoted after %v", old, now, time.Since(start).Round(time.Millisecond))
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got, err = c.Get(ctx, "k").Result(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from the new primary through the failover client: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != "before" {
		t.Errorf("read %q after the failover, want %q", got, "before")
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
	// The write landed on the new primary, database 3.
	direct, err := redisurl.Parse("redis://" + now + "/3")
	if err != nil {
		t.Fatal(err)
	}
	dc := direct.NewClient("test", 1)
	defer dc.Close()
	if v, err := dc.Get(ctx, "k").Result(); err != nil || v != "after" {
		t.Errorf("new primary %s holds %q (%v), want %q", now, v, err, "after")
	}
}
