package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tayori-news/tayori/queue"
)

// classes are the error classes, indexed by their value, as the labels
// of the copy counters name them.
var classes = []queue.ErrorClass{queue.Temporary, queue.Permanent, queue.BadMailbox, queue.Policy, queue.Unavailable}

// kinds are the kinds of message, as the kind label of the copy counters
// names them (queue.MailKinds, with issue first: the hot path).
var kinds = queue.MailKinds

// Metrics are one process's collectors on their own registry.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	sent    []prometheus.Counter   // by kind (index in kinds)
	failed  [][]prometheus.Counter // by kind, then queue.ErrorClass
	retried [][]prometheus.Counter // by kind, then queue.ErrorClass
	reply   prometheus.Histogram

	limitWaits   prometheus.Counter
	limitSeconds prometheus.Counter

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	imports  *prometheus.CounterVec
}

// New returns a process's metrics on a new registry, with the Go runtime
// and process collectors. logger receives the errors of scrape-time reads
// (nil discards them).
func New(logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg, log: logger}
	sent := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tayori_copies_sent_total", Help: "Messages the relay accepted, by kind: issue (newsletter copies), confirmation, welcome, test, reminder, other."}, []string{"kind"})
	failed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tayori_copies_failed_total", Help: "Messages given up on, by kind and error class."}, []string{"kind", "class"})
	retried := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tayori_copies_retried_total", Help: "Messages left for another attempt (temporary failure, relay unreachable), by kind and error class."}, []string{"kind", "class"})
	// Children made once, so counting a copy is one atomic add.
	for _, k := range kinds {
		m.sent = append(m.sent, sent.WithLabelValues(string(k)))
		var f, r []prometheus.Counter
		for _, c := range classes {
			f = append(f, failed.WithLabelValues(string(k), c.String()))
			r = append(r, retried.WithLabelValues(string(k), c.String()))
		}
		m.failed, m.retried = append(m.failed, f), append(m.retried, r)
	}
	m.reply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "tayori_smtp_reply_seconds", Help: "Time from handing a copy to its SMTP connection to the relay's reply.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})
	m.limitWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tayori_rate_limit_waits_total", Help: "Messages that waited for the relay's rate limit (TAYORI_RATE)."})
	m.limitSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tayori_rate_limit_wait_seconds_total", Help: "Time messages spent waiting for the relay's rate limit."})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tayori_http_requests_total", Help: "Web requests by route pattern, method and status."}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tayori_http_request_seconds", Help: "Web request latency by route pattern.",
		Buckets: prometheus.DefBuckets}, []string{"route"})
	m.imports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tayori_import_rows_total", Help: "Rows of subscriber imports by result: added, updated, unchanged, skipped or rejected."}, []string{"result"})
	for _, r := range []string{"added", "updated", "unchanged", "skipped", "rejected"} {
		m.imports.WithLabelValues(r)
	}
	reg.MustRegister(sent, failed, retried, m.reply, m.limitWaits, m.limitSeconds, m.requests, m.latency, m.imports)
	return m
}

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// CopySent counts a message of kind the relay accepted (queue.Metrics).
func (m *Metrics) CopySent(k queue.MailKind) { m.sent[kindIndex(k)].Inc() }

// CopyFailed counts a message given up on (queue.Metrics).
func (m *Metrics) CopyFailed(k queue.MailKind, c queue.ErrorClass) {
	m.failed[kindIndex(k)][classIndex(c)].Inc()
}

// CopyRetried counts a message left for another attempt (queue.Metrics).
func (m *Metrics) CopyRetried(k queue.MailKind, c queue.ErrorClass) {
	m.retried[kindIndex(k)][classIndex(c)].Inc()
}

// kindIndex is k's place in kinds; a kind not listed counts as other.
func kindIndex(k queue.MailKind) int {
	for i, x := range kinds {
		if x == k {
			return i
		}
	}
	return len(kinds) - 1 // queue.KindOther, last
}

// RelayReply observes one reply's latency (queue.Metrics).
func (m *Metrics) RelayReply(d time.Duration) { m.reply.Observe(d.Seconds()) }

func classIndex(c queue.ErrorClass) int {
	if int(c) < 0 || int(c) >= len(classes) {
		return int(queue.Permanent)
	}
	return int(c)
}

// Request counts one web request by its route pattern ("GET
// /admin/issues/{slug}", never the raw path; "" for no route), and
// observes its latency.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// Imported counts the rows of one subscriber import.
func (m *Metrics) Imported(added, updated, unchanged, skipped, rejected int) {
	for r, n := range map[string]int{"added": added, "updated": updated, "unchanged": unchanged, "skipped": skipped, "rejected": rejected} {
		if n > 0 {
			m.imports.WithLabelValues(r).Add(float64(n))
		}
	}
}

// Limiter paces messages (implemented by *queue.Limiter); mailer.Limiter
// has the same method.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Limiter returns l timed: every wait longer than a millisecond counts
// as a wait, with its time.
func (m *Metrics) Limiter(l Limiter) Limiter { return timedLimiter{l: l, m: m} }

type timedLimiter struct {
	l Limiter
	m *Metrics
}

// waited is how long a Wait must take to count as waiting for the limit
// rather than taking a token at once (a Redis round trip at most).
const waited = time.Millisecond

func (t timedLimiter) Wait(ctx context.Context) error {
	t0 := time.Now()
	err := t.l.Wait(ctx)
	if d := time.Since(t0); d >= waited {
		t.m.limitWaits.Inc()
		t.m.limitSeconds.Add(d.Seconds())
	}
	return err
}

// Pool is the relay's connection pool (implemented by *mailer.Pool).
type Pool interface {
	Open() int64
	Dials() int64
}

// WatchPool reports p's connections when the metrics are scraped.
func (m *Metrics) WatchPool(p Pool) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tayori_relay_connections_open", Help: "SMTP connections to the relay open now."},
			func() float64 { return float64(p.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tayori_relay_connections_dialled_total", Help: "SMTP connections dialled to the relay."},
			func() float64 { return float64(p.Dials()) }),
	)
}
