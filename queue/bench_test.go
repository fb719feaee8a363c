package queue_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/tayori-news/tayori/internal/store/schema"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/smtpsink"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// Benchmark knobs, from the environment so `make bench` can vary them.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type benchShape struct {
	name  string
	issue func(tb testing.TB) *compose.Issue
	prefs func(i int) audience.Prefs
}

var benchShapes = []benchShape{
	{name: "5KB", issue: smallIssue, prefs: func(int) audience.Prefs { return audience.All() }},
	{name: "November", issue: func(tb testing.TB) *compose.Issue { return loadIssue(tb, "aisi-monthly-2025-11.txt") },
		prefs: func(i int) audience.Prefs {
			// Five variants: four single-region readers and the whole issue
			// (the November issue has nothing for intl alone but reports).
			if i%5 == 4 {
				return audience.All()
			}
			return audience.Prefs{Regions: []audience.Region{audience.Regions[i%5]}, Topics: audience.StandardTopics}
		}},
}

// smallIssue is one short section: about 5 KB on the wire after base64.
func smallIssue(tb testing.TB) *compose.Issue {
	return &compose.Issue{
		Newsletter: "AI政策動向マンスリー情報", Slug: "bench-5kb", Title: "AI政策動向 ベンチマーク号",
		Sections: []compose.Section{{
			Heading: "国内AI政策動向", Title: "国内AI政策動向", Region: audience.JP, Kind: audience.Policy,
			Items: []compose.Item{{
				Dates:    compose.Dates{Text: "2025/11/04"},
				Headline: "総務省、AIセキュリティ分科会の第4回会合を開催",
				Body:     []string{"総務省は、AIセキュリティ分科会の第4回会合を開催し、AIの安全性評価について議論した。"},
				Links:    []string{"https://www.soumu.go.jp/"},
				Region:   audience.JP, Topics: []audience.Topic{audience.Policy},
			}},
		}},
	}
}

// benchDB returns a copy of a cached SQLite file holding n active readers
// of testList with the shape's preferences (built once per size and shape).
func benchDB(b *testing.B, shape benchShape, n int) string {
	b.Helper()
	// The cached readers' database is named for the schema it was made
	// with, so a schema change never reuses a stale one.
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("tayori-bench-%s-%d-%s.db", shape.name, n, schemaTag(b)))
	if _, err := os.Stat(cache); err != nil {
		b.Logf("building %s (%d readers, once)…", cache, n)
		tmp := cache + ".tmp"
		os.Remove(tmp)
		ctx := context.Background()
		db, err := sqlitedb.Open(ctx, tmp)
		if err != nil {
			b.Fatal(err)
		}
		ring, _ := token.NewKeyring(time.Now, testKeys...)
		store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
		if err != nil {
			b.Fatal(err)
		}
		// Stream a CSV through the importer (what `tayori subscribers
		// import` does): about 20,000 rows a second.
		res, err := store.Import(ctx, benchReadersCSV(shape, n), subscribers.ImportOptions{List: testList})
		if err != nil || len(res.Errors) > 0 {
			b.Fatalf("import: %v, %+v", err, res)
		}
		if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		db.Close()
		if err := os.Rename(tmp, cache); err != nil {
			b.Fatal(err)
		}
	}
	dst := filepath.Join(b.TempDir(), "tayori.db")
	in, err := os.Open(cache)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	out.Close()
	return dst
}

// benchReadersCSV streams the CSV of n readers of the shape's preferences.
func benchReadersCSV(shape benchShape, n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		fmt.Fprintln(w, "email,regions,topics,consent_at,consent_method,consent_text")
		for i := range n {
			regions, topics, _ := strings.Cut(shape.prefs(i).Key(), "|")
			fmt.Fprintf(w, "reader%07d@example.jp,%q,%q,2025-10-01,api,同意\n", i, regions, topics)
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

// BenchmarkDeliver sends TAYORI_BENCH_RECIPIENTS (default 100,000) copies
// through a worker process (this binary re-executed) to a counting SMTP
// sink on loopback, and reports messages/second from send to last
// acceptance, CPU per message of the worker and of Redis, the worker's
// peak RSS and Redis memory at its peak.
//
// Knobs: TAYORI_BENCH_CONCURRENCY (batch tasks at once, 8),
// TAYORI_BENCH_BATCH (readers per batch, 500), TAYORI_BENCH_PPROF (the
// worker's CPU profile to this file), TAYORI_BENCH_MEMPROF (the worker's
// heap profile nearest its peak to this file), TAYORI_BENCH_WORKER_PROCS (the
// worker's GOMAXPROCS), TAYORI_BENCH_FLUSH (the worker's group-commit
// interval, default 5ms), TAYORI_BENCH_WORKERS (worker processes, 1;
// each runs TAYORI_BENCH_CONCURRENCY batch tasks, worker-core-µs/msg is
// their sum and worker-peak-RSS-MB the largest), TAYORI_BENCH_READERS
// (BenchmarkDeliverStore: "postgres" imports the readers into the
// PostgreSQL database as well, instead of leaving them in SQLite).
//
// Targets on 2 cores: ≥ 6,000 msg/s (5KB), ≥ 4,000 msg/s (November),
// ≤ 70 core-µs per message on the sending side, peak RSS ≤ 150 MB, Redis
// ≤ 100 bytes per queued recipient.
func BenchmarkDeliver(b *testing.B) {
	n := benchEnv("TAYORI_BENCH_RECIPIENTS", 100_000)
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			for range b.N {
				benchDeliverOnce(b, shape, n, store.SQLite)
			}
		})
	}
}

// BenchmarkDeliverStore is BenchmarkDeliver's 5KB shape with the send
// ledger on each engine, in turn, in the same run: SQLite (the file that
// holds the readers) and PostgreSQL (a database of its own; the readers
// stay in the SQLite file). On PostgreSQL it also reports the CPU of the
// PostgreSQL backends serving the test's database (the parent's and the
// worker's connections), read from /proc for the pids pg_stat_activity
// lists, sampled every 25 ms, per message (pg-core-µs/msg), and that of
// the server's background processes (WAL writer, checkpointer, …; shared
// with any other user of the server) as pg-bg-core-µs/msg.
func BenchmarkDeliverStore(b *testing.B) {
	n := benchEnv("TAYORI_BENCH_RECIPIENTS", 100_000)
	for _, eng := range []store.Engine{store.SQLite, store.Postgres} {
		b.Run(string(eng)+"/5KB", func(b *testing.B) {
			for range b.N {
				benchDeliverOnce(b, benchShapes[0], n, eng)
			}
		})
	}
}

func benchDeliverOnce(b *testing.B, shape benchShape, n int, eng store.Engine) {
	dbPath := benchDB(b, shape, n)
	ctx := context.Background()
	rdb, rdbN := testutil.RedisDBNumber(b)
	// The same sink as `go run ./tools/smtpsink`, so other senders can be
	// measured against it.
	sink := smtpsink.New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go sink.Serve(ctx, ln)
	defer sink.Close()
	sinkURL := "smtp://" + ln.Addr().String() + "?tls=none"
	sdb, ledger := sqliteStore(b, dbPath)
	db := sdb.SQL
	var (
		ledgerURL string
		pg        *testutil.PGCPU
	)
	if eng == store.Postgres {
		ledgerURL = testutil.PostgresURL(b)
		pdb, err := store.Create(ctx, ledgerURL)
		if err != nil {
			b.Fatal(err)
		}
		defer pdb.Close()
		if err := store.Migrate(ctx, pdb); err != nil {
			b.Fatal(err)
		}
		ledger = store.Ledger(pdb)
		defer ledger.Close()
		pg = testutil.NewPGCPU(pdb.SQL)
	}
	ring, _ := token.NewKeyring(time.Now, testKeys...)
	subs, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		b.Fatal(err)
	}
	// TAYORI_BENCH_READERS=postgres puts the readers in the PostgreSQL
	// database too, as several machines would have them.
	childReaders := "sqlite"
	if pg != nil && os.Getenv("TAYORI_BENCH_READERS") == "postgres" {
		childReaders = ""
		pdb, err := store.Open(ctx, ledgerURL)
		if err != nil {
			b.Fatal(err)
		}
		defer pdb.Close()
		if subs, err = store.OpenSubscribers(ctx, pdb, subscribers.Options{Keyring: ring}); err != nil {
			b.Fatal(err)
		}
		res, err := subs.Import(ctx, benchReadersCSV(shape, n), subscribers.ImportOptions{List: testList})
		if err != nil || len(res.Errors) > 0 {
			b.Fatalf("import into PostgreSQL: %v, %+v", err, res)
		}
		if _, err := pdb.SQL.ExecContext(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
		pg.Sample(true)
	}
	deps := testDeps(b, subs, sinkURL, new(*mailer.Pool), nil, nil, 1)
	deps.Sender = nil
	// TAYORI_BENCH_CLICKS=1: the list counts clicks (package clicks), so
	// the send records its links and every copy carries counted links.
	countClicks := os.Getenv("TAYORI_BENCH_CLICKS") == "1"
	var counter *clicks.Counter
	if countClicks {
		if err := subs.SetListCountsClicks(ctx, testList, true); err != nil {
			b.Fatal(err)
		}
		ldb := sdb
		if eng == store.Postgres {
			if ldb, err = store.Open(ctx, ledgerURL); err != nil {
				b.Fatal(err)
			}
			defer ldb.Close()
		}
		if counter, err = benchClicks(ldb, subs, ring); err != nil {
			b.Fatal(err)
		}
		deps.Clicks = counter
	}
	svc, err := queue.New(ctx, ledger, rdb, queue.Config{From: testFrom, BaseURL: testBaseURL}, deps, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()

	conc := benchEnv("TAYORI_BENCH_CONCURRENCY", 8)
	workers := benchEnv("TAYORI_BENCH_WORKERS", 1)
	var children []*exec.Cmd
	for w := range workers {
		child := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		prof := os.Getenv("TAYORI_BENCH_PPROF")
		if prof != "" && w > 0 {
			prof += "." + strconv.Itoa(w)
		}
		child.Env = append(os.Environ(), childEnv+"=worker", "CHILD_DB="+dbPath, "CHILD_LEDGER="+ledgerURL, "CHILD_READERS="+childReaders,
			"CHILD_REDIS="+testutil.RedisDBURL(b, rdbN), "CHILD_SMTP="+sinkURL,
			"CHILD_CONCURRENCY="+strconv.Itoa(conc), "CHILD_SENDERS="+strconv.Itoa(conc),
			"CHILD_BATCH="+strconv.Itoa(benchEnv("TAYORI_BENCH_BATCH", 500)),
			"CHILD_PPROF="+prof, "CHILD_FLUSH="+os.Getenv("TAYORI_BENCH_FLUSH"))
		if countClicks {
			child.Env = append(child.Env, "CHILD_CLICKS=1")
		}
		if v := os.Getenv("TAYORI_BENCH_WORKER_PROCS"); v != "" {
			child.Env = append(child.Env, "GOMAXPROCS="+v) // the worker's only
		}
		child.Stdout, child.Stderr = os.Stderr, os.Stderr
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		defer child.Process.Kill()
		children = append(children, child)
	}
	time.Sleep(500 * time.Millisecond) // let them start and connect

	issue := shape.issue(b)
	vcs, _, err := svc.Preview(ctx, issue, testList, nil)
	if err != nil {
		b.Fatal(err)
	}
	var want int64
	for _, v := range vcs {
		want += v.Readers
	}
	cpu0, mem0, sys0 := refWork()
	memBase := redisInfoInt(b, rdb, "memory", "used_memory")
	cpuBase := redisCPU(b, rdb)
	peak := memBase
	if pg != nil {
		pg.Sample(true)
	}
	b.ResetTimer()
	start := time.Now()
	snd, err := svc.Create(ctx, queue.NewSend{Issue: issue, List: testList})
	if err != nil {
		b.Fatal(err)
	}
	deadline := start.Add(5 * time.Minute)
	for sink.Stats().Messages < want {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d messages after 5 minutes", sink.Stats().Messages, want)
		}
		if m := redisInfoInt(b, rdb, "memory", "used_memory"); m > peak {
			peak = m
		}
		if pg != nil {
			pg.Sample(false)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if pg != nil {
		pg.Sample(false)
	}
	st := sink.Stats()
	elapsed := st.Last.Sub(start)
	b.StopTimer()
	var childCPU time.Duration
	var rss int64
	for _, child := range children {
		childCPU += procCPU(b, child.Process.Pid)
		rss = max(rss, procHWM(b, child.Process.Pid))
	}
	redisCPUUsed := redisCPU(b, rdb) - cpuBase
	for _, child := range children {
		child.Process.Signal(syscall.SIGTERM)
	}
	for _, child := range children {
		child.Wait()
	}
	cpu1, mem1, sys1 := refWork()
	s, err := svc.Get(ctx, snd.ID)
	if err != nil {
		b.Fatal(err)
	}
	if s.Counts.Sent != want || len(vcs) != map[string]int{"5KB": 1, "November": 5}[shape.name] {
		b.Errorf("counts %+v in %d variants, want %d sent", s.Counts, len(vcs), want)
	}
	if countClicks {
		links, err := counter.SendLinks(ctx, snd.ID)
		if err != nil || len(links) == 0 {
			b.Fatalf("TAYORI_BENCH_CLICKS=1 but the send counted no link: %v", err)
		}
		b.ReportMetric(float64(len(links)), "counted-links")
	}
	n = int(want)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(childCPU.Seconds()*1e6/float64(n), "worker-core-µs/msg")
	b.ReportMetric(redisCPUUsed*1e6/float64(n), "redis-core-µs/msg")
	b.ReportMetric(float64(rss)/(1<<20), "worker-peak-RSS-MB")
	b.ReportMetric(float64(peak-memBase)/(1<<20), "redis-peak-MB")
	b.ReportMetric(float64(st.Bytes)/float64(st.Messages), "bytes/msg")
	ms := func(a, b time.Duration) float64 { return float64((a+b)/2) / float64(time.Millisecond) }
	if pg != nil {
		back, bg := pg.Used()
		b.ReportMetric(back.Seconds()*1e6/float64(n), "pg-core-µs/msg")
		b.ReportMetric(bg.Seconds()*1e6/float64(n), "pg-bg-core-µs/msg")
		b.Logf("PostgreSQL backends CPU %v, background %v", back.Round(time.Millisecond), bg.Round(time.Millisecond))
	}
	b.ReportMetric(ms(cpu0, cpu1), "ref-cpu-ms")
	b.ReportMetric(ms(mem0, mem1), "ref-mem-ms")
	b.ReportMetric(ms(sys0, sys1), "ref-sys-ms")
	b.ReportMetric(float64(workers), "workers")
	b.Logf("%s: %d messages in %v with %d worker processes; workers' CPU %v, Redis CPU %.2fs, worker peak RSS %d MB, Redis +%d KB at peak",
		shape.name, n, elapsed.Round(time.Millisecond), workers, childCPU.Round(time.Millisecond), redisCPUUsed, rss>>20, (peak-memBase)>>10)
}

// benchClicks is the click counter on the ledger's database ldb, with the
// list setting of subs, as cmd/tayori wires it.
func benchClicks(ldb *store.DB, subs *subscribers.Store, ring *token.Keyring) (*clicks.Counter, error) {
	signer, err := clicks.NewSigner(ring)
	if err != nil {
		return nil, err
	}
	return clicks.New(store.Clicks(ldb), subs, signer, clicks.Config{BaseURL: testBaseURL})
}

// refWork times three fixed pieces of work, run before and after each
// delivery run and reported as ref-cpu-ms (SHA-256 of 16 MiB), ref-mem-ms
// (4 million dependent reads scattered over 64 MiB) and ref-sys-ms (200,000
// getppid system calls). This machine's speed drifts with its host, which
// does not report stolen time, so the same binary's CPU per message varies
// from run to run and day to day; the references show how fast the machine
// was when a figure was taken (lower is faster).
func refWork() (cpu, mem, sys time.Duration) {
	buf := make([]byte, 64<<10)
	t := time.Now()
	for range 256 {
		sha256.Sum256(buf)
	}
	cpu = time.Since(t)
	next := make([]uint32, 16<<20) // 64 MiB: one random cycle (Sattolo's shuffle)
	for i := range next {
		next[i] = uint32(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := len(next) - 1; i > 0; i-- {
		k := r.IntN(i)
		next[i], next[k] = next[k], next[i]
	}
	t = time.Now()
	var j uint32
	for range 4 << 20 {
		j = next[j]
	}
	mem = time.Since(t)
	refSink = j
	t = time.Now()
	for range 200_000 {
		syscall.Getppid()
	}
	sys = time.Since(t)
	return cpu, mem, sys
}

var refSink uint32

func redisInfoInt(tb testing.TB, rdb *redis.Client, section, key string) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Fatalf("no %s in INFO %s", key, section)
	return 0
}

// redisCPU returns Redis's user+system CPU seconds so far (the whole
// server: other users of it count too).
func redisCPU(tb testing.TB, rdb *redis.Client) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(l, k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
	}
	return sum
}

// procCPU reads a process's user+system CPU time from /proc.
func procCPU(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// procHWM reads a process's peak resident set size (VmHWM) in bytes.
func procHWM(tb testing.TB, pid int) int64 {
	kib, err := testutil.ProcStatusKiB(pid, "VmHWM")
	if err != nil {
		tb.Fatal(err)
	}
	return kib << 10
}

// BenchmarkPlanRedisMemory plans a send of TAYORI_BENCH_RECIPIENTS readers
// with no worker running, so every batch waits in Redis, and reports
// Redis memory per queued recipient (target ≤ 100 bytes).
func BenchmarkPlanRedisMemory(b *testing.B) {
	n := benchEnv("TAYORI_BENCH_RECIPIENTS", 100_000)
	shape := benchShapes[1]
	for range b.N {
		dbPath := benchDB(b, shape, n)
		ctx := context.Background()
		rdb := testutil.RedisDB(b)
		sdb, ledger := sqliteStore(b, dbPath)
		db := sdb.SQL
		ring, _ := token.NewKeyring(time.Now, testKeys...)
		store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
		if err != nil {
			b.Fatal(err)
		}
		deps := testDeps(b, store, "smtp://127.0.0.1:1?tls=none", new(*mailer.Pool), nil, nil, 1)
		svc, err := queue.New(ctx, ledger, rdb, queue.Config{From: testFrom, BaseURL: testBaseURL,
			BatchSize: benchEnv("TAYORI_BENCH_BATCH", 500)}, deps, nil)
		if err != nil {
			b.Fatal(err)
		}
		before := redisInfoInt(b, rdb, "memory", "used_memory")
		snd, err := svc.Create(ctx, queue.NewSend{Issue: shape.issue(b), List: testList})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		res, err := svc.Plan(ctx, snd.ID)
		if err != nil {
			b.Fatal(err)
		}
		planTime := time.Since(start)
		after := redisInfoInt(b, rdb, "memory", "used_memory")
		b.ReportMetric(float64(after-before)/float64(res.Planned), "redis-bytes/queued-recipient")
		b.ReportMetric(float64(res.Planned)/planTime.Seconds(), "planned/s")
		b.Logf("planned %d in %d batches in %v; Redis +%d bytes", res.Planned, res.Batches, planTime, after-before)
		svc.Close()
		db.Close()
	}
}

// schemaTag is a short hash of the SQLite schema files.
func schemaTag(tb testing.TB) string {
	h := sha256.New()
	err := fs.WalkDir(schema.SQLite(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(schema.SQLite(), path)
		h.Write([]byte(path))
		h.Write(data)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
