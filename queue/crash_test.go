package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	tstore "github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// The test binary re-executes itself as a worker process when this
// variable is set (see TestMain).
const childEnv = "TAYORI_QUEUE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "worker" {
		if err := runChildWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "child worker:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChildWorker is a worker process on the parent test's SQLite file,
// Redis database and SMTP server; it runs until killed.
func runChildWorker() error {
	ctx := context.Background()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as `tayori worker` does (cmd/tayori/worker.go)
	}
	db, err := sqlitedb.Open(ctx, os.Getenv("CHILD_DB"))
	if err != nil {
		return err
	}
	ring, err := token.NewKeyring(time.Now, testKeys...)
	if err != nil {
		return err
	}
	// The store: the SQLite file, or the database CHILD_LEDGER names
	// (readers and ledger alike, as a worker has them).
	ldb := &tstore.DB{SQL: db, Engine: tstore.SQLite}
	if u := os.Getenv("CHILD_LEDGER"); u != "" {
		if ldb, err = tstore.Open(ctx, u); err != nil {
			return err
		}
	}
	if err := tstore.Migrate(ctx, ldb); err != nil {
		return err
	}
	// CHILD_READERS=sqlite keeps the readers in the SQLite file beside a
	// PostgreSQL ledger (the delivery benchmark's ledger comparison).
	rdb0 := ldb
	if os.Getenv("CHILD_READERS") == "sqlite" {
		rdb0 = &tstore.DB{SQL: db, Engine: tstore.SQLite}
	}
	store, err := tstore.OpenSubscribers(ctx, rdb0, subscribers.Options{Keyring: ring})
	if err != nil {
		return err
	}
	opt, err := redis.ParseURL(os.Getenv("CHILD_REDIS"))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	var pool *mailer.Pool
	senders, _ := strconv.Atoi(os.Getenv("CHILD_SENDERS"))
	deps := testDeps(childTB{}, store, os.Getenv("CHILD_SMTP"), &pool, nil, nil, max(senders, 16))
	if os.Getenv("CHILD_CLICKS") == "1" { // counted clicks, as cmd/tayori wires them
		if deps.Clicks, err = benchClicks(ldb, store, ring); err != nil {
			return err
		}
	}
	conc, _ := strconv.Atoi(os.Getenv("CHILD_CONCURRENCY"))
	batch, _ := strconv.Atoi(os.Getenv("CHILD_BATCH"))
	flush, _ := time.ParseDuration(os.Getenv("CHILD_FLUSH"))
	svc, err := queue.New(ctx, tstore.Ledger(ldb), rdb, queue.Config{
		From: testFrom, BaseURL: testBaseURL, FeedbackID: "jpaipol01", BatchSize: batch, Senders: senders,
		RetryBase: 200 * time.Millisecond, RetryMax: 400 * time.Millisecond, FlushInterval: flush,
	}, deps, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	srv := svc.NewServer(queue.ServerConfig{Concurrency: conc, TaskCheckInterval: 20 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond})
	if mp := os.Getenv("TAYORI_BENCH_MEMPROF"); mp != "" {
		// The heap profile as the heap in use grows by 4 MB steps, so
		// that the file left holds the profile nearest the peak.
		go func() {
			var peak uint64
			for {
				time.Sleep(100 * time.Millisecond)
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak+(4<<20) {
					peak = ms.HeapInuse
					f, _ := os.Create(mp)
					pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
					fmt.Fprintf(os.Stderr, "MEMPROF heap inuse %d MB sys %d MB\n", ms.HeapInuse>>20, ms.Sys>>20)
				}
			}
		}()
	}
	if os.Getenv("CHILD_PPROF") != "" {
		f, err := os.Create(os.Getenv("CHILD_PPROF"))
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		rctx, cancel := context.WithCancel(ctx)
		go func() { <-sig; cancel() }()
		err = srv.Run(rctx)
		pprof.StopCPUProfile()
		f.Close()
		return err
	}
	sctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	return srv.Run(sctx) // until SIGTERM or SIGKILL
}

// childTB lets the child reuse testDeps; it has no test to fail.
type childTB struct{ testing.TB }

func (childTB) Helper()           {}
func (childTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
func (childTB) Fatalf(f string, args ...any) {
	fmt.Fprintf(os.Stderr, f+"\n", args...)
	os.Exit(2)
}

func TestWorkerKilledMidSendLosesNoneDuplicatesOnlyInFlight(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		const readers, childConc = 300, 4
		slow := testutil.FailFunc(func(string, int) *testutil.Fault { f := testutil.Slow(5 * time.Millisecond); return &f })
		e := newEnv(t, envOpts{engine: eng, noWorker: true, smtp: []testutil.SMTPOption{slow}, cfg: queue.Config{BatchSize: 25}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for i := range readers {
			e.addReader(fmt.Sprintf("r%03d@example.jp", i), "", audience.All())
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}

		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), childEnv+"=worker", "CHILD_DB="+e.dbPath, "CHILD_LEDGER="+e.ledgerURL,
			"CHILD_REDIS="+testutil.RedisDBURL(t, e.rdbN), "CHILD_SMTP="+e.smtp.URL(),
			"CHILD_CONCURRENCY="+strconv.Itoa(childConc))
		child.Stdout, child.Stderr = os.Stderr, os.Stderr
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		defer child.Process.Kill()
		// Kill it hard part way through the send.
		deadline := time.Now().Add(30 * time.Second)
		for len(e.smtp.Messages()) < readers/3 {
			if time.Now().After(deadline) {
				t.Fatalf("child sent only %d messages", len(e.smtp.Messages()))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := child.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		child.Wait()
		atKill := len(e.smtp.Messages())
		t.Logf("child killed after %d of %d messages", atKill, readers)
		if atKill >= readers {
			t.Fatalf("the child finished before it was killed")
		}

		// The dead worker's tasks hold 30 s leases in asynq; let them run out
		// now instead of waiting (asynq's own tests move the clock the same way).
		leases, err := e.rdb.ZRange(e.ctx, "asynq:{"+queue.QueueNewsletter+"}:lease", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range leases {
			e.rdb.ZAdd(e.ctx, "asynq:{"+queue.QueueNewsletter+"}:lease", redis.Z{Score: 1, Member: id})
		}
		e.startWorker() // a second worker, in this process, finishes the send
		done := e.waitState(snd.ID, queue.Done, 60*time.Second)
		if done.Counts.Sent != readers {
			t.Errorf("counts %+v, want %d sent", done.Counts, readers)
		}
		dups := 0
		for i := range readers {
			n := len(e.smtp.MessagesTo(fmt.Sprintf("r%03d@example.jp", i)))
			if n == 0 {
				t.Errorf("r%03d lost: no message", i)
			}
			dups += max(n-1, 0)
		}
		// Per sending goroutine: the copies sent on its connection whose
		// replies were not read yet (at most MaxInFlight), and about one
		// copy answered but not committed (a 5 ms group-commit window against
		// a relay taking 5 ms a message).
		bound := childConc * (mailer.MaxInFlight + 1)
		t.Logf("%d duplicates (bound %d)", dups, bound)
		if dups > bound {
			t.Errorf("%d duplicates, more than the %d copies that can be in flight", dups, bound)
		}
	})
}
