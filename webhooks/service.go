package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Event types. Each names what happened, "noun.verb" as the Standard
// Webhooks specification suggests.
const (
	SubscriberCreated            = "subscriber.created"
	SubscriberConfirmed          = "subscriber.confirmed"
	SubscriberPreferencesChanged = "subscriber.preferences_changed"
	SubscriberUnsubscribed       = "subscriber.unsubscribed"
	SubscriberBounced            = "subscriber.bounced"
	SubscriberComplained         = "subscriber.complained"
	SendStarted                  = "send.started"
	SendFinished                 = "send.finished"
	SendPaused                   = "send.paused"
)

// EventTypes lists every event type, in the order the console shows them.
var EventTypes = []string{SubscriberCreated, SubscriberConfirmed, SubscriberPreferencesChanged, SubscriberUnsubscribed,
	SubscriberBounced, SubscriberComplained, SendStarted, SendFinished, SendPaused}

// Task type and queue of one delivery attempt.
const (
	TypeWebhookDeliver = "webhook:deliver"
	Queue              = "webhooks"
)

// Errors, checked with errors.Is.
var (
	// ErrNotFound: no such endpoint or delivery.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: an endpoint that cannot be used (see *EndpointError).
	ErrInvalid = errors.New("invalid")
)

// Endpoint is a URL that receives events.
type Endpoint struct {
	ID          int64     `json:"id"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	Secret      string    `json:"secret,omitempty"`
	Events      []string  `json:"events"` // empty: every type
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Takes reports whether the endpoint receives events of type typ.
func (e Endpoint) Takes(typ string) bool { return len(e.Events) == 0 || slices.Contains(e.Events, typ) }

// Delivery is one event to one endpoint, with its latest outcome.
type Delivery struct {
	ID           int64     `json:"id"`
	EndpointID   int64     `json:"endpoint_id"`
	MsgID        string    `json:"msg_id"`
	Type         string    `json:"type"`
	State        string    `json:"state"` // pending, delivered or failed
	Attempts     int       `json:"attempts"`
	LastStatus   int       `json:"last_status"`             // the endpoint's HTTP status; 0: no answer
	LastResponse string    `json:"last_response,omitempty"` // its answer, trimmed, or the network error
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Attempt is one POST of a delivery.
type Attempt struct {
	At       time.Time     `json:"at"`
	Status   int           `json:"status"`
	Response string        `json:"response"`
	Duration time.Duration `json:"duration_ns"`
}

// OutboxEvent is an event not yet fanned out to its endpoints.
type OutboxEvent struct {
	ID   int64
	Type string
}

// Job is what one attempt needs.
type Job struct {
	DeliveryID, EndpointID int64
	State, MsgID, Type     string
	Body                   []byte
	URL, Secret            string
	Enabled                bool
}

// Store is the webhooks' storage (store.Webhooks picks the engine's, in internal/store).
type Store interface {
	AddEndpoint(ctx context.Context, e Endpoint, now time.Time) (Endpoint, error)
	Endpoint(ctx context.Context, id int64) (Endpoint, error)
	Endpoints(ctx context.Context) ([]Endpoint, error)
	SetEnabled(ctx context.Context, id int64, on bool, now time.Time) error
	DeleteEndpoint(ctx context.Context, id int64) error
	AddEvent(ctx context.Context, msgID, typ string, body []byte, now time.Time) error
	Undispatched(ctx context.Context, limit int) ([]OutboxEvent, error)
	FanOut(ctx context.Context, e OutboxEvent, now time.Time) ([]int64, error)
	MarkDispatched(ctx context.Context, id int64, now time.Time) error
	Job(ctx context.Context, id int64) (Job, error)
	RecordAttempt(ctx context.Context, id int64, a Attempt, state string) error
	// Requeue makes delivery id pending again, queued under taskID.
	Requeue(ctx context.Context, id int64, taskID string, now time.Time) error
	Deliveries(ctx context.Context, endpointID int64, limit int) ([]Delivery, error)
	Attempts(ctx context.Context, id int64) ([]Attempt, error)
	// Pending lists, by id after afterID, up to limit pending deliveries
	// to enabled endpoints last changed before before (the reconciler's
	// candidates).
	Pending(ctx context.Context, before time.Time, afterID int64, limit int) ([]PendingDelivery, error)
	// Trim deletes the delivered deliveries (with their attempts) last
	// changed before before, then the dispatched events created before
	// it that have no delivery left, and says how many of each went.
	// Pending and failed deliveries are kept.
	Trim(ctx context.Context, before time.Time) (deliveries, events int64, err error)
}

// PendingDelivery is a delivery not yet delivered nor given up, with the
// task id it was last queued under ("" for webhook:<id>).
type PendingDelivery struct {
	ID     int64
	TaskID string
}

// Config configures the Service. Zero fields get the documented defaults.
type Config struct {
	// Client posts the events. Default: 10 s timeout, no redirects followed
	// (a redirect is an answer like any other, recorded and retried).
	Client *http.Client
	// MaxRetry is how many times a failed delivery is retried. Default 7.
	MaxRetry int
	// RetryDelay is the wait before retry n (1-based). Default the
	// schedule of the Standard Webhooks specification: 5 s, 5 min, 30 min,
	// 2 h, 5 h, 10 h, 10 h.
	RetryDelay func(n int) time.Duration
	// DispatchEvery is how often the outbox is read for new events.
	// Default 1 s.
	DispatchEvery time.Duration
	// Concurrency is the number of deliveries in flight per worker. Default 4.
	Concurrency int
	// MaintainEvery is how often Run reconciles the pending deliveries
	// with their tasks in Redis (see Reconcile) and trims the delivery log
	// (see Trim). Default 1 min.
	MaintainEvery time.Duration
	// ReconcileAfter is how long a pending delivery must have been left
	// untouched before the reconciler looks for its task: a delivery just
	// fanned out is queued by the dispatcher itself. Default 1 min.
	ReconcileAfter time.Duration
	// KeepLog is how long the delivered deliveries stay in the log (and
	// their events in the outbox). Pending and failed deliveries stay
	// until they are delivered or their endpoint is deleted. Default 30
	// days (TAYORI_WEBHOOK_LOG_DAYS).
	KeepLog time.Duration
	// TaskCheckInterval and DelayedTaskCheckInterval are asynq's polling
	// of new and of retried tasks (defaults 1 s and 5 s); tests shorten them.
	TaskCheckInterval, DelayedTaskCheckInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

var standardSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

func (c *Config) fill() {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = len(standardSchedule)
	}
	if c.RetryDelay == nil {
		c.RetryDelay = func(n int) time.Duration {
			return standardSchedule[min(max(n, 1), len(standardSchedule))-1]
		}
	}
	if c.DispatchEvery <= 0 {
		c.DispatchEvery = time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.MaintainEvery <= 0 {
		c.MaintainEvery = time.Minute
	}
	if c.ReconcileAfter <= 0 {
		c.ReconcileAfter = time.Minute
	}
	if c.KeepLog <= 0 {
		c.KeepLog = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service emits events into the outbox, queues one task per endpoint per
// event, and (in Run) posts them.
type Service struct {
	store  Store
	rdb    redis.UniversalClient
	client *asynq.Client
	cfg    Config
	log    *slog.Logger
}

// ErrNoRedis: Dispatch, Replay or Run on a Service made without Redis.
var ErrNoRedis = errors.New("webhooks: no Redis client: events are kept in the outbox for a worker")

// New returns a Service on store and the shared Redis client rdb. With a
// nil rdb the Service only emits (a CLI command records events in the
// outbox; a worker delivers them) and manages endpoints.
func New(store Store, rdb redis.UniversalClient, cfg Config, logger *slog.Logger) *Service {
	cfg.fill()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, rdb: rdb, cfg: cfg, log: logger}
	if rdb != nil {
		s.client = asynq.NewClientFromRedisClient(rdb)
	}
	return s
}

// ---- emitting ----

// Emit records an event of type typ with data in the outbox, if an enabled
// endpoint takes that type; the dispatcher queues its deliveries within
// Config.DispatchEvery. It never touches Redis, so a reader's request does
// not wait for or fail with Redis; a failure to write is logged and the
// caller goes on (the change itself is already committed).
func (s *Service) Emit(ctx context.Context, typ string, data any) {
	ctx = context.WithoutCancel(ctx)
	if err := s.emit(ctx, typ, data); err != nil {
		s.log.WarnContext(ctx, "webhook event not recorded", "type", typ, "err", err)
	}
}

func (s *Service) emit(ctx context.Context, typ string, data any) error {
	eps, err := s.store.Endpoints(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(eps, func(e Endpoint) bool { return e.Enabled && e.Takes(typ) }) {
		return nil // nobody listens: keep nothing
	}
	now := s.cfg.Now()
	body, err := json.Marshal(struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      any       `json:"data"`
	}{typ, now.UTC().Truncate(time.Millisecond), data})
	if err != nil {
		return fmt.Errorf("webhooks: encode %s: %w", typ, err)
	}
	return s.store.AddEvent(ctx, newMsgID(), typ, body, now)
}

// newMsgID returns a unique message id "msg_<32 hex>".
func newMsgID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

// ---- dispatching ----

// Dispatch queues the deliveries of the events waiting in the outbox and
// returns how many tasks it queued. An event stays in the outbox until
// every one of its deliveries is queued, so Redis being down only delays
// it; a task queued twice (two dispatchers) is refused by its task id.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	events, err := s.store.Undispatched(ctx, 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range events {
		ids, err := s.store.FanOut(ctx, e, s.cfg.Now())
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			if err := s.enqueue(ctx, id, taskIDOf(id)); err != nil {
				return n, err
			}
			n++
		}
		if err := s.store.MarkDispatched(ctx, e.ID, s.cfg.Now()); err != nil {
			return n, err
		}
	}
	return n, nil
}

func taskIDOf(id int64) string { return "webhook:" + strconv.FormatInt(id, 10) }

type payload struct {
	DeliveryID int64 `json:"delivery_id"`
}

func (s *Service) enqueue(ctx context.Context, deliveryID int64, taskID string) error {
	if s.client == nil {
		return ErrNoRedis
	}
	return s.enqueueWith(ctx, s.client, deliveryID, taskID)
}

func (s *Service) enqueueWith(ctx context.Context, client *asynq.Client, deliveryID int64, taskID string) error {
	b, _ := json.Marshal(payload{deliveryID})
	_, err := client.EnqueueContext(ctx, asynq.NewTask(TypeWebhookDeliver, b), asynq.Queue(Queue), asynq.TaskID(taskID),
		asynq.MaxRetry(s.cfg.MaxRetry), asynq.Timeout(time.Minute))
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("webhooks: queue delivery %d: %w", deliveryID, err)
	}
	return nil
}

// Replay queues delivery id of endpoint endpointID again, with the same
// webhook-id, whatever its state. A delivery of another endpoint is
// ErrNotFound.
func (s *Service) Replay(ctx context.Context, endpointID, id int64) error {
	j, err := s.store.Job(ctx, id)
	if err != nil {
		return err
	}
	if j.EndpointID != endpointID {
		return fmt.Errorf("webhooks: delivery %d of endpoint %d: %w", id, endpointID, ErrNotFound)
	}
	// Pending first, then the task: a task that ran before the delivery
	// was pending again would find it delivered and skip it, and the
	// replay would be lost (seen in TestWebhooksReaderJourney).
	taskID := fmt.Sprintf("webhook:%d:replay:%d", id, s.cfg.Now().UnixNano())
	if err := s.store.Requeue(ctx, id, taskID, s.cfg.Now()); err != nil {
		return err
	}
	return s.enqueue(ctx, id, taskID)
}

// ---- delivering ----

// maxResponse is how much of an endpoint's answer the log keeps.
const maxResponse = 512

func (s *Service) handleDeliver(ctx context.Context, t *asynq.Task) error {
	var p payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.DeliveryID <= 0 {
		return fmt.Errorf("%s: malformed payload: %w", TypeWebhookDeliver, asynq.SkipRetry)
	}
	j, err := s.store.Job(ctx, p.DeliveryID)
	if errors.Is(err, ErrNotFound) {
		return nil // the endpoint was deleted meanwhile
	}
	if err != nil {
		return err
	}
	if !j.Enabled || j.State == "delivered" {
		return nil // turned off meanwhile, or a second task of a delivered event
	}
	a := s.post(ctx, j)
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	ok := a.Status >= 200 && a.Status < 300
	state := "pending"
	switch {
	case ok:
		state = "delivered"
	case retry >= maxRetry:
		state = "failed"
	}
	if err := s.store.RecordAttempt(context.WithoutCancel(ctx), j.DeliveryID, a, state); err != nil {
		return err
	}
	if ok {
		return nil
	}
	err = fmt.Errorf("webhook delivery %d to endpoint %d: answer %d %s", j.DeliveryID, j.EndpointID, a.Status, a.Response)
	if state == "failed" {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// post makes one attempt and returns it.
func (s *Service) post(ctx context.Context, j Job) Attempt {
	start := s.cfg.Now()
	a := Attempt{At: start}
	fail := func(err error) Attempt {
		a.Response, a.Duration = trim(err.Error()), s.cfg.Now().Sub(start)
		return a
	}
	ts := start.Unix()
	sig, err := Sign(j.Secret, j.MsgID, ts, j.Body)
	if err != nil {
		return fail(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.URL, bytes.NewReader(j.Body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tayori-Webhooks/1")
	req.Header.Set("webhook-id", j.MsgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is on the page already
		}
		return fail(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	a.Status, a.Response, a.Duration = resp.StatusCode, trim(string(b)), s.cfg.Now().Sub(start)
	return a
}

// trim keeps at most maxResponse bytes of s, cut on a rune boundary and
// with invalid UTF-8 replaced.
func trim(s string) string {
	if len(s) > maxResponse {
		s = s[:maxResponse]
		for len(s) > 0 && !utf8.RuneStart(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
}

// Run delivers webhooks until ctx ends: an Asynq server on the "webhooks"
// queue, the dispatcher reading the outbox every Config.DispatchEvery, and
// the upkeep (Reconcile and Trim, maintain.go) every Config.MaintainEvery.
// Any number of workers may run it.
func (s *Service) Run(ctx context.Context) error {
	if s.rdb == nil {
		return ErrNoRedis
	}
	srv := asynq.NewServerFromRedisClient(s.rdb, asynq.Config{
		Concurrency: s.cfg.Concurrency,
		Queues:      map[string]int{Queue: 1},
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return s.cfg.RetryDelay(n)
		},
		TaskCheckInterval:        s.cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: s.cfg.DelayedTaskCheckInterval,
		Logger:                   asynqLogger{s.log},
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			n, _ := asynq.GetRetryCount(ctx)
			s.log.InfoContext(ctx, "webhook delivery failed", "attempt", n, "err", err)
		}),
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeWebhookDeliver, s.handleDeliver)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("webhooks: start worker: %w", err)
	}
	defer srv.Shutdown()
	done := make(chan struct{})
	go func() { defer close(done); s.maintain(ctx) }()
	tick := time.NewTicker(s.cfg.DispatchEvery)
	defer tick.Stop()
	for {
		if _, err := s.Dispatch(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhook dispatch: will try again", "err", err)
		}
		select {
		case <-ctx.Done():
			<-done
			srv.Stop()
			return nil
		case <-tick.C:
		}
	}
}

// Close releases the Service's Asynq client (not the Redis client).
func (s *Service) Close() error {
	if s.client == nil {
		return nil
	}
	return s.client.Close()
}

type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }

// ---- endpoints ----

// EndpointError lists what is wrong with an endpoint, field by field.
type EndpointError struct {
	Problems map[string]string // field: problem
}

func (e *EndpointError) Error() string {
	var parts []string
	for _, f := range []string{"url", "events", "secret"} {
		if p, ok := e.Problems[f]; ok {
			parts = append(parts, f+": "+p)
		}
	}
	return "webhook endpoint: " + strings.Join(parts, "; ")
}

// Is makes an *EndpointError match ErrInvalid.
func (e *EndpointError) Is(target error) bool { return target == ErrInvalid }

// AddEndpoint checks and stores a new endpoint, enabled, with a fresh
// secret unless e.Secret holds one. The URL must be absolute http(s).
func (s *Service) AddEndpoint(ctx context.Context, e Endpoint) (Endpoint, error) {
	problems := map[string]string{}
	e.URL = strings.TrimSpace(e.URL)
	if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		problems["url"] = "want an absolute http:// or https:// URL without a user name or password"
	}
	for _, t := range e.Events {
		if !slices.Contains(EventTypes, t) {
			problems["events"] = fmt.Sprintf("unknown event type %q (known: %s)", t, strings.Join(EventTypes, ", "))
			break
		}
	}
	if e.Secret == "" {
		e.Secret = NewSecret()
	} else if _, err := secretKey(e.Secret); err != nil {
		problems["secret"] = err.Error()
	}
	if len(problems) > 0 {
		return Endpoint{}, &EndpointError{Problems: problems}
	}
	e.Description = strings.TrimSpace(e.Description)
	e.Enabled = true
	return s.store.AddEndpoint(ctx, e, s.cfg.Now())
}

// Endpoint returns endpoint id (ErrNotFound).
func (s *Service) Endpoint(ctx context.Context, id int64) (Endpoint, error) {
	return s.store.Endpoint(ctx, id)
}

// Endpoints lists every endpoint.
func (s *Service) Endpoints(ctx context.Context) ([]Endpoint, error) { return s.store.Endpoints(ctx) }

// SetEnabled turns endpoint id on or off (ErrNotFound).
func (s *Service) SetEnabled(ctx context.Context, id int64, on bool) error {
	return s.store.SetEnabled(ctx, id, on, s.cfg.Now())
}

// DeleteEndpoint removes endpoint id and its delivery log (ErrNotFound).
func (s *Service) DeleteEndpoint(ctx context.Context, id int64) error {
	return s.store.DeleteEndpoint(ctx, id)
}

// Deliveries returns the newest deliveries to endpoint id.
func (s *Service) Deliveries(ctx context.Context, endpointID int64, limit int) ([]Delivery, error) {
	return s.store.Deliveries(ctx, endpointID, limit)
}

// Attempts returns the attempts of delivery id, oldest first.
func (s *Service) Attempts(ctx context.Context, id int64) ([]Attempt, error) {
	return s.store.Attempts(ctx, id)
}
