package sqlite_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/internal/testutil"
)

// benchRows is the size of the benchmark: 10,000 by default;
// `make bench` sets TAYORI_BENCH_ROWS=1000000.
func benchRows(b *testing.B) int {
	if v := os.Getenv("TAYORI_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("TAYORI_BENCH_ROWS=%q: want a positive integer", v)
		}
		return n
	}
	return 10_000
}

// BenchmarkImportFloor is the bound under subscribers.BenchmarkImport on
// SQLite: SQLite alone
// writing what an import of benchRows readers writes (a subscriber and its
// address, a list membership, a consent record and a history entry), the
// rows generated inside SQLite by a recursive query, in transactions of
// 20,000 readers on one connection with the import's 64 MiB page cache,
// and the WAL checkpointed on a second connection as the import does it.
// No CSV, no Go, no JSON, no checks: no import through this schema and
// engine can beat its rows/s. It reports the SQLite time per reader for
// each table too.
func BenchmarkImportFloor(b *testing.B) {
	n := benchRows(b)
	const batch = 20_000
	const gen = `WITH RECURSIVE seq(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?2) `
	tables := []struct{ name, q string }{
		{"subscribers", gen + `INSERT INTO subscribers (id, email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
			SELECT x, 'user' || x || '@example' || (x % 97) || '.jp', 'user' || x || '@example' || (x % 97) || '.jp',
			       '利用者 ' || x, 'active', 1 + (x * 7) % 31, 1 + (x * 3) % 7, ?3, ?3, ?3 FROM seq`},
		{"memberships", gen + `INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at) SELECT 1, x, 1, ?3, ?3 FROM seq`},
		{"consents", gen + `INSERT INTO consents (subscriber_id, consented_at, method, form_version, text_sha256, ip, user_agent, lists, prefs, recorded_at)
			SELECT x, '2025-12-01T00:00:00.000000Z', 'import', 'legacy-2025', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
			       '', '', 'monthly', 'jp,us;policy', ?3 FROM seq`},
		{"status_history", gen + `INSERT INTO status_history (subscriber_id, at, from_status, to_status, list, cause) SELECT x, ?3, '', 'active', '', 'import' FROM seq`},
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		db := testutil.OpenStore(b, testutil.EngineByName(b, "sqlite"))
		conn, err := db.SQL.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0"); err != nil {
			b.Fatal(err)
		}
		ckpt, err := sqlite.SubStartCheckpointer(ctx, db.SQL)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		per := make([]time.Duration, len(tables))
		start := time.Now()
		for lo := 1; lo <= n; lo += batch {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i, t := range tables {
				t0 := time.Now()
				if _, err := tx.ExecContext(ctx, t.q, lo, min(lo+batch-1, n), "2026-01-01T00:00:00.000000Z"); err != nil {
					b.Fatalf("%s: %v", t.name, err)
				}
				per[i] += time.Since(t0)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			ckpt.Committed()
		}
		if err := ckpt.Sync(); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		ckpt.Stop()
		b.StopTimer()
		// The figures count only if every table got every reader.
		for _, t := range tables {
			var got int
			if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name).Scan(&got); err != nil || got != n {
				b.Fatalf("%s holds %d rows (%v), want %d", t.name, got, err, n)
			}
		}
		conn.Close()
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
		for i, t := range tables {
			b.ReportMetric(float64(per[i].Nanoseconds())/1e3/float64(n), "µs/row-"+t.name)
		}
		b.StartTimer()
	}
}
