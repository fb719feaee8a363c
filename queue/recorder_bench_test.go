package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRecord measures committing outcomes the way a worker does:
// eight batch runs at once, their outcomes interleaved in groups of
// TAYORI_BENCH_GROUP (default 40, about one 5 ms window at 8,000 msg/s),
// against a send of 100,000 planned deliveries in batches of 500.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	const n, batchSize, runs = 100_000, 500, 8
	group := 40
	if v, err := strconv.Atoi(os.Getenv("TAYORI_BENCH_GROUP")); err == nil && v > 0 {
		group = v
	}
	for range b.N {
		b.StopTimer()
		ledger, db := migratedDB(b)
		now := time.Now().UnixMilli()
		if _, err := db.ExecContext(ctx, `INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at)
			VALUES (1, 'u1', 'x', '{}', 'monthly', 'sending', ?, ?, ?)`, now, now, now); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < ?)
			INSERT INTO deliveries (send_id, subscriber_id, batch, variant, updated_at) SELECT 1, i, (i-1)/?, 'jp|policy', ? FROM s`,
			n, batchSize, now); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < ?)
			INSERT INTO batch_claims (send_id, batch, claim, claimed_at) SELECT 1, i, 'claim-' || i, ? FROM s`,
			n/batchSize, now); err != nil {
			b.Fatal(err)
		}
		rec := newRecorder(ledger, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
		// Outcome order: runs batches at a time, one copy of each in turn.
		order := make([]outcome, 0, n)
		for first := 0; first < n/batchSize; first += runs {
			for k := range batchSize {
				for r := range runs {
					bt := first + r
					id := int64(bt*batchSize + k + 1)
					order = append(order, outcome{SendID: 1, SubscriberID: id, Batch: int64(bt), First: true, Claim: "claim-" + strconv.Itoa(bt), Status: "sent",
						Reply: fmt.Sprintf("250 2.0.0 Ok: queued as 4ZqN8b1k%07d", id)}) // as Postfix answers
				}
			}
		}
		b.StartTimer()
		for i := 0; i < len(order); i += group {
			if err := rec.flushOnce(order[i:min(i+group, len(order))]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		var sent int
		if err := db.QueryRowContext(ctx, `SELECT sum(n) FROM batch_sent`).Scan(&sent); err != nil || sent != n {
			b.Fatalf("%d sent (%v), want %d", sent, err, n)
		}
		rec.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/outcome")
}
