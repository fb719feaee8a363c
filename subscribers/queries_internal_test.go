package subscribers

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/subscribers/token"
)

// TestRecipientsPlan checks that SQLite runs the delivery query as a walk
// of the memberships primary key with a rowid lookup per subscriber (no
// scan of subscribers, no temporary sort), for every shape of filter.
func TestRecipientsPlan(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, _ := token.NewKeyring(nil, token.Key{ID: "k", Secret: []byte("0123456789abcdef0123")})
	if _, err := Open(ctx, db, Options{Keyring: ring}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		upTo, region, topic bool
		custom              int
	}{{false, false, false, 0}, {false, true, false, 0}, {false, false, true, 0}, {false, true, true, 0}, {false, true, true, 2}, {true, true, true, 2}, {true, false, false, 0}} {
		q := recipientsQuery(c.upTo, c.region, c.topic, c.custom)
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
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
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
