package queue

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// progressFixture is a send (id 1) of n deliveries in batches of 500, half
// way through: the first half of its batches sent on the first attempt
// (batch_sent), one reader in a hundred of the other half retrying, one in
// a thousand failed, the rest queued.
func progressFixture(b *testing.B, n int) *Service {
	ctx := context.Background()
	ledger, db := migratedDB(b)
	now := time.Now().UnixMilli()
	for _, q := range []string{
		`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, plan_done, batches)
			VALUES (1, 'u1', 'x', '{"slug":"x"}', 'monthly', 'sending', ?1, ?1, ?1, 1, ?2 / 500)`,
		`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < ?2)
			INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, permanent, attempts, updated_at)
			SELECT 1, i, (i-1)/500, 'v',
			       CASE WHEN i > ?2/2 AND i % 1000 = 0 THEN 'failed' WHEN i > ?2/2 AND i % 100 = 0 THEN 'retry' ELSE 'queued' END,
			       i > ?2/2 AND i % 1000 = 0, i > ?2/2 AND i % 100 = 0, ?1 FROM s`,
		`INSERT INTO batch_sent (send_id, batch, n, at, sent)
			SELECT 1, batch, count(*), ?1, json_group_array(json_array(subscriber_id, '250 2.0.0 Ok: queued')) FROM deliveries
			 WHERE send_id = 1 AND subscriber_id <= ?2/2 GROUP BY batch`,
	} {
		if _, err := db.ExecContext(ctx, q, now, n); err != nil {
			b.Fatal(err)
		}
	}
	// Rows inserted here, not by planning, are counted once by a recount.
	for _, q := range []string{progressRecountRows, progressRecountSent} {
		if _, err := db.ExecContext(ctx, q, 1); err != nil {
			b.Fatal(err)
		}
	}
	return &Service{ledger: ledger, cfg: Config{Now: time.Now}}
}

// BenchmarkProgress is one progress read, what `tayori send --wait` and
// the console's progress bar do every 250 ms, of a send half way through
// to 10,000, 100,000 and 1,000,000 readers: the time per read should not
// grow with the list.
func BenchmarkProgress(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			s := progressFixture(b, n)
			b.ResetTimer()
			for range b.N {
				snd, err := s.Get(ctx, 1)
				if err != nil {
					b.Fatal(err)
				}
				if snd.Counts.Planned != int64(n) || snd.Counts.Sent != int64(n/2) {
					b.Fatalf("counts %+v", snd.Counts)
				}
			}
		})
	}
}

// progressRecountRows and progressRecountSent set a send's kept counts
// from its delivery rows and batch_sent (SQLite).
const (
	progressRecountRows = `UPDATE send_counts SET (planned, queued, retry, sent, skipped, failed_temp, failed_perm, cancelled) =
    (SELECT count(*), ifnull(sum(status IN ('queued','sending')), 0), ifnull(sum(status = 'retry'), 0),
            ifnull(sum(status = 'sent'), 0), ifnull(sum(status = 'skipped'), 0),
            ifnull(sum(status = 'failed' AND permanent = 0), 0), ifnull(sum(status = 'failed' AND permanent <> 0), 0),
            ifnull(sum(status = 'cancelled'), 0)
       FROM deliveries d WHERE d.send_id = send_counts.send_id)
 WHERE send_id = ?1`
	progressRecountSent = `UPDATE send_counts SET
    first_sent = (SELECT ifnull(sum(n), 0) FROM batch_sent bs WHERE bs.send_id = send_counts.send_id)
 WHERE send_id = ?1`
)
