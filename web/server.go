package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/templates"
)

// Config configures the web server. Zero fields get the documented defaults.
type Config struct {
	// BaseURL is the public URL of the server (links in mail, the Atom
	// feed, the Secure flag of cookies when https). Required.
	BaseURL string
	// SenderName, PostalAddress and Contact identify the sender on the
	// subscribe form, in the consent text and in the confirmation mail
	// (特定電子メール法 Art. 3(1), 4). SenderName is required.
	SenderName    string
	PostalAddress string
	Contact       string
	// List is the list new subscribers join. Default subscribers.DefaultList.
	List string
	// SignupPerIP caps signup submissions per client IP in each
	// SignupWindow; past it the answer is 429. An office behind one NAT
	// shares an IP, so the default is generous: 30 per hour.
	SignupPerIP  int
	SignupWindow time.Duration
	// ConfirmPerAddress caps the confirmation mails sent to one address
	// in each ConfirmWindow. Beyond it a signup is still taken and
	// answered like any other, but no mail is sent: the address's owner
	// is never refused, and nobody can flood their inbox. Defaults 3 per
	// 24 hours.
	ConfirmPerAddress int
	ConfirmWindow     time.Duration
	// LoginPerIP caps console sign-in attempts per IP per LoginWindow.
	// Defaults 30 per 15 minutes (an office of editors behind one NAT).
	LoginPerIP  int
	LoginWindow time.Duration
	// LoginPerAccount is how many failed sign-ins one account may have,
	// from any IP, before it must wait: the LoginPerAccount-th failure
	// makes it wait LoginLock, and each failure after that twice as long
	// as the one before, up to LoginLockMax. While it waits every attempt
	// on the account is refused, even with the right password. A
	// successful sign-in clears the failures, and so does a LoginWindow
	// with no failure and no wait. Defaults 5, 1 minute, 15 minutes.
	LoginPerAccount int
	LoginLock       time.Duration
	LoginLockMax    time.Duration
	// SessionTTL is how long a console session lasts. Default 12h.
	SessionTTL time.Duration
	// TrustForwardedFor takes the client IP from the last X-Forwarded-For
	// entry (set it only behind a reverse proxy that sets the header).
	// Default false: the connection's address.
	TrustForwardedFor bool
	// TestSendLimit caps test sends per editor per hour. Default 30.
	TestSendLimit int
	// MaxUpload caps uploaded issue and CSV sizes in bytes. Default 8 MiB.
	MaxUpload int64
	// Location is the time zone of the dates the console shows and of
	// the schedule times editors enter (TAYORI_TIMEZONE). Default
	// Asia/Tokyo.
	Location *time.Location
	// MetricsToken, when set with Deps.MetricsHandler, serves the
	// metrics on /metrics to requests bearing it
	// ("Authorization: Bearer TOKEN"; TAYORI_METRICS_TOKEN). Empty: no
	// /metrics on this listener.
	MetricsToken string
}

func (c *Config) fill() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("web: BaseURL %q is not an absolute http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if strings.TrimSpace(c.SenderName) == "" {
		return errors.New("web: SenderName is required (特定電子メール法 Art. 4)")
	}
	if c.List == "" {
		c.List = subscribers.DefaultList
	}
	if c.SignupPerIP <= 0 {
		c.SignupPerIP = 30
	}
	if c.SignupWindow <= 0 {
		c.SignupWindow = time.Hour
	}
	if c.ConfirmPerAddress <= 0 {
		c.ConfirmPerAddress = 3
	}
	if c.ConfirmWindow <= 0 {
		c.ConfirmWindow = 24 * time.Hour
	}
	if c.LoginPerIP <= 0 {
		c.LoginPerIP = 30
	}
	if c.LoginPerAccount <= 0 {
		c.LoginPerAccount = 5
	}
	if c.LoginWindow <= 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.LoginLock <= 0 {
		c.LoginLock = time.Minute
	}
	if c.LoginLockMax <= 0 {
		c.LoginLockMax = 15 * time.Minute
	}
	if c.LoginLockMax < c.LoginLock {
		c.LoginLockMax = c.LoginLock
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.TestSendLimit <= 0 {
		c.TestSendLimit = 30
	}
	if c.MaxUpload <= 0 {
		c.MaxUpload = 8 << 20
	}
	if c.Location == nil {
		c.Location = tokyo
	}
	return nil
}

func (c *Config) secure() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// Subscribers is the subscriber store as the web uses it (implemented by
// *subscribers.Store).
type Subscribers interface {
	Add(ctx context.Context, n subscribers.NewSubscriber) (subscribers.Subscriber, error)
	ConfirmToken(ctx context.Context, id int64, list string) (string, error)
	Confirm(ctx context.Context, tok string, c subscribers.Consent) (subscribers.Subscriber, error)
	VerifyToken(ctx context.Context, tok string, purpose token.Purpose) (subscribers.Subscriber, token.Claims, error)
	UnsubscribeByToken(ctx context.Context, tok, cause string) (subscribers.Subscriber, error)
	Unsubscribe(ctx context.Context, id int64, list, cause string) error
	UnsubscribeToken(publicID, list string) (string, error)
	PreferencesToken(publicID, list string) (string, error)
	Update(ctx context.Context, id int64, u subscribers.Update) (subscribers.Subscriber, error)
	Get(ctx context.Context, id int64) (subscribers.Subscriber, error)
	GetByPublicID(ctx context.Context, publicID string) (subscribers.Subscriber, error)
	List(ctx context.Context, q subscribers.ListQuery) ([]subscribers.Subscriber, error)
	Consents(ctx context.Context, id int64) ([]subscribers.Consent, error)
	History(ctx context.Context, id int64) ([]subscribers.StatusChange, error)
	Erase(ctx context.Context, id int64, cause string) error
	Export(ctx context.Context, id int64) (subscribers.DataExport, error)
	Import(ctx context.Context, r io.Reader, opts subscribers.ImportOptions) (subscribers.ImportResult, error)
	ExportCSV(ctx context.Context, w io.Writer, q subscribers.ExportQuery) (int, error)
	FeedbackEvents(ctx context.Context, q subscribers.FeedbackQuery) ([]subscribers.FeedbackEvent, error)
}

// Sends is the queue as the web uses it (implemented by *queue.Service).
type Sends interface {
	Create(ctx context.Context, ns queue.NewSend) (*queue.Send, error)
	Get(ctx context.Context, id int64) (*queue.Send, error)
	List(ctx context.Context, limit int) ([]*queue.Send, error)
	Pause(ctx context.Context, id int64, reason string) error
	Resume(ctx context.Context, id int64) error
	Cancel(ctx context.Context, id int64, reason string) error
	Preview(ctx context.Context, issue *compose.Issue, list string, filter *audience.Prefs) ([]queue.VariantCount, int64, error)
	// PreviewCopy builds one reader's copy as the worker would send it.
	PreviewCopy(ctx context.Context, issue *compose.Issue, list string, reader queue.PreviewReader) (*queue.Copy, error)
	EarlierSends(ctx context.Context, slug, list string) ([]queue.EarlierSend, error)
	EnqueueMessage(ctx context.Context, m queue.TransactionalMessage) (string, error)
}

// Failure is a failed or retrying delivery, as package queue lists it.
type Failure = queue.Failure

// Gate is the send gate as the console shows it (implemented by
// *feedback.Gate). The queue consults its own copy when a send is created;
// this one only reports the state, on /admin/feedback and before a send.
type Gate interface {
	Check(ctx context.Context) (feedback.Verdict, feedback.Figures, error)
	Thresholds() feedback.Thresholds
}

// Renderer renders issue variants (implemented by *templates.Renderer).
type Renderer interface {
	Render(issue *compose.Issue, sel templates.Selection) (*templates.Variant, error)
}

// Deps are what the server drives. Subscribers, Store and Redis are
// required; without Sends and Renderer the console cannot preview or send
// and the archive is empty.
type Deps struct {
	Subscribers Subscribers
	Store       *Store
	Sends       Sends
	Renderer    Renderer
	// Failures, when set, lists a send's failed deliveries with the relay's
	// replies.
	Failures func(ctx context.Context, sendID int64, limit int) ([]Failure, error)
	// Deliveries, when set, lists a subscriber's deliveries for their data
	// export (implemented by (*queue.Service).DeliveryHistory).
	Deliveries func(ctx context.Context, subscriberID int64) ([]queue.Delivered, error)
	// Relay, when set, reads the mail relay's state (implemented by
	// (*queue.Service).RelayState): the send page says when the relay is
	// unreachable.
	Relay func(ctx context.Context) (queue.RelayState, error)
	// Gate, when set, shows the send gate's state on /admin/feedback and
	// on the send confirmation page; without it the console still lists
	// feedback events and shows a refusal when the queue's gate refuses.
	Gate Gate
	// Webhooks, when set, manages the outbound webhooks on
	// /admin/webhooks and /api/v1/webhooks (webhooks.go).
	Webhooks Webhooks
	// Welcome, when set, edits the welcome mail on /admin/welcome
	// (welcome.go).
	Welcome Welcome
	// Rhythm, when set, manages the recurring send rules on
	// /admin/rhythm (rhythm.go).
	Rhythm Rhythm
	// Clicks, when set, answers the counting redirects /c/{token} and
	// shows a send's aggregate clicks on its page (clicks.go).
	Clicks Clicks
	// Lists, when set, edits the per-list settings on /admin/lists
	// (counting clicks, readers with nothing this month).
	Lists ListSettings
	// Redis backs the rate limiters (shared by every server process).
	Redis redis.UniversalClient
	// Ping checks the health of the backing services for /healthz; nil
	// checks Redis only.
	Ping func(ctx context.Context) error
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Metrics, when set, counts requests by route and status and the
	// rows of imports (implemented by *metrics.Metrics).
	Metrics Metrics
	// MetricsHandler serves the metrics on /metrics when
	// Config.MetricsToken is set.
	MetricsHandler http.Handler
	// Tasks, when set, shows the Asynq queues, the workers and the
	// failed tasks on the console's operations page, with its actions
	// (implemented by *asynq.Inspector).
	Tasks Tasks
}

// Metrics counts what the web server does (implemented by
// *metrics.Metrics).
type Metrics interface {
	// Request counts one request by its route pattern (never the raw
	// path) and status, with its latency.
	Request(route, method string, status int, d time.Duration)
	// Imported counts the rows of one subscriber import.
	Imported(added, updated, unchanged, skipped, rejected int)
}

// server holds what the handlers share.
type server struct {
	log   *slog.Logger
	cfg   Config
	deps  Deps
	now   func() time.Time
	pages *pageSet
	rl    *limiter
	cop   *http.CrossOriginProtection
}

// NewServer returns the web server's handler: every route of routes.go
// behind the security headers, panic recovery and request logging.
func NewServer(logger *slog.Logger, cfg Config, deps Deps) (http.Handler, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if deps.Subscribers == nil || deps.Store == nil || deps.Redis == nil {
		return nil, errors.New("web: Deps need Subscribers, Store and Redis")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	pages, err := loadPages(cfg.Location)
	if err != nil {
		return nil, err
	}
	cop, err := newCrossOrigin(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	s := &server{log: logger, cfg: cfg, deps: deps, now: now, pages: pages, rl: newLimiter(deps.Redis, now), cop: cop}
	mux := http.NewServeMux()
	s.routes(mux)
	return s.accessLog(s.recoverer(s.securityHeaders(mux))), nil
}

// SubscriberExport is everything stored about one subscriber (GDPR Art.
// 15/20): the store's record and the deliveries to them. The console, the
// API and `tayori subscribers show` all print it.
type SubscriberExport struct {
	subscribers.DataExport
	Deliveries []queue.Delivered `json:"deliveries"`
}

func (s *server) subscriberExport(ctx context.Context, id int64) (SubscriberExport, error) {
	x, err := s.deps.Subscribers.Export(ctx, id)
	if err != nil {
		return SubscriberExport{}, err
	}
	out := SubscriberExport{DataExport: x}
	if s.deps.Deliveries != nil {
		if out.Deliveries, err = s.deps.Deliveries(ctx, id); err != nil {
			return SubscriberExport{}, err
		}
	}
	return out, nil
}
