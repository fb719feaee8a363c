package subscribers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// benchRows is the size of the big benchmarks: 10,000 by default so that
// `go test -bench .` stays quick; `make bench` sets TAYORI_BENCH_ROWS=1000000.
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

var regionSets = []string{"jp", "jp,us", "eu", "us,eu,asia", "jp,us,eu,asia,intl", "asia", "intl,jp"}
var topicSets = []string{"policy", "activities,policy,reports", "reports", "policy,reports", "activities"}

// csvReader generates n subscriber rows as CSV without holding them in
// memory. Addresses are user<i>@…, in file order, unless shuffled: then
// the local part is a 64-bit mix of i (still unique), so that addresses
// arrive in no order at all, as in a file sorted by anything but address.
type csvReader struct {
	n, i     int
	shuffled bool
	buf      []byte
}

func newCSV(n int) *csvReader {
	return &csvReader{n: n, buf: []byte("email,name,regions,topics,consent_at,consent_method,consent_version,consent_text_sha256\n")}
}

// mix is a bijection on uint64 (splitmix64's finaliser).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (c *csvReader) Read(p []byte) (int, error) {
	for len(c.buf) < len(p) && c.i < c.n {
		i := c.i
		local := uint64(i)
		if c.shuffled {
			local = mix(local)
		}
		c.buf = fmt.Appendf(c.buf, "user%d@example%d.jp,利用者 %d,\"%s\",\"%s\",2025-12-01T09:00:00+09:00,import,legacy-2025,%s\n",
			local, i%97, i, regionSets[i%len(regionSets)], topicSets[i%len(topicSets)], "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
		c.i++
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// BenchmarkImport imports benchRows generated rows (with consent, so every
// row writes a subscriber, a membership, a consent record and a history
// entry) into a fresh database. Target: ≥ 100,000 rows/s. The addresses
// come in file order (order=file) or in no order (order=shuffled), which
// costs more: each lands at a random place in the address index.
//
// The engine=postgres cases import into PostgreSQL (COPY into a staging
// table and one merge per batch; the server's CPU is not in cpu-µs/row,
// which counts this process, but in pg-core-µs/row, the CPU of the
// backends of the test's database, and pg-bg-core-µs/row, that of the
// server's background processes, read from /proc as BenchmarkDeliverStore
// does: the server must run on this machine). Target at 1,000,000
// readers: ≥ 150,000 rows/s.
func BenchmarkImport(b *testing.B) {
	for _, eng := range testutil.Engines() {
		for _, shuffled := range []bool{false, true} {
			name := "order=file"
			if shuffled {
				name = "order=shuffled"
			}
			if eng.Name != store.SQLite {
				name = "engine=" + string(eng.Name) + "/" + name
			}
			b.Run(name, func(b *testing.B) { benchImport(b, eng, shuffled) })
		}
	}
}

func benchImport(b *testing.B, eng testutil.Engine, shuffled bool) {
	n := benchRows(b)
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, eng)
		csv := newCSV(n)
		csv.shuffled = shuffled
		var pg *testutil.PGCPU
		stopPG := func() {}
		if eng.Name == store.Postgres {
			pg = testutil.NewPGCPU(e.db)
		}
		b.StartTimer()
		if pg != nil {
			stopPG = pg.Poll(25 * time.Millisecond)
		}
		start, cpu0 := time.Now(), cpuTime()
		res, err := e.store.Import(context.Background(), csv, subscribers.ImportOptions{BatchSize: benchEnvInt(b, "TAYORI_BENCH_IMPORT_BATCH"), CacheMiB: benchEnvInt(b, "TAYORI_BENCH_IMPORT_CACHE")})
		cpu := cpuTime() - cpu0
		stopPG()
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		if res.Added != n || res.ErrorRows != 0 {
			b.Fatalf("added %d of %d, errors %v", res.Added, n, res.Errors[:min(3, len(res.Errors))])
		}
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
		// CPU time of the whole process per row: on a shared machine this
		// is steadier than wall time.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/row")
		if pg != nil {
			back, bg := pg.Used()
			b.ReportMetric(float64(back.Microseconds())/float64(n), "pg-core-µs/row")
			b.ReportMetric(float64(bg.Microseconds())/float64(n), "pg-bg-core-µs/row")
		}
	}
	reportMem(b)
}

// benchEnvInt reads one of BenchmarkImport's knobs for experiments
// (TAYORI_BENCH_IMPORT_BATCH and _CACHE set ImportOptions' BatchSize
// and CacheMiB); 0, the default, when unset.
func benchEnvInt(b *testing.B, name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// populate writes n active subscribers with varied preferences straight
// into the store's tables with one set-based INSERT each (the import path
// is measured by BenchmarkImport; this only builds the fixture fast).
func populate(b *testing.B, e *env, n int) {
	b.Helper()
	for _, q := range []string{
		`WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
		 INSERT INTO subscribers (id, email, email_key, name, status, regions, topics, created_at, updated_at, status_at)
		 SELECT x, 'user' || x || '@example.jp', 'user' || x || '@example.jp', '利用者 ' || x,
		        CASE WHEN x % 10 = 0 THEN 'unsubscribed' ELSE 'active' END,
		        1 + (x * 7) % 31, 1 + (x * 3) % 7, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
		 FROM seq`,
		`WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
		 INSERT INTO memberships (list_id, subscriber_id, subscribed, created_at, updated_at)
		 SELECT 1, x, 1, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z' FROM seq`,
		`WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
		 INSERT INTO subscriber_tags (subscriber_id, tag) SELECT x, 'semiconductors' FROM seq WHERE x % 50 = 0`,
	} {
		if _, err := e.db.Exec(q, n); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecipients streams the recipients of a list of benchRows
// subscribers (90% active) through a filter (EU, or policy/reports, or a
// custom tag) that keeps about a third of them. rows/s counts subscribers
// scanned per second: target ≥ 500,000. peak-heap-MiB is sampled every
// 50,000 rows while streaming and stays flat whatever the list size.
//
// The streaming runs a second time in a process of its own, which opens
// the database and streams the recipients once: child-peak-RSS-MB is that
// process's peak resident set (VmHWM: Go heap, SQLite's page cache and
// everything else), child-RSS-growth-MB how much it grew while streaming.
func BenchmarkRecipients(b *testing.B) {
	n := benchRows(b)
	e := newEnv(b, sqliteEngine)
	ctx := context.Background()
	populate(b, e, n)
	b.ResetTimer()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		start, cpu0 := time.Now(), cpuTime()
		got := 0
		for _, err := range e.store.Recipients(ctx, subscribers.RecipientQuery{Filter: benchFilter}) {
			if err != nil {
				b.Fatal(err)
			}
			got++
			if got%50_000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
		el, cpu := time.Since(start), cpuTime()-cpu0
		if got == 0 || got == n {
			b.Fatalf("filter kept %d of %d", got, n)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
		b.ReportMetric(float64(got), "matched")
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/row")
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")

	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), recipientsChildEnv+"="+e.path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("streaming process: %v", err)
	}
	var r recipientsChildResult
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("streaming process said %q: %v", out, err)
	}
	if r.Scanned != n || r.Matched == 0 {
		b.Fatalf("streaming process scanned %d rows and matched %d, want %d scanned", r.Scanned, r.Matched, n)
	}
	b.ReportMetric(float64(r.Scanned)/r.Seconds, "child-rows/s")
	b.ReportMetric(float64(r.HWMKiB)/1024, "child-peak-RSS-MB")
	b.ReportMetric(float64(r.HWMKiB-r.StartKiB)/1024, "child-RSS-growth-MB")
}

var benchFilter = &audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: []audience.Topic{audience.Policy, "semiconductors"}}

// recipientsChildEnv names the database a benchmark's child process
// streams (see TestMain).
const recipientsChildEnv = "TAYORI_SUBSCRIBERS_BENCH_STREAM"

type recipientsChildResult struct {
	Scanned, Matched int
	Seconds          float64
	StartKiB, HWMKiB int64 // VmRSS before streaming, VmHWM after
}

// TestMain runs the streaming process of BenchmarkRecipients when asked,
// else the tests.
func TestMain(m *testing.M) {
	if path := os.Getenv(recipientsChildEnv); path != "" {
		if err := streamRecipients(path); err != nil {
			fmt.Fprintln(os.Stderr, "stream recipients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func streamRecipients(path string) error {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	ring, err := token.NewKeyring(time.Now, testKeys...)
	if err != nil {
		return err
	}
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		return err
	}
	var r recipientsChildResult
	if r.StartKiB, err = testutil.ProcStatusKiB(0, "VmRSS"); err != nil {
		return err
	}
	start := time.Now()
	for _, err := range store.Recipients(ctx, subscribers.RecipientQuery{Filter: benchFilter}) {
		if err != nil {
			return err
		}
		r.Matched++
	}
	r.Seconds = time.Since(start).Seconds()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM subscribers`).Scan(&r.Scanned); err != nil {
		return err
	}
	if r.HWMKiB, err = testutil.ProcStatusKiB(0, "VmHWM"); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func reportMem(b *testing.B) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapSys)/(1<<20), "heap-sys-MiB")
}
