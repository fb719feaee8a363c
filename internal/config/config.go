// Package config reads Tayori's configuration from defaults, an optional
// YAML file, the environment (TAYORI_*) and command-line flags, in that
// order of precedence, and validates it before anything starts.
package config

import (
	"time"
)

// Config is Tayori's effective configuration. Every field documents its
// environment variable and its default.
type Config struct {
	// DataDir holds the SQLite database, generated secrets and caches.
	// TAYORI_DATA_DIR, default "./data".
	DataDir string `yaml:"data_dir"`
	// DB is the store: "sqlite:PATH" or "postgres://user:pass@host:5432/db".
	// TAYORI_DB, default "sqlite:<DataDir>/tayori.db".
	DB string `yaml:"db"`
	// RedisURL is the Redis used by Asynq, the shared rate limiter and
	// connection cap, and the web limits: redis[s]://[:password@]host:port/db,
	// or redis[s]+sentinel://[:password@]host:port[,host:port…]/master/db
	// to find the primary through Redis Sentinel (package redisurl has the
	// whole grammar). TAYORI_REDIS_URL, default "redis://127.0.0.1:6379/0".
	RedisURL string `yaml:"redis_url"`
	// SMTPURL is the relay: smtp://[user[:password]@]host[:port][?tls=none|starttls|implicit],
	// or smtps:// for implicit TLS. TAYORI_SMTP_URL, default
	// "smtp://127.0.0.1:1025?tls=none" (the demo's local inbox).
	SMTPURL string `yaml:"smtp_url"`
	// BaseURL is the public URL of the web server, used in every link of
	// every message (unsubscribe, preferences, archive). TAYORI_BASE_URL,
	// default "http://127.0.0.1:8080".
	BaseURL string `yaml:"base_url"`
	// HTTPAddr is where `tayori serve` listens. TAYORI_HTTP_ADDR, default
	// "127.0.0.1:8080".
	HTTPAddr string `yaml:"http_addr"`
	// Secrets are the HMAC keys for links, newest first; each "id:secret".
	// TAYORI_SECRET (comma-separated) or TAYORI_SECRET_FILE (one per line).
	// If neither is set, EnsureSecret generates a key once into
	// GeneratedSecret (<DataDir>/secret).
	Secrets []Secret `yaml:"-"`
	// GeneratedSecret is <DataDir>/secret when no secret is configured:
	// where the generated key is read from, or will be written to.
	GeneratedSecret string `yaml:"-"`
	// SecretFile is TAYORI_SECRET_FILE, when the keys come from a file.
	SecretFile string `yaml:"-"`
	// File is the configuration file read (--config or TAYORI_CONFIG), if any.
	File string `yaml:"-"`

	// From is the sender, e.g. "AI政策動向 <newsletter@news.example.jp>".
	// TAYORI_FROM.
	From string `yaml:"from"`
	// ReplyTo is an address that reads replies. TAYORI_REPLY_TO, default From.
	ReplyTo string `yaml:"reply_to"`
	// PostalAddress and Contact are shown in every footer (特定電子メール法 Art. 4).
	// TAYORI_POSTAL_ADDRESS, TAYORI_CONTACT.
	PostalAddress string `yaml:"postal_address"`
	Contact       string `yaml:"contact"`
	// FeedbackID is the stable sender id for Gmail's Feedback-ID header
	// (5–15 letters or digits). TAYORI_FEEDBACK_ID, default "tayori".
	FeedbackID string `yaml:"feedback_id"`
	// BounceLabel is the subdomain of the From domain that receives
	// bounces: each copy's envelope sender is b+TOKEN@<label>.<from-domain>
	// (VERP). "none" keeps the From address as envelope sender, for a relay
	// that sets its own (Amazon SES, SendGrid); Message-IDs still carry the
	// token. TAYORI_BOUNCE_LABEL, default "bounce".
	BounceLabel string `yaml:"bounce_label"`
	// PrecedenceBulk adds "Precedence: bulk" to newsletter copies (those
	// with a List-Id), which Exchange and most vacation responders honour
	// besides Auto-Submitted (RFC 3834; checklist item 10).
	// TAYORI_PRECEDENCE_BULK, default true.
	PrecedenceBulk bool `yaml:"precedence_bulk"`
	// DKIMDomain, DKIMSelector, DKIMKeyFile turn on DKIM signing when all
	// three are set. TAYORI_DKIM_DOMAIN, TAYORI_DKIM_SELECTOR, TAYORI_DKIM_KEY_FILE.
	DKIMDomain   string `yaml:"dkim_domain"`
	DKIMSelector string `yaml:"dkim_selector"`
	DKIMKeyFile  string `yaml:"dkim_key_file"`

	// RatePerSecond caps messages per second to the relay, across all
	// worker processes. TAYORI_RATE, default 0 (no cap).
	RatePerSecond int `yaml:"rate"`
	// SMTPConns is the number of SMTP connections a worker process keeps
	// open; SMTPMaxConns caps them across all processes.
	// TAYORI_SMTP_CONNS default 4; TAYORI_SMTP_MAX_CONNS default 0 (no cap).
	SMTPConns    int `yaml:"smtp_conns"`
	SMTPMaxConns int `yaml:"smtp_max_conns"`
	// Concurrency is the number of Asynq tasks a worker runs at once.
	// TAYORI_CONCURRENCY, default 8.
	Concurrency int `yaml:"concurrency"`
	// ShutdownTimeout is how long a worker waits for in-flight work on
	// shutdown. TAYORI_SHUTDOWN_TIMEOUT, default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Monthly is the cron spec (in Timezone) of a fixed monthly send of
	// <IssuesDir>/<YYYY-MM>.md (or .txt) to MonthlyList; "" for none (the
	// console's send rules apply either way). Read by every process that
	// may schedule, so whichever holds the scheduler's lease sends it.
	// TAYORI_MONTHLY, default "".
	Monthly string `yaml:"monthly"`
	// MonthlyList is the list of the monthly send. TAYORI_MONTHLY_LIST,
	// default "monthly".
	MonthlyList string `yaml:"monthly_list"`
	// IssuesDir is where the monthly send and the console's send rules
	// find an issue not uploaded to the console. TAYORI_ISSUES_DIR,
	// default "issues".
	IssuesDir string `yaml:"issues_dir"`
	// Timezone of schedules and of every time the CLI and the console
	// show. TAYORI_TIMEZONE, default "Asia/Tokyo".
	Timezone string `yaml:"timezone"`

	// LogLevel is debug, info, warn or error. TAYORI_LOG_LEVEL, default info.
	LogLevel string `yaml:"log_level"`
	// TrustProxy makes the web server take the client address from
	// X-Forwarded-For. TAYORI_TRUST_PROXY, default false.
	TrustProxy bool `yaml:"trust_proxy"`
	// LogFormat is text, json or auto (text on a terminal). TAYORI_LOG_FORMAT, default auto.
	LogFormat string `yaml:"log_format"`

	// The web server's limits, sized for an office whose readers and
	// editors share one NAT address.
	//
	// SignupPerIP caps signup submissions per client IP per SignupWindow
	// (past it: 429). TAYORI_SIGNUP_PER_IP, default 30;
	// TAYORI_SIGNUP_WINDOW, default 1h.
	SignupPerIP  int           `yaml:"signup_per_ip"`
	SignupWindow time.Duration `yaml:"signup_window"`
	// ConfirmPerAddress caps confirmation mails to one address per
	// ConfirmWindow; beyond it signups are taken but no mail goes out.
	// TAYORI_CONFIRM_PER_ADDRESS, default 3; TAYORI_CONFIRM_WINDOW,
	// default 24h.
	ConfirmPerAddress int           `yaml:"confirm_per_address"`
	ConfirmWindow     time.Duration `yaml:"confirm_window"`
	// LoginPerIP caps console sign-in attempts per IP per LoginWindow.
	// After LoginPerAccount failed sign-ins on one account, from any IP,
	// the account waits LoginLock before its next attempt, then twice as
	// long after each further failure, up to LoginLockMax; a successful
	// sign-in, or a LoginWindow with no failure and no wait, clears its
	// failures. TAYORI_LOGIN_PER_IP, default 30; TAYORI_LOGIN_PER_ACCOUNT,
	// default 5; TAYORI_LOGIN_LOCK, default 1m; TAYORI_LOGIN_LOCK_MAX,
	// default 15m; TAYORI_LOGIN_WINDOW, default 15m.
	LoginPerIP      int           `yaml:"login_per_ip"`
	LoginPerAccount int           `yaml:"login_per_account"`
	LoginWindow     time.Duration `yaml:"login_window"`
	LoginLock       time.Duration `yaml:"login_lock"`
	LoginLockMax    time.Duration `yaml:"login_lock_max"`
	// SessionTTL is how long a console session lasts.
	// TAYORI_SESSION_TTL, default 12h.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// WebhookLogDays is how many days the webhook delivery log keeps the
	// delivered deliveries (pending and failed ones stay until delivered
	// or their endpoint is deleted). TAYORI_WEBHOOK_LOG_DAYS, default 30.
	WebhookLogDays int `yaml:"webhook_log_days"`
	// AuditDays is how many days the console's audit log keeps an entry;
	// the workers trim older ones daily. TAYORI_AUDIT_DAYS, default 400
	// (a yearly review finds the whole year it looks back on).
	AuditDays int `yaml:"audit_days"`
	// MetricsAddr is a listen address of its own for the Prometheus
	// metrics (/metrics, no token), used by serve, worker and run alike.
	// TAYORI_METRICS_ADDR, default "" (none).
	MetricsAddr string `yaml:"metrics_addr"`
	// MetricsToken, when set, serves the metrics on the web server's
	// /metrics to requests bearing it. TAYORI_METRICS_TOKEN, default ""
	// (no /metrics on the web server).
	MetricsToken string `yaml:"-"`
}

// Secret is one HMAC key with its id.
type Secret struct {
	ID  string
	Key []byte
}
