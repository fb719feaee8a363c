package queue_test

import (
	"database/sql"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

// The engines the package's own tests (package queue) run on: they cannot
// import internal/store themselves.
func init() {
	for _, e := range testutil.Engines() {
		queue.TestEngines = append(queue.TestEngines, queue.TestEngine{Name: string(e.Name),
			Open: func(tb testing.TB) (queue.Ledger, *sql.DB) {
				db := testutil.OpenStore(tb, e)
				l := store.Ledger(db)
				tb.Cleanup(func() { l.Close() })
				return l, db.SQL
			}})
	}
	queue.TestRedis = func(tb testing.TB) *redis.Client { return testutil.RedisDB(tb) }
}
