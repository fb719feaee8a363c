package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/internal/metrics"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/templates"
	"github.com/tayori-news/tayori/web"
	"github.com/tayori-news/tayori/webhooks"
	"github.com/tayori-news/tayori/welcome"
)

const (
	testFrom   = "AI政策動向 <newsletter@news.example.jp>"
	testSender = "AIセーフティ・インスティテュート"
	testList   = "monthly"
)

var (
	keyK1 = token.Key{ID: "k1", Secret: []byte("web-test-secret-k1-0123456789abcdef")}
	keyK2 = token.Key{ID: "k2", Secret: []byte("web-test-secret-k2-0123456789abcdef")}
)

// clock is a test clock that can jump forward.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// env is one test's real parts: a SQLite file, the subscriber store, the
// web store, a Redis DB of its own, the queue with (optionally) a worker
// delivering to the in-process SMTP server, and the web server on a
// loopback port.
type env struct {
	t       testing.TB
	ctx     context.Context
	clock   *clock
	db      *sql.DB
	sdb     *store.DB // db with its engine, for the store.* constructors
	dbPath  string
	rdb     *redis.Client
	subs    *subscribers.Store
	store   *web.Store
	svc     *queue.Service
	smtp    *testutil.SMTPServer
	srv     *httptest.Server
	handler http.Handler
	// active is the handler the test server serves with; restartWeb
	// replaces it as a restarted server process would.
	active atomic.Pointer[http.Handler]
	// restartWeb builds the web handler afresh over the same database
	// (a server restart: nothing kept in memory survives).
	restartWeb func()
	cfg        web.Config
	keys       []token.Key
	wg         sync.WaitGroup
	webhooks   *webhooks.Service // with envOpts.webhooks
	welcome    *welcome.Service  // with envOpts.welcome
	sinks      []subscribers.Events
	// mx are the process's metrics: the queue's, the web server's, served
	// on /metrics when cfg.MetricsToken is set.
	mx *metrics.Metrics
	// clicks is the aggregate click counter (package clicks).
	clicks *clicks.Counter
}

type envOpts struct {
	worker bool // run a queue worker delivering to the SMTP server
	// reconcile is the queue's ReconcileInterval (default its own, 30s).
	reconcile time.Duration
	cfg       web.Config  // overrides (BaseURL is set to the test server's)
	keys      []token.Key // token keys, newest first; default k1
	db        string      // reuse this database file (key rotation)
	smtp      []testutil.SMTPOption
	gate      bool // the send gate of package feedback, in the queue and the console
	webURL    bool // copies link to their web version (<base>/issues/{slug}), as cmd/tayori sets it
	// webhooks wires package webhooks (outbox, worker, console and API)
	// with these settings.
	webhooks *webhooks.Config
	welcome  bool // the welcome mail (package welcome)
	rhythm   bool // the recurring send rules (package rhythm)
}

// testEngine is the database engine newEnv opens: SQLite, except while
// TestOnPostgreSQL runs the journeys again on PostgreSQL (the web tests
// do not run in parallel).
var testEngine = store.SQLite

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx, clock: &clock{}}
	var sdb *store.DB
	if testEngine == store.Postgres && o.db == "" {
		sdb = testutil.OpenStore(t, testutil.EngineByName(t, string(store.Postgres)))
	} else {
		e.dbPath = o.db
		if e.dbPath == "" {
			e.dbPath = filepath.Join(t.TempDir(), "tayori.db")
		}
		var err error
		if sdb, err = store.Create(ctx, "sqlite:"+e.dbPath); err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx, sdb); err != nil {
			t.Fatal(err)
		}
	}
	db := sdb.SQL
	e.db, e.sdb = db, sdb
	e.keys = o.keys
	if len(e.keys) == 0 {
		e.keys = []token.Key{keyK1}
	}
	ring, err := token.NewKeyring(e.clock.Now, e.keys...)
	if err != nil {
		t.Fatal(err)
	}
	if e.subs, err = store.OpenSubscribers(ctx, sdb, subscribers.Options{Keyring: ring}); err != nil {
		t.Fatal(err)
	}
	e.store = web.NewStore(store.Web(sdb), e.clock.Now)
	e.rdb = testutil.RedisDB(t)
	e.smtp = testutil.StartSMTP(t, o.smtp...)

	// The listener comes first: the base URL goes into every link.
	e.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + e.srv.Listener.Addr().String()

	tcfg := templates.Config{SenderName: testSender, PostalAddress: "東京都港区六本木1-1-1",
		Contact: "https://news.example.jp/contact"}
	if o.webURL {
		tcfg.WebURL = base + "/issues/{slug}"
	}
	renderer, err := templates.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := mailer.ParseSMTPURL(e.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mailer.NewPool(relay, mailer.PoolOptions{MaxIdle: 4, HELO: "web-test.example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mailer.NewBuilder(mailer.BuilderOptions{AllowInsecureUnsubscribe: true})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.mx = metrics.New(logger)
	signer, err := clicks.NewSigner(ring)
	if err != nil {
		t.Fatal(err)
	}
	// Click counting is wired as cmd/tayori wires it; lists count nothing
	// until set to.
	if e.clicks, err = clicks.New(store.Clicks(sdb), e.subs, signer, clicks.Config{BaseURL: base, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	qdeps := queue.Deps{Directory: bind.Directory{Store: e.subs}, Tokens: e.subs, Renderer: bind.Renderer{R: renderer},
		Sender: &bind.Sender{Builder: b, Pool: pool}, Classify: bind.Classify, Metrics: e.mx, Clicks: e.clicks}
	// The send ledger, in the same database.
	ledger := store.Ledger(sdb)
	t.Cleanup(func() { ledger.Close() })
	var gate *feedback.Gate
	if o.gate {
		if gate, err = bind.SendGate(ledger, e.subs, e.clock.Now); err != nil {
			t.Fatal(err)
		}
		qdeps.Gate = bind.Gate(gate)
	}
	if o.webhooks != nil {
		e.wireWebhooks(*o.webhooks, &qdeps, logger)
	}
	e.svc, err = queue.New(ctx, ledger, e.rdb, queue.Config{From: testFrom, BaseURL: base, FeedbackID: "jpaipol01",
		RetryBase: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond, PauseRecheck: 100 * time.Millisecond,
		ReconcileInterval: o.reconcile},
		qdeps, logger)
	if err != nil {
		t.Fatal(err)
	}
	if o.welcome {
		e.wireWelcome(base, logger)
	}
	e.subs.SetEvents(e.sinks...)
	if o.worker {
		e.startWorker()
	}

	e.cfg = o.cfg
	e.cfg.BaseURL = base
	e.cfg.SenderName = testSender
	e.cfg.PostalAddress = "東京都港区六本木1-1-1"
	e.cfg.Contact = "info@news.example.jp"
	deps := web.Deps{
		Subscribers: e.subs, Store: e.store, Sends: e.svc, Renderer: renderer, Redis: e.rdb, Now: e.clock.Now,
		Failures: e.svc.Failures, Deliveries: e.svc.DeliveryHistory, Relay: e.svc.RelayState,
		Metrics: e.mx, MetricsHandler: e.mx.Handler(), Tasks: asynq.NewInspectorFromRedisClient(e.rdb),
		Clicks: e.clicks, Lists: e.subs,
	}
	if gate != nil {
		deps.Gate = gate
	}
	if e.webhooks != nil {
		deps.Webhooks = e.webhooks
	}
	if e.welcome != nil {
		deps.Welcome = e.welcome
	}
	if o.rhythm {
		deps.Rhythm = e.rhythmRunner()
	}
	e.handler, err = web.NewServer(logger, e.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	e.active.Store(&e.handler)
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*e.active.Load()).ServeHTTP(w, r) })
	e.restartWeb = func() {
		d := deps
		d.Store = web.NewStore(store.Web(sdb), e.clock.Now)
		h, err := web.NewServer(logger, e.cfg, d)
		if err != nil {
			t.Fatal(err)
		}
		e.active.Store(&h)
	}
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		e.wg.Wait()
		e.svc.Close()
		pool.Close()
		db.Close()
	})
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// client returns an HTTP client that does not follow redirects and keeps
// no cookies (like a mail provider's one-click POST).
func (e *env) client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// browser returns a client with a cookie jar that follows no redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := e.client()
	c.Jar = jar
	return c
}

// do sends a request and returns the response with its body read.
func (e *env) do(c *http.Client, method, path string, body io.Reader, header ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, string(b)
}

// postForm posts url-encoded values.
func (e *env) postForm(c *http.Client, path string, v url.Values, header ...string) (*http.Response, string) {
	e.t.Helper()
	return e.do(c, http.MethodPost, path, strings.NewReader(v.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, header...)...)
}

func signupForm(email string) url.Values {
	return url.Values{"email": {email}, "name": {"山田 太郎"}, "region": {"jp", "eu"}, "topic": {"policy", "reports"},
		"consent": {"yes"}, "lang": {"ja"}, "consent_version": {web.ConsentVersion}}
}

// addActive adds an active subscriber with recorded consent.
func (e *env) addActive(email string) subscribers.Subscriber {
	e.t.Helper()
	p := audience.All()
	s, err := e.subs.Add(e.ctx, subscribers.NewSubscriber{Email: email, Name: "読者", Prefs: &p, Lists: []string{testList},
		Method: subscribers.API, Cause: "test",
		Consent: &subscribers.Consent{At: e.clock.Now(), Method: subscribers.API, FormVersion: "test", Text: "同意します"}})
	if err != nil {
		e.t.Fatalf("add %s: %v", email, err)
	}
	return s
}

func (e *env) subscriber(email string) subscribers.Subscriber {
	e.t.Helper()
	s, err := e.subs.FindByEmail(e.ctx, email)
	if err != nil {
		e.t.Fatalf("find %s: %v", email, err)
	}
	return s
}

// queuedMessages returns the transactional messages waiting in Redis (when
// no worker runs).
func (e *env) queuedMessages() []queue.TransactionalMessage {
	e.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	tasks, err := insp.ListPendingTasks(queue.QueueTransactional, asynq.PageSize(100000))
	if err != nil && !strings.Contains(err.Error(), "not found") {
		e.t.Fatal(err)
	}
	var out []queue.TransactionalMessage
	for _, ti := range tasks {
		var m queue.TransactionalMessage
		if err := json.Unmarshal(ti.Payload, &m); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

var confirmLinkRE = regexp.MustCompile(`https?://[^\s]+/confirm/(v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)`)

// confirmToken returns the token of the last confirmation mail queued for
// to (no worker) or delivered to it (worker).
// startWorker runs a queue worker delivering to the SMTP server until the
// test ends.
func (e *env) startWorker() {
	srv := e.svc.NewServer(queue.ServerConfig{Concurrency: 4, ShutdownTimeout: 2 * time.Second,
		TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond})
	e.wg.Add(1)
	go func() { defer e.wg.Done(); srv.Run(e.ctx) }()
}

func (e *env) confirmToken(to string, delivered bool) string {
	e.t.Helper()
	var text string
	if delivered {
		deadline := time.Now().Add(15 * time.Second)
		for {
			if ms := e.smtp.MessagesTo(to); len(ms) > 0 {
				text = decodedBody(e.t, ms[len(ms)-1].Raw)
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("no confirmation mail reached %s", to)
			}
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		for _, m := range e.queuedMessages() {
			if m.To == to {
				text = string(m.Text)
			}
		}
	}
	m := confirmLinkRE.FindStringSubmatch(text)
	if m == nil {
		e.t.Fatalf("no confirm link in the mail to %s:\n%s", to, text)
	}
	return m[1]
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// between returns the text of s between the first start and the next end.
func between(t testing.TB, s, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("no %q in the page", start)
	}
	in, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("no %q after %q", end, start)
	}
	return in
}

func ptr[T any](v T) *T { return &v }

func prefsOf(regions, topics string) audience.Prefs {
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

func fmtSscan(t testing.TB, s string, v *int64) {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	*v = n
}

// decodeWords decodes RFC 2047 encoded words in a header value.
func decodeWords(s string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}
