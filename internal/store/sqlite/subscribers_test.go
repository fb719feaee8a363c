package sqlite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/internal/testutil"
)

// TestSubscribersRecipientsPlan checks that SQLite runs the delivery query
// as a walk of the memberships primary key with a rowid lookup per
// subscriber (no scan of subscribers, no temporary sort), for every shape
// of filter.
func TestSubscribersRecipientsPlan(t *testing.T) {
	ctx := context.Background()
	db := testutil.OpenStore(t, testutil.EngineByName(t, "sqlite"))
	for _, c := range []struct {
		upTo, region, topic bool
		custom              int
	}{{false, false, false, 0}, {false, true, false, 0}, {false, false, true, 0}, {false, true, true, 0}, {false, true, true, 2}, {true, true, true, 2}, {true, false, false, 0}} {
		q := sqlite.SubRecipientsQuery(c.upTo, c.region, c.topic, c.custom)
		args := []any{1, 0}
		if c.upTo {
			args = append(args, 100)
		}
		if c.region {
			args = append(args, 1)
		}
		if c.topic {
			args = append(args, 1)
			for range c.custom {
				args = append(args, "x")
			}
		}
		args = append(args, 10)
		rows, err := db.SQL.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, "SEARCH m USING PRIMARY KEY (list_id=? AND subscriber_id>?") ||
			c.upTo != strings.Contains(all, "subscriber_id<?)") ||
			!strings.Contains(all, "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)") ||
			strings.Contains(all, "SCAN s") || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("filter %+v: plan\n%s", c, all)
		}
	}
}
