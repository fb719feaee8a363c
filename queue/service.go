package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// Config configures a Service. Every zero field gets the documented default.
type Config struct {
	// From is the sender, e.g. "AI政策動向 <newsletter@news.example.jp>".
	// Its domain names Message-IDs and List-Ids. Required.
	From string
	// ReplyTo is an address that reads replies. Default: none.
	ReplyTo string
	// BaseURL is the web server's public URL; unsubscribe links are
	// BaseURL+"/u/"+token and preference links BaseURL+"/p/"+token. Required.
	BaseURL string
	// UnsubscribeMailto, if set, is added to List-Unsubscribe as
	// mailto:ADDRESS?subject=unsubscribe%20TOKEN. Default: none.
	UnsubscribeMailto string
	// FeedbackID is the stable sender id of the Feedback-ID header
	// (5–15 letters or digits). Default "tayori".
	FeedbackID string

	// BatchSize is the number of recipients per send:batch task. Default 200.
	BatchSize int
	// MaxAttempts caps SMTP attempts per delivery after temporary failures.
	// Default 5.
	MaxAttempts int
	// RetryBase and RetryMax bound the backoff between attempts of a batch
	// with temporary failures: RetryBase·2^n with jitter, at most RetryMax.
	// Defaults 30s and 15m.
	RetryBase, RetryMax time.Duration
	// PauseRecheck is how often a batch of a paused send looks again.
	// Default 10s.
	PauseRecheck time.Duration
	// RelayRetry is how soon a batch that could not reach the relay runs
	// again (between half of it and all of it), without counting an
	// attempt. Default 10s.
	RelayRetry time.Duration
	// Retention keeps finished tasks (and so their TaskIDs) in Redis, so
	// that nothing re-enqueues them. Default 7 days.
	Retention time.Duration
	// TaskTimeout bounds one batch task. Default 10m.
	TaskTimeout time.Duration
	// FlushInterval is how often outcomes are committed (group commit);
	// a crash resends at most the copies sent in this window. Default 5ms.
	FlushInterval time.Duration
	// PlanAttempts is how many times the planning of a send is tried
	// (after errors, with the backoff of RetryBase and RetryMax) before
	// the send fails with the last error as its reason. A list that does
	// not exist fails it at once. Default 6 (about 16 minutes with the
	// default backoff).
	PlanAttempts int

	// LeaseTTL is how long a batch's claim holds without being renewed.
	// A running batch's process renews it every LeaseTTL/3 and stops
	// sending should it lapse; every worker re-enqueues the batches whose
	// lease lapsed (their worker died) within about LeaseTTL/3 more.
	// Default 6s.
	LeaseTTL time.Duration
	// ReconcileInterval is how often each worker compares the unfinished
	// sends with their tasks in Redis and re-creates the missing ones
	// (Redis replaced or restored from an old copy). Default 30s.
	ReconcileInterval time.Duration

	// Senders caps the copies this process has at the relay at once (one
	// SMTP connection each); batch tasks beyond it wait. Default: no cap
	// (the server's Concurrency bounds it).
	Senders int

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) fill() error {
	if c.From == "" || c.BaseURL == "" {
		return fmt.Errorf("%w: queue config needs From and BaseURL", ErrInvalid)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("%w: From %q: %v", ErrInvalid, c.From, err)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.FeedbackID == "" {
		c.FeedbackID = "tayori"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 30 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Minute
	}
	if c.PauseRecheck <= 0 {
		c.PauseRecheck = 10 * time.Second
	}
	if c.RelayRetry <= 0 {
		c.RelayRetry = 10 * time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = 10 * time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 5 * time.Millisecond
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 6 * time.Second
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 30 * time.Second
	}
	if c.PlanAttempts <= 0 {
		c.PlanAttempts = 6
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Deps are the concrete parts the queue drives.
type Deps struct {
	Directory Directory // required
	Tokens    Tokens    // required
	Renderer  Renderer  // required
	Sender    Sender    // required for delivery; not for planning or dry runs
	// Classify maps a Send error to its class. Required with Sender.
	Classify func(error) ErrorClass
	// Gate, if set, is consulted by Create before a send is recorded
	// (checklist 36): a closed gate refuses the send with a *GateError
	// unless NewSend.IgnoreGate. Test sends and dry runs never consult it.
	Gate GateFunc
	// Events, if set, is told when a send starts, finishes or pauses.
	Events Events
	// Metrics, if set, counts copies by outcome and times the relay's
	// replies (see [Metrics]).
	Metrics Metrics
	// Clicks, if set, counts clicks on item links for the lists whose
	// setting asks for it (see [Clicks]); the Renderer must then be a
	// LinkRenderer. Nil: links as written, for every list.
	Clicks Clicks
}

// Service creates sends, plans them, and (inside a Server) delivers them.
type Service struct {
	ledger  Ledger
	rdb     redis.UniversalClient
	client  *asynq.Client
	insp    *asynq.Inspector
	cfg     Config
	deps    Deps
	log     *slog.Logger
	rec     *recorder
	leases  *leaser
	trouble *storeTrouble // the store's last failed write, for the watchdog
	domain  string

	mu       sync.Mutex
	sends    map[int64]*sendCache
	rendered map[string]*renderOnce
	schedule *Schedule
	// schedTTL is the scheduler lease's TTL: SchedulerLeaseTTL, shorter
	// in tests.
	schedTTL time.Duration
	senders  chan struct{}         // nil: no cap
	halt     atomic.Pointer[error] // set by Halt
}

// New returns a Service on the send ledger (store.Ledger of a migrated
// database) and the shared Redis client rdb. Close releases what it holds
// but not the ledger or rdb.
func New(ctx context.Context, ledger Ledger, rdb redis.UniversalClient, cfg Config, deps Deps, logger *slog.Logger) (*Service, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if deps.Directory == nil || deps.Tokens == nil || deps.Renderer == nil {
		return nil, fmt.Errorf("%w: queue needs a Directory, Tokens and a Renderer", ErrInvalid)
	}
	if _, ok := deps.Renderer.(LinkRenderer); deps.Clicks != nil && !ok {
		return nil, fmt.Errorf("%w: counting clicks needs a Renderer that rewrites links (LinkRenderer)", ErrInvalid)
	}
	if deps.Sender != nil && deps.Classify == nil {
		return nil, fmt.Errorf("%w: queue needs Classify with a Sender", ErrInvalid)
	}
	if ledger == nil {
		return nil, fmt.Errorf("%w: queue needs a Ledger", ErrInvalid)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = noMetrics{}
	}
	addr, _ := mail.ParseAddress(cfg.From)
	s := &Service{
		ledger: ledger, rdb: rdb, cfg: cfg, deps: deps, log: logger,
		client:   asynq.NewClientFromRedisClient(rdb),
		insp:     asynq.NewInspectorFromRedisClient(rdb),
		domain:   addr.Address[strings.LastIndexByte(addr.Address, '@')+1:],
		sends:    map[int64]*sendCache{},
		rendered: map[string]*renderOnce{},
		schedTTL: SchedulerLeaseTTL,
	}
	if cfg.Senders > 0 {
		s.senders = make(chan struct{}, cfg.Senders)
	}
	s.trouble = &storeTrouble{now: cfg.Now}
	s.rec = newRecorder(ledger, cfg.FlushInterval, logger)
	s.rec.trouble = s.trouble
	s.leases = newLeaser(ledger, cfg.LeaseTTL, cfg.Now, logger)
	s.leases.trouble = s.trouble
	return s, nil
}

// Close stops the outcome writer after a last flush, and the renewal of
// batch leases. The database and the Redis client belong to the caller.
func (s *Service) Close() error {
	s.leases.close()
	return s.rec.close()
}

// Create records a send and enqueues its planning, at ns.At if that is in
// the future (asynq ProcessAt). A send due now has its first batch
// planned and queued here, before the planning task plans the rest, so
// that its first copies go at once. The send starts in state scheduled
// (planning, when its first batch is queued).
//
// Create refuses, recording nothing:
//   - a list the Directory does not know: ErrNoList, naming it;
//   - an issue sent, or being sent, to the list in an earlier send: a
//     *DuplicateError (ErrAlreadySent) naming that send. NewSend.Again
//     sends it again, to the readers who have not had it, once no earlier
//     send of it to the list is running;
//   - with NewSend.Key, a key that another request used: ErrKeyReused (the
//     same request gets the send it created, Replayed);
//   - with a Deps.Gate, a closed gate (complaint rate or authentication
//     refusals, see package feedback): a *GateError wrapping ErrBlocked,
//     unless NewSend.IgnoreGate. A warning is logged and returned in
//     Send.GateWarning. This holds for the monthly schedule too, whose tick
//     then fails and is retried by Asynq.
func (s *Service) Create(ctx context.Context, ns NewSend) (*Send, error) {
	_, _, hash, err := encodeSend(ns)
	if err != nil {
		return nil, err
	}
	// A request retried with its key gets its send, whatever has changed
	// since (the list, the gate): nothing is created again.
	if snd, err := s.replay(ctx, ns.Key, hash); snd != nil || err != nil {
		if snd != nil {
			s.requeuePlan(ctx, snd)
		}
		return snd, err
	}
	if err := s.checkList(ctx, ns.List); err != nil {
		return nil, err
	}
	warning, err := s.checkGate(ctx, ns)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	snd, err := s.insertSend(ctx, ns, now)
	if err != nil {
		return nil, err
	}
	if snd.Replayed { // a twin request won the race
		return snd, nil
	}
	// The send is recorded: its first batch and its planning go on even if
	// the caller goes away (a closed connection must not leave a send that
	// nothing plans).
	ctx = context.WithoutCancel(ctx)
	s.prepareClicks(ctx, snd.ID, ns.List, ns.Issue) // before any copy can go
	opts := s.planOpts()
	if snd.ScheduledAt.After(now) {
		opts = append(opts, asynq.ProcessAt(snd.ScheduledAt))
	} else if err := s.planFirst(ctx, snd); err != nil {
		// The planning task starts over from where this stopped.
		s.log.WarnContext(ctx, "first batch not planned at creation", "send_id", snd.ID, "err", err)
	}
	if err := s.enqueuePlan(ctx, snd, opts...); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "send created", "send_id", snd.ID, "issue", ns.Issue.Slug, "list", ns.List,
		"scheduled_at", snd.ScheduledAt, "again", ns.Again)
	if fresh, err := s.getSend(ctx, snd.ID, true); err == nil {
		snd = fresh
	}
	snd.GateWarning = warning
	return snd, nil
}

// checkList refuses a list the Directory does not know.
func (s *Service) checkList(ctx context.Context, list string) error {
	ok, err := s.deps.Directory.HasList(ctx, list)
	if err != nil {
		return fmt.Errorf("queue: list %q: %w", list, err)
	}
	if !ok {
		return &NoListError{List: list}
	}
	return nil
}

// NoListError is ErrNoList naming the list.
type NoListError struct{ List string }

func (e *NoListError) Error() string { return fmt.Sprintf("list %q does not exist", e.List) }

// Is makes a *NoListError match ErrNoList.
func (e *NoListError) Is(target error) bool { return target == ErrNoList }

// planOpts are the options of a send:plan task: its attempts end in the
// send failing (handlePlan).
func (s *Service) planOpts() []asynq.Option {
	return []asynq.Option{asynq.Retention(s.cfg.Retention), asynq.MaxRetry(s.cfg.PlanAttempts - 1), asynq.Timeout(time.Hour)}
}

// requeuePlan enqueues the planning of a send that a retried request
// found, in case the first request failed between recording the send and
// enqueuing its planning (the task's id makes this a no-op otherwise).
func (s *Service) requeuePlan(ctx context.Context, snd *Send) {
	if snd.State != Scheduled && snd.State != Planning {
		return
	}
	opts := s.planOpts()
	if snd.ScheduledAt.After(s.cfg.Now()) {
		opts = append(opts, asynq.ProcessAt(snd.ScheduledAt))
	}
	if err := s.enqueuePlan(ctx, snd, opts...); err != nil {
		s.log.WarnContext(ctx, "planning not enqueued again", "send_id", snd.ID, "err", err)
	}
}

// EarlierSends lists the sends of the issue with slug to list, newest
// first: what Create checks a new send against, for the console to show
// before an editor sends.
func (s *Service) EarlierSends(ctx context.Context, slug, list string) ([]EarlierSend, error) {
	earlier, err := s.ledger.EarlierSends(ctx, slug, list)
	if err != nil {
		return nil, fmt.Errorf("queue: earlier sends of %s to %s: %w", slug, list, err)
	}
	return earlier, nil
}

func (s *Service) enqueuePlan(ctx context.Context, snd *Send, opts ...asynq.Option) error {
	t, err := NewPlanTask(snd.ID, snd.UID, opts...)
	if err != nil {
		return err
	}
	if _, err := s.client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("queue: enqueue planning of send %d: %w", snd.ID, err)
	}
	return nil
}

// Get returns a send with its counts. The counts are kept as outcomes
// are recorded (send_counts), so a read costs the same whatever the size
// of the list: `tayori send --wait` and the console read it every 250 ms.
func (s *Service) Get(ctx context.Context, id int64) (*Send, error) {
	return s.getSend(ctx, id, true)
}

// List returns the most recent sends, newest first, with their counts.
// Issues carry only their slug.
func (s *Service) List(ctx context.Context, limit int) ([]*Send, error) {
	if limit <= 0 {
		limit = 20
	}
	return s.listSends(ctx, limit)
}

// Pause stops a send after the copies in flight; Resume continues it.
// Pausing a paused send, or one that is done or cancelled, is ErrState.
func (s *Service) Pause(ctx context.Context, id int64, reason string) error {
	return s.pause(ctx, id, reason)
}

func (s *Service) pause(ctx context.Context, id int64, reason string) error {
	ok, err := s.ledger.Pause(ctx, id, reason, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("queue: pause send %d: %w", id, err)
	}
	if !ok {
		return s.stateErr(ctx, id, "pause")
	}
	s.log.InfoContext(ctx, "send paused", "send_id", id, "reason", reason)
	s.emit(ctx, EventSendPaused, id)
	return nil
}

// Resume continues a paused send where it stopped. Its waiting batches
// notice within Config.PauseRecheck.
func (s *Service) Resume(ctx context.Context, id int64) error {
	ok, err := s.ledger.Resume(ctx, id, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("queue: resume send %d: %w", id, err)
	}
	if !ok {
		return s.stateErr(ctx, id, "resume")
	}
	s.log.InfoContext(ctx, "send resumed", "send_id", id)
	// A send that was paused before its planning finished, or whose
	// remaining work was all in flight, may be complete already.
	return s.maybeFinish(ctx, id)
}

// Cancel stops a send for good: deliveries not yet sent become cancelled.
// Copies in flight finish.
func (s *Service) Cancel(ctx context.Context, id int64, reason string) error {
	return s.cancel(ctx, id, reason)
}

func (s *Service) cancel(ctx context.Context, id int64, reason string) error {
	ok, err := s.ledger.Cancel(ctx, id, reason, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("queue: cancel send %d: %w", id, err)
	}
	if !ok {
		return s.stateErr(ctx, id, "cancel")
	}
	s.log.InfoContext(ctx, "send cancelled", "send_id", id, "reason", reason)
	return nil
}

func (s *Service) stateErr(ctx context.Context, id int64, op string) error {
	snd, err := s.getSend(ctx, id, false)
	if err != nil {
		return err
	}
	return fmt.Errorf("%s send %d: it is %s: %w", op, id, snd.State, ErrState)
}

// fail ends a send that cannot be planned: state failed with the reason,
// and its deliveries not yet sent cancelled (copies in flight finish).
func (s *Service) fail(ctx context.Context, id int64, reason string) error {
	ok, err := s.ledger.Fail(ctx, id, reason, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("queue: fail send %d: %w", id, err)
	}
	if !ok {
		return nil // planned, cancelled or failed meanwhile
	}
	s.log.ErrorContext(ctx, "send failed", "send_id", id, "reason", reason)
	return nil
}

// finishBatch records that the batch is done when none of its deliveries
// is open any more, under the run's claim (a stale run changes nothing).
//
// allFinal says the run committed a final outcome for every row it
// claimed. The batch is then done without a look at its rows: rows open
// now were open at the claim (no row opens again), and those the claim
// left out were in batch_sent; the run's outcomes were committed under
// its claim, so if the claim still stands they all count.
func (s *Service) finishBatch(ctx context.Context, p *BatchPayload, claim string, allFinal bool) error {
	if len(p.IDs) == 0 {
		return nil
	}
	if err := s.ledger.FinishBatch(ctx, p.SendID, p.Batch, claim, slices.Min(p.IDs), slices.Max(p.IDs), allFinal); err != nil {
		return fmt.Errorf("queue: finish batch %d of send %d: %w", p.Batch, p.SendID, err)
	}
	return nil
}

// maybeFinish moves a fully planned send to done once all its batches are.
func (s *Service) maybeFinish(ctx context.Context, id int64) error {
	ok, err := s.ledger.FinishIfDone(ctx, id, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("queue: finish send %d: %w", id, err)
	}
	if ok {
		s.log.InfoContext(ctx, "send done", "send_id", id)
		s.emit(ctx, EventSendFinished, id)
	}
	return nil
}

// effective narrows a reader's preferences by the send's filter.
func effective(p audience.Prefs, filter *audience.Prefs) audience.Prefs {
	if filter == nil {
		return p
	}
	var out audience.Prefs
	for _, r := range p.Regions {
		if len(filter.Regions) == 0 || contains(filter.Regions, r) {
			out.Regions = append(out.Regions, r)
		}
	}
	for _, t := range p.Topics {
		if len(filter.Topics) == 0 || contains(filter.Topics, t) {
			out.Topics = append(out.Topics, t)
		}
	}
	return out
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// variants caches variant selection by preference key for one issue.
type variants struct {
	mu    sync.Mutex
	r     Renderer
	issue *compose.Issue
	m     map[string]string
	// skipNothing makes key return "" for the readers whose chosen
	// sections all have nothing this month (the list's setting).
	skipNothing bool
}

func newVariants(r Renderer, issue *compose.Issue) *variants {
	return &variants{r: r, issue: issue, m: map[string]string{}}
}

// withListSettings applies list's settings (ListSettings) to vs.
func (s *Service) withListSettings(ctx context.Context, vs *variants, list string) (*variants, error) {
	ls, ok := s.deps.Directory.(ListSettings)
	if !ok {
		return vs, nil
	}
	skip, err := ls.SkipsNothing(ctx, list)
	if err != nil {
		if lerr := s.checkList(ctx, list); errors.Is(lerr, ErrNoList) {
			return nil, lerr // gone since the send was created
		}
		return nil, fmt.Errorf("queue: settings of list %q: %w", list, err)
	}
	vs.skipNothing = skip
	return vs, nil
}

// isNothingKey reports whether a variant key is the short copy of a
// reader whose chosen sections all have nothing this month.
func isNothingKey(k string) bool { return strings.HasPrefix(k, NothingVariantPrefix) }

// key returns the variant key for (already filtered) prefs.
func (v *variants) key(p audience.Prefs) string {
	var buf [96]byte
	k := p.AppendKey(buf[:0])
	v.mu.Lock()
	defer v.mu.Unlock()
	if vk, ok := v.m[string(k)]; ok { // no allocation for a known key
		return vk
	}
	vk := v.r.Variant(v.issue, p)
	if v.skipNothing && isNothingKey(vk) {
		vk = ""
	}
	v.m[string(k)] = vk
	return vk
}

var listIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9-]+`)

// listID returns the List-Id of a list: "list.domain" (no brackets).
func (s *Service) listID(list string) string {
	label := strings.Trim(listIDUnsafe.ReplaceAllString(strings.ToLower(list), "-"), "-")
	if label == "" {
		label = "list"
	}
	return label + "." + s.domain
}

// feedbackID returns "slug:list:newsletter:SENDERID" with no per-reader value.
func (s *Service) feedbackID(issue *compose.Issue, list string) string {
	clean := func(v string) string { return strings.Trim(listIDUnsafe.ReplaceAllString(v, "-"), "-") }
	return clean(issue.Slug) + ":" + clean(list) + ":newsletter:" + s.cfg.FeedbackID
}

// retryDelay is the bounded backoff of a batch after temporary failures.
func (s *Service) retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, errPaused) || errors.Is(err, errLeaseLost) || errors.Is(err, ErrStoreFull) {
		return s.cfg.PauseRecheck
	}
	if errors.Is(err, errRelayDown) {
		return s.relayRetryDelay()
	}
	d := s.cfg.RetryBase << min(n, 16)
	if d <= 0 || d > s.cfg.RetryMax {
		d = s.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// errPaused is returned by handlers of a paused send: the task waits in
// the retry set (not counted as a failure) until the send resumes.
var errPaused = errors.New("send is paused")

// isFailure tells asynq which errors count against a task's retries: not
// a pause, nor a batch that waits for another run or lost its lease, nor
// one that waits for the relay to come back, nor a store whose disk is
// full (the task waits, as for a pause, and tries again: a batch is not
// given up, nor a send failed, because the disk filled for a while).
func isFailure(err error) bool {
	return !errors.Is(err, errPaused) && !errors.Is(err, errLeaseLost) && !errors.Is(err, errRelayDown) &&
		!errors.Is(err, ErrStoreFull)
}

// Failure is one delivery of a send that failed or waits to be retried,
// with the relay's last reply.
type Failure struct {
	SubscriberID int64     `json:"subscriber_id"`
	Permanent    bool      `json:"permanent"` // a 5xx, or retries ran out
	Retrying     bool      `json:"retrying"`
	Attempts     int       `json:"attempts"`
	Reply        string    `json:"reply"`
	At           time.Time `json:"at"`
}

// Failures lists up to limit failed or retrying deliveries of a send, the
// latest first: what an editor looks at when a send goes wrong.
func (s *Service) Failures(ctx context.Context, sendID int64, limit int) ([]Failure, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.ledger.Failures(ctx, sendID, limit)
	if err != nil {
		return nil, fmt.Errorf("queue: failures of send %d: %w", sendID, err)
	}
	return out, nil
}
