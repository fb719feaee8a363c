package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store/schema"
)

// ledgerTestDB is a fresh SQLite file with Tayori's schema.
func ledgerTestDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), t.TempDir()+"/tayori.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitedb.Migrate(context.Background(), db, schema.SQLite(), "tayori_schema"); err != nil {
		t.Fatal(err)
	}
	return db
}

// Every query by delivery status uses a partial index or the primary key,
// never a scan of the whole table; the ones that run for every batch use
// a key range within one send.
func TestStatusQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := ledgerTestDB(t)
	for _, c := range []struct {
		name, q string
		args    []any
		want    string
		noSort  bool // the plan must not sort (a temporary B-tree)
	}{
		{"cancel", ledgerQCancelOpen, []any{1, 1}, "SEARCH deliveries USING PRIMARY KEY (send_id=?)", false},
		{"requeue", ledgerQOpenRows, []any{1}, "SEARCH deliveries USING PRIMARY KEY (send_id=?)", false},
		{"all batches done", "SELECT " + ledgerQAllBatchesDone + " FROM sends WHERE id = 1", nil, "INDEX batch_claims_open", false},
		{"batch done", ledgerQBatchDone, []any{1, 0, "c", 1, 2}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id>? AND subscriber_id<?)", false},
		{"failures", ledgerQFailures, []any{1, 10}, "INDEX deliveries_trouble", false},
		{"record", ledgerQRecord, []any{"[]", 1}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id=?)", false},
		{"claim", ledgerQClaimRows, []any{1, 1, 2, 0}, "SEARCH deliveries USING PRIMARY KEY (send_id=? AND subscriber_id>? AND subscriber_id<?)", false},
		{"history", ledgerQHistory, []any{1}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", true},
		{"last attempts", ledgerQLastAttempts, []any{1, 5}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", true},
		// batch_sent: found by send or batch, and a copy's
		// row by its key.
		{"record sent", ledgerQRecordSent, []any{"[]", 1}, "SEARCH b EXISTS USING PRIMARY KEY (send_id=? AND batch=?)", false},
		{"sent of a batch", ledgerQBatchSentIDs, []any{1, 0}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", false},
		{"sent count", ledgerQSentCount, []any{1}, "SEARCH batch_sent USING COVERING INDEX batch_sent_batch (send_id=?)", false},
		{"raced cancel", ledgerQRacedCancel, []any{1}, "SEARCH d USING PRIMARY KEY (send_id=? AND subscriber_id=?)", false},
		{"batch done, sent copies", ledgerQBatchDone, []any{1, 0, "c", 1, 2}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", false},
		{"cancel, sent copies", ledgerQCancelOpen, []any{1, 1}, "SEARCH bs USING INDEX batch_sent_batch (send_id=?)", false},
		{"history, sent copy", ledgerQHistory, []any{1}, "SEARCH bs USING INDEX batch_sent_batch (send_id=? AND batch=?)", true},
		// A send's earlier sends, and its kept counts.
		{"earlier sends", ledgerQEarlier, []any{"2025-11", "monthly"}, "SEARCH s USING INDEX sends_issue_list (issue_slug=? AND list_key=?)", false},
		{"send", `SELECT ` + ledgerSendCols + `, s.issue_json` + ledgerSendFrom + ` WHERE s.id = 1`, nil, "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)", false},
	} {
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.q, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if !strings.Contains(all, c.want) || strings.Contains(all, "SCAN deliveries") || slices.Contains(plan, "SCAN d") ||
			slices.Contains(plan, "SCAN bs") || strings.Contains(all, "MATERIALIZE") ||
			c.noSort && strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("%s: plan\n%s\nwant %q", c.name, all, c.want)
		}
	}
}
