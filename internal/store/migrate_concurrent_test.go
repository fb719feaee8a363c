package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
)

// The compose file and the systemd units start a web server and workers
// at once on an empty PostgreSQL database: each migrates at start, and all
// of them must come up. (A SQLite file must be made by `tayori init`
// first; concurrent migrations of one file are sqlitedb's test.)
func TestMigrateConcurrentlyOnPostgres(t *testing.T) {
	for _, e := range testutil.Engines() {
		if e.Name != store.Postgres {
			continue
		}
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn := e.URL(t)
			first, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					db, err := store.Open(ctx, dsn)
					if err != nil {
						errs[i] = err
						return
					}
					defer db.Close()
					errs[i] = store.Migrate(ctx, db)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("process %d: %v", i, err)
				}
			}
			var n int
			if err := first.SQL.QueryRow(`SELECT count(*) FROM web_editors`).Scan(&n); err != nil {
				t.Errorf("the web tables after concurrent migrations: %v", err)
			}
		})
	}
}
