package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/templates"
)

const (
	testFrom    = "AI政策動向 <newsletter@news.example.go.jp>"
	testBaseURL = "https://news.example.go.jp"
	testList    = "monthly"
)

var testKeys = []token.Key{{ID: "k1", Secret: []byte("queue-test-secret-0123456789abcdef")}}

// env is one test's real parts: SQLite file, subscriber store, renderer,
// mailer pool against the in-process SMTP server, Redis DB and the queue.
type env struct {
	t   testing.TB
	ctx context.Context
	// db is the ledger's database (engine), subDB the subscribers': one
	// SQLite file, or one PostgreSQL database.
	db     *sql.DB
	engine string
	subDB  *sql.DB
	dbPath string
	// ledgerURL is the ledger's store for worker processes, "" when it
	// is the SQLite file at dbPath.
	ledgerURL string
	rdb       *redis.Client
	rdbN      int
	store     *subscribers.Store
	ledger    queue.Ledger
	clicks    *clicks.Counter // with envOpts.clicks
	smtp      *testutil.SMTPServer
	pool      *mailer.Pool
	svc       *queue.Service
	cfg       queue.Config
	stop      func()

	concurrency int
	wg          sync.WaitGroup
}

// startWorker runs the queue's Asynq server in this process until the
// test ends, with short polling intervals.
func (e *env) startWorker() {
	srv := e.svc.NewServer(queue.ServerConfig{
		Concurrency: e.concurrency, ShutdownTimeout: 5 * time.Second,
		TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
	})
	e.wg.Add(1)
	go func() { defer e.wg.Done(); srv.Run(e.ctx) }()
}

type envOpts struct {
	smtp        []testutil.SMTPOption
	redis       *redis.Client // default: a database of the test Redis
	cfg         queue.Config
	noWorker    bool
	concurrency int
	pool        func(*mailer.PoolOptions) // adjusts the mailer pool's options
	dbDir       string                    // where the SQLite file goes; default a temporary directory
	// directory, if set, wraps the real subscriber store as the queue sees it.
	directory func(queue.Directory) queue.Directory
	events    queue.Events // told of sends starting, finishing and pausing
	// engine is the ledger's database engine; default SQLite.
	engine testutil.Engine
	// clicks wires the aggregate click counter (package clicks) on the
	// store's database; a list counts clicks only once it is set to.
	clicks bool
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx}
	dir := o.dbDir
	if dir == "" {
		dir = t.TempDir()
	}
	e.dbPath = filepath.Join(dir, "tayori.db")
	sdb, err := store.Create(ctx, "sqlite:"+e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	e.subDB, e.engine = sdb.SQL, string(store.SQLite)
	subsDB := sdb // the subscribers' store: the ledger's database
	if o.engine.Name == store.Postgres {
		e.ledgerURL = o.engine.URL(t)
		pg, err := store.Create(ctx, e.ledgerURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx, pg); err != nil {
			t.Fatal(err)
		}
		e.db, e.engine = pg.SQL, string(pg.Engine)
		e.ledger = store.Ledger(pg)
		e.subDB, subsDB = pg.SQL, pg
	} else {
		if err := store.Migrate(ctx, sdb); err != nil {
			t.Fatal(err)
		}
		e.db = sdb.SQL
		e.ledger = store.Ledger(sdb)
	}
	ring, err := token.NewKeyring(time.Now, testKeys...)
	if err != nil {
		t.Fatal(err)
	}
	e.store, err = store.OpenSubscribers(ctx, subsDB, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if o.redis != nil {
		e.rdb = o.redis
	} else {
		e.rdb, e.rdbN = testutil.RedisDBNumber(t)
	}
	e.smtp = testutil.StartSMTP(t, o.smtp...)
	var tune []func(*mailer.PoolOptions)
	if o.pool != nil {
		tune = append(tune, o.pool)
	}
	deps := testDeps(t, e.store, e.smtp.URL(), &e.pool, nil, nil, 16, tune...)
	if o.directory != nil {
		deps.Directory = o.directory(deps.Directory)
	}
	deps.Events = o.events
	if o.clicks {
		signer, err := clicks.NewSigner(ring)
		if err != nil {
			t.Fatal(err)
		}
		if e.clicks, err = clicks.New(store.Clicks(subsDB), e.store, signer, clicks.Config{BaseURL: testBaseURL}); err != nil {
			t.Fatal(err)
		}
		deps.Clicks = e.clicks
	}
	cfg := o.cfg
	cfg.From, cfg.BaseURL = testFrom, testBaseURL
	if cfg.RetryBase == 0 {
		cfg.RetryBase, cfg.RetryMax = 200*time.Millisecond, 400*time.Millisecond
	}
	if cfg.PauseRecheck == 0 {
		cfg.PauseRecheck = 200 * time.Millisecond
	}
	if cfg.FeedbackID == "" {
		cfg.FeedbackID = "jpaipol01"
	}
	e.cfg = cfg
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.svc, err = queue.New(ctx, e.ledger, e.rdb, cfg, deps, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.concurrency = max(o.concurrency, 4)
	if !o.noWorker {
		e.startWorker()
	}
	e.stop = sync.OnceFunc(func() {
		cancel()
		e.wg.Wait()
		e.svc.Close()
		e.pool.Close()
		e.ledger.Close()
		if e.db != sdb.SQL {
			e.db.Close()
		}
		sdb.Close()
	})
	t.Cleanup(e.stop)
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// testDeps wires the real store, renderer and mailer to the queue.
func testDeps(t testing.TB, store *subscribers.Store, smtpURL string, poolOut **mailer.Pool, lim mailer.Limiter, slots mailer.Slots, maxIdle int, tune ...func(*mailer.PoolOptions)) queue.Deps {
	t.Helper()
	r, err := templates.New(templates.Config{
		SenderName: "AIセーフティ・インスティテュート", PostalAddress: "東京都港区六本木1-1-1",
		Contact: "https://news.example.go.jp/contact",
	})
	if err != nil {
		t.Fatal(err)
	}
	relay, err := mailer.ParseSMTPURL(smtpURL)
	if err != nil {
		t.Fatal(err)
	}
	opts := mailer.PoolOptions{MaxIdle: maxIdle, HELO: "worker.example.go.jp"}
	if lim != nil {
		opts.Limiter = lim
	}
	if slots != nil {
		opts.Slots = slots
	}
	for _, f := range tune {
		f(&opts)
	}
	pool, err := mailer.NewPool(relay, opts)
	if err != nil {
		t.Fatal(err)
	}
	*poolOut = pool
	b, err := mailer.NewBuilder(mailer.BuilderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tagger, err := feedback.NewTaggerKeys(testKeys, feedback.TaggerConfig{Domain: "news.example.go.jp"})
	if err != nil {
		t.Fatal(err)
	}
	return queue.Deps{
		Directory: bind.Directory{Store: store},
		Tokens:    store,
		Renderer:  bind.Renderer{R: r},
		Sender:    &bind.Sender{Builder: b, Pool: pool, Tagger: tagger},
		Classify:  bind.Classify,
	}
}

// addReader adds an active subscriber of testList.
func (e *env) addReader(email, name string, p audience.Prefs) subscribers.Subscriber {
	e.t.Helper()
	s, err := e.store.Add(e.ctx, subscribers.NewSubscriber{
		Email: email, Name: name, Prefs: &p, Lists: []string{testList}, Method: subscribers.API,
		Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, FormVersion: "test", Text: "同意します"},
		Cause:   "test",
	})
	if err != nil {
		e.t.Fatalf("add %s: %v", email, err)
	}
	return s
}

func loadIssue(t testing.TB, name string) *compose.Issue {
	t.Helper()
	is, err := compose.Load(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// waitState polls until the send reaches want.
func (e *env) waitState(id int64, want queue.State, timeout time.Duration) *queue.Send {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := e.svc.Get(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if s.State == want {
			e.checkCounts(s)
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("send %d: state %s, want %s (counts %+v, last error %q, pause %q)", id, s.State, want, s.Counts, s.LastError, s.PauseReason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCounts compares a send's kept counts (what a progress read
// returns) with a full recount of its rows.
func (e *env) checkCounts(s *queue.Send) {
	e.t.Helper()
	kept, c, err := queue.KeptAndRecount(e.ctx, e.svc, s.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if kept != c {
		e.t.Errorf("send %d (%s): kept counts %+v, a recount %+v", s.ID, s.State, kept, c)
	}
}

func prefs(regions string, topics string) audience.Prefs {
	rs, err := audience.ParseRegions(regions)
	if err != nil {
		panic(err)
	}
	ts, err := audience.ParseTopics(topics)
	if err != nil {
		panic(err)
	}
	return audience.Prefs{Regions: rs, Topics: ts}
}

var _ = fmt.Sprint
var _ = os.Getenv

type testutilOpt = testutil.SMTPOption

func failTimes(addr string, n, code int, enh string) testutil.SMTPOption {
	return testutil.FailRcptTimes(addr, n, testutil.Reply(code, enh, "test failure"))
}

func failAlways(addr string, code int, enh string) testutil.SMTPOption {
	return testutil.FailRcpt(addr, testutil.Reply(code, enh, "test refusal"))
}

type deliveryRow struct {
	status    string
	permanent bool
	attempts  int
	reply     string
	variant   string
}

// delivery reads the delivery row of a reader, by address.
func (e *env) delivery(sendID int64, email string) deliveryRow {
	e.t.Helper()
	s, err := e.store.FindByEmail(e.ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	var d deliveryRow
	err = e.queryRow(`SELECT status, permanent, attempts, reply, variant FROM delivery_state
		WHERE send_id = ? AND subscriber_id = ?`, sendID, s.ID).Scan(&d.status, &d.permanent, &d.attempts, &d.reply, &d.variant)
	if err != nil {
		e.t.Fatalf("delivery of %s: %v", email, err)
	}
	return d
}

func subscribersUpdate(p audience.Prefs) subscribers.Update { return subscribers.Update{Prefs: &p} }

// exec runs a statement on the ledger's database, placeholders written ?.
func (e *env) exec(q string, args ...any) (sql.Result, error) {
	return e.db.ExecContext(e.ctx, queue.Rebind(e.engine, q), args...)
}

// queryRow reads a row of the ledger's database, placeholders written ?.
func (e *env) queryRow(q string, args ...any) *sql.Row {
	return e.db.QueryRowContext(e.ctx, queue.Rebind(e.engine, q), args...)
}

// forEngines runs test once per database engine of the ledger, as subtests.
func forEngines(t *testing.T, test func(t *testing.T, eng testutil.Engine)) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { test(t, eng) })
	}
}

// sqliteStore opens (creating) the SQLite file at path as Tayori's store,
// with the schema, and its ledger; both are closed when the test ends.
func sqliteStore(tb testing.TB, path string) (*store.DB, queue.Ledger) {
	tb.Helper()
	sdb, err := store.Create(context.Background(), "sqlite:"+path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := store.Migrate(context.Background(), sdb); err != nil {
		tb.Fatal(err)
	}
	l := store.Ledger(sdb)
	tb.Cleanup(func() { l.Close(); sdb.Close() })
	return sdb, l
}

// query reads rows of the ledger's database, placeholders written ?.
func (e *env) query(q string, args ...any) (*sql.Rows, error) {
	return e.db.QueryContext(e.ctx, queue.Rebind(e.engine, q), args...)
}
