package testutil_test

import (
	"context"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

func TestRedisDBIsOwnAndClean(t *testing.T) {
	ctx := context.Background()
	a, na := testutil.RedisDBNumber(t)
	b, nb := testutil.RedisDBNumber(t)
	if na == nb {
		t.Fatalf("two calls got the same database %d", na)
	}
	if n, err := a.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("fresh database has %d keys, err %v", n, err)
	}
	if err := a.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := b.Exists(ctx, "k").Val(); n != 0 {
		t.Fatalf("key written to db %d is visible in db %d", na, nb)
	}
	if got := testutil.RedisDBURL(t, na); got == "" {
		t.Fatal("empty URL")
	}
}
