package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/tayori-news/tayori/internal/redisurl"
	"github.com/tayori-news/tayori/internal/store"
)

// Var describes one setting: its environment variable, YAML key, default
// and what it expects. Vars is the one list of settings: Load reads the
// environment through it, Defaults applies its defaults, `tayori config`
// prints it, and the README's configuration table is checked against it.
type Var struct {
	// Env is the environment variable, TAYORI_….
	Env string
	// Key is the YAML key in the configuration file; empty when the
	// setting has none (the file itself, the secrets).
	Key string
	// Default is the value used when nothing sets it, in the form the
	// variable takes (Defaults parses it). Empty for no default.
	Default string
	// Shown is the default as people read it, when it is derived from
	// other settings ("(From)"); empty means Default.
	Shown string
	// Doc says what the setting does and what it expects.
	Doc string
	// Secret settings are redacted by `tayori config`.
	Secret bool

	// field points at the setting in a Config (*string, *bool, *int or
	// *time.Duration); nil for settings read by hand (the file, secrets).
	field func(*Config) any
}

// DefaultText is the default as the README and `tayori config --help`
// show it: Shown if set, else Default.
func (v Var) DefaultText() string {
	if v.Shown != "" {
		return v.Shown
	}
	return v.Default
}

// Vars lists every setting in the order `tayori config` prints them.
var Vars = []Var{
	{Env: "TAYORI_CONFIG", Doc: "optional YAML file with any of the keys below"},
	{Env: "TAYORI_DATA_DIR", Key: "data_dir", Default: "./data", Doc: "directory for the SQLite database, generated secret and caches",
		field: func(c *Config) any { return &c.DataDir }},
	{Env: "TAYORI_DB", Key: "db", Shown: "sqlite:<data_dir>/tayori.db", Secret: true, Doc: "the store: `sqlite:PATH` (one machine; the file must exist, `tayori init` creates it) or `postgres://user:pass@host:5432/db?sslmode=…` (shared by several machines; `tayori init` creates the tables); the scheme is required",
		field: func(c *Config) any { return &c.DB }},
	{Env: "TAYORI_REDIS_URL", Key: "redis_url", Default: "redis://127.0.0.1:6379/0", Secret: true,
		Doc:   "Redis for Asynq, the shared rate limits and the web limits: `redis[s]://[:password@]host:port/db`, or through Sentinel `redis[s]+sentinel://[:password@]host:port[,host:port…]/master/db[?sentinel_password=…]`",
		field: func(c *Config) any { return &c.RedisURL }},
	{Env: "TAYORI_SMTP_URL", Key: "smtp_url", Default: "smtp://127.0.0.1:1025?tls=none", Secret: true,
		Doc:   "relay: `smtp[s]://[user[:password]@]host[:port][?tls=none|starttls|opportunistic|implicit]`",
		field: func(c *Config) any { return &c.SMTPURL }},
	{Env: "TAYORI_BASE_URL", Key: "base_url", Default: "http://127.0.0.1:8080",
		Doc:   "public URL of the web server, used in every link of every message (https in production)",
		field: func(c *Config) any { return &c.BaseURL }},
	{Env: "TAYORI_TRUST_PROXY", Key: "trust_proxy", Default: "false",
		Doc:   "trust X-Forwarded-For from the reverse proxy in front (per-IP limits, consent records); only behind one",
		field: func(c *Config) any { return &c.TrustProxy }},
	{Env: "TAYORI_SIGNUP_PER_IP", Key: "signup_per_ip", Default: "30",
		Doc:   "signup submissions per client IP per signup window, then 429 (an office behind one NAT shares an IP)",
		field: func(c *Config) any { return &c.SignupPerIP }},
	{Env: "TAYORI_SIGNUP_WINDOW", Key: "signup_window", Default: "1h", Doc: "window of the per-IP signup limit",
		field: func(c *Config) any { return &c.SignupWindow }},
	{Env: "TAYORI_CONFIRM_PER_ADDRESS", Key: "confirm_per_address", Default: "3",
		Doc:   "confirmation mails to one address per confirm window; further signups are answered alike but send nothing",
		field: func(c *Config) any { return &c.ConfirmPerAddress }},
	{Env: "TAYORI_CONFIRM_WINDOW", Key: "confirm_window", Default: "24h", Doc: "window of the per-address confirmation mail cap",
		field: func(c *Config) any { return &c.ConfirmWindow }},
	{Env: "TAYORI_LOGIN_PER_IP", Key: "login_per_ip", Default: "30", Doc: "console sign-in attempts per IP per login window, then 429",
		field: func(c *Config) any { return &c.LoginPerIP }},
	{Env: "TAYORI_LOGIN_PER_ACCOUNT", Key: "login_per_account", Default: "5",
		Doc:   "failed console sign-ins per account (from any IP) after which the account must wait before each further attempt (TAYORI_LOGIN_LOCK, doubling with each failure up to TAYORI_LOGIN_LOCK_MAX); a successful sign-in resets the count",
		field: func(c *Config) any { return &c.LoginPerAccount }},
	{Env: "TAYORI_LOGIN_LOCK", Key: "login_lock", Default: "1m", Doc: "an account's first wait after TAYORI_LOGIN_PER_ACCOUNT failed sign-ins; each further failure doubles it",
		field: func(c *Config) any { return &c.LoginLock }},
	{Env: "TAYORI_LOGIN_LOCK_MAX", Key: "login_lock_max", Default: "15m", Doc: "the longest wait of an account after failed sign-ins: the longest a stranger typing an editor's name can keep that editor out at a time",
		field: func(c *Config) any { return &c.LoginLockMax }},
	{Env: "TAYORI_LOGIN_WINDOW", Key: "login_window", Default: "15m", Doc: "window of the per-IP sign-in limit; an account's failed sign-ins are forgotten after a window with no failure and no wait",
		field: func(c *Config) any { return &c.LoginWindow }},
	{Env: "TAYORI_SESSION_TTL", Key: "session_ttl", Default: "12h", Doc: "lifetime of a console session",
		field: func(c *Config) any { return &c.SessionTTL }},
	{Env: "TAYORI_WEBHOOK_LOG_DAYS", Key: "webhook_log_days", Default: "30",
		Doc:   "days the webhook delivery log keeps delivered deliveries (the workers trim older ones; pending and failed ones stay)",
		field: func(c *Config) any { return &c.WebhookLogDays }},
	{Env: "TAYORI_AUDIT_DAYS", Key: "audit_days", Default: "400",
		Doc:   "days the console's audit log keeps an entry (the workers trim older ones daily); 400 lets a yearly review find the whole year it looks back on, with a month to spare",
		field: func(c *Config) any { return &c.AuditDays }},
	{Env: "TAYORI_HTTP_ADDR", Key: "http_addr", Default: "127.0.0.1:8080", Doc: "listen address of the web server",
		field: func(c *Config) any { return &c.HTTPAddr }},
	{Env: "TAYORI_SECRET", Shown: "(generated into <data_dir>/secret)", Secret: true,
		Doc: "HMAC keys for links, newest first: `id:secret[,id:secret…]` (16+ bytes each)"},
	{Env: "TAYORI_SECRET_FILE", Doc: "file with one `id:secret` per line, newest first (instead of TAYORI_SECRET)"},
	{Env: "TAYORI_FROM", Key: "from", Default: "AI政策動向 <newsletter@news.example.jp>",
		Doc:   "sender mailbox; its domain is used for Message-ID and List-Id",
		field: func(c *Config) any { return &c.From }},
	{Env: "TAYORI_REPLY_TO", Key: "reply_to", Shown: "(From)", Doc: "address that reads replies",
		field: func(c *Config) any { return &c.ReplyTo }},
	{Env: "TAYORI_POSTAL_ADDRESS", Key: "postal_address", Default: "〒100-0000 東京都千代田区（設定してください）",
		Doc:   "sender's postal address, shown in every footer (特定電子メール法 Art. 4)",
		field: func(c *Config) any { return &c.PostalAddress }},
	{Env: "TAYORI_CONTACT", Key: "contact", Shown: "(Reply-To)", Doc: "contact for enquiries (e-mail, phone or URL), shown in every footer",
		field: func(c *Config) any { return &c.Contact }},
	{Env: "TAYORI_FEEDBACK_ID", Key: "feedback_id", Default: "tayori", Doc: "stable sender id in Gmail's Feedback-ID header (5–15 letters or digits)",
		field: func(c *Config) any { return &c.FeedbackID }},
	{Env: "TAYORI_PRECEDENCE_BULK", Key: "precedence_bulk", Default: "true",
		Doc:   "`Precedence: bulk` on newsletter and test copies (beside `Auto-Submitted`), so Exchange and vacation responders do not answer them",
		field: func(c *Config) any { return &c.PrecedenceBulk }},
	{Env: "TAYORI_BOUNCE_LABEL", Key: "bounce_label", Default: "bounce",
		Doc:   "envelope sender `b+TOKEN@<label>.<from-domain>` of each copy, for bounces (VERP; MX and SPF needed there); `none`: the From address",
		field: func(c *Config) any { return &c.BounceLabel }},
	{Env: "TAYORI_DKIM_DOMAIN", Key: "dkim_domain", Doc: "DKIM `d=` domain (signing is on when domain, selector and key file are set)",
		field: func(c *Config) any { return &c.DKIMDomain }},
	{Env: "TAYORI_DKIM_SELECTOR", Key: "dkim_selector", Doc: "DKIM selector",
		field: func(c *Config) any { return &c.DKIMSelector }},
	{Env: "TAYORI_DKIM_KEY_FILE", Key: "dkim_key_file", Doc: "PEM private key (RSA or Ed25519)",
		field: func(c *Config) any { return &c.DKIMKeyFile }},
	{Env: "TAYORI_RATE", Key: "rate", Default: "0", Doc: "messages per second to the relay across all workers (0: no cap)",
		field: func(c *Config) any { return &c.RatePerSecond }},
	{Env: "TAYORI_SMTP_CONNS", Key: "smtp_conns", Default: "4", Doc: "SMTP connections per worker process",
		field: func(c *Config) any { return &c.SMTPConns }},
	{Env: "TAYORI_SMTP_MAX_CONNS", Key: "smtp_max_conns", Default: "0", Doc: "SMTP connections across all worker processes (0: no cap)",
		field: func(c *Config) any { return &c.SMTPMaxConns }},
	{Env: "TAYORI_CONCURRENCY", Key: "concurrency", Default: "8", Doc: "Asynq tasks a worker runs at once",
		field: func(c *Config) any { return &c.Concurrency }},
	{Env: "TAYORI_SHUTDOWN_TIMEOUT", Key: "shutdown_timeout", Default: "30s", Doc: "how long a worker waits for in-flight work on shutdown",
		field: func(c *Config) any { return &c.ShutdownTimeout }},
	{Env: "TAYORI_MONTHLY", Key: "monthly", Doc: "cron spec in TAYORI_TIMEZONE of a fixed monthly send, e.g. `0 9 1 * *` (09:00 on the 1st), of `<issues_dir>/YYYY-MM.md` to TAYORI_MONTHLY_LIST; empty: none (the console's send rules apply either way)",
		field: func(c *Config) any { return &c.Monthly }},
	{Env: "TAYORI_MONTHLY_LIST", Key: "monthly_list", Default: "monthly", Doc: "list of the monthly send",
		field: func(c *Config) any { return &c.MonthlyList }},
	{Env: "TAYORI_ISSUES_DIR", Key: "issues_dir", Default: "issues", Doc: "directory where the monthly send and the console's send rules find issues not uploaded to the console (`YYYY-MM.md` or `.txt`)",
		field: func(c *Config) any { return &c.IssuesDir }},
	{Env: "TAYORI_TIMEZONE", Key: "timezone", Default: "Asia/Tokyo", Doc: "time zone of schedules and of every time the CLI and the console show",
		field: func(c *Config) any { return &c.Timezone }},
	{Env: "TAYORI_LOG_LEVEL", Key: "log_level", Default: "info", Doc: "debug, info, warn or error",
		field: func(c *Config) any { return &c.LogLevel }},
	{Env: "TAYORI_LOG_FORMAT", Key: "log_format", Default: "auto", Doc: "text, json or auto (text on a terminal, JSON otherwise)",
		field: func(c *Config) any { return &c.LogFormat }},
	{Env: "TAYORI_METRICS_ADDR", Key: "metrics_addr",
		Doc:   "listen address of its own for the Prometheus metrics (`/metrics`, no token; keep it private), in `serve`, `worker` and `run`; empty: none",
		field: func(c *Config) any { return &c.MetricsAddr }},
	{Env: "TAYORI_METRICS_TOKEN", Secret: true,
		Doc:   "bearer token that opens the web server's `/metrics`; empty: no `/metrics` on the public listener",
		field: func(c *Config) any { return &c.MetricsToken }},
}

// set parses raw into the setting's field of c, or says what it expected.
func (v Var) set(c *Config, raw string) error {
	switch p := v.field(c).(type) {
	case *string:
		*p = raw
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", raw)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", raw)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 30s, got %q", raw)
		}
		*p = d
	default:
		panic(fmt.Sprintf("config: %s points at a %T", v.Env, p))
	}
	return nil
}

// get formats the setting's field of c as the variable would set it.
func (v Var) get(c *Config) string {
	switch p := v.field(c).(type) {
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *time.Duration:
		return p.String()
	default:
		panic(fmt.Sprintf("config: %s points at a %T", v.Env, p))
	}
}

// Error lists every invalid setting, each naming its variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Defaults returns the configuration with every default of Vars filled in.
func Defaults() Config {
	var c Config
	for _, v := range Vars {
		if v.field != nil && v.Default != "" {
			if err := v.set(&c, v.Default); err != nil {
				panic(fmt.Sprintf("config: default of %s: %v", v.Env, err))
			}
		}
	}
	return c
}

// Load builds the configuration: defaults, then the YAML file named by
// configFile or TAYORI_CONFIG, then the TAYORI_* variables of Vars from
// getenv. It validates everything and returns an *Error naming every bad
// variable. It reads files but never writes one: with no secret
// configured it reads <DataDir>/secret if an earlier command generated it,
// and leaves Secrets empty otherwise (see EnsureSecret).
func Load(getenv func(string) string, configFile string) (Config, error) {
	c := Defaults()
	var problems []string
	bad := func(env, format string, args ...any) {
		problems = append(problems, env+": "+fmt.Sprintf(format, args...))
	}
	if configFile == "" {
		configFile = getenv("TAYORI_CONFIG")
	}
	if configFile != "" {
		c.File = configFile
		data, err := os.ReadFile(configFile)
		if err != nil {
			return c, &Error{Problems: []string{"TAYORI_CONFIG: " + err.Error()}}
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, &Error{Problems: []string{fmt.Sprintf("%s: %v", configFile, err)}}
		}
	}
	for _, v := range Vars {
		if v.field == nil {
			continue
		}
		if raw := getenv(v.Env); raw != "" {
			if err := v.set(&c, raw); err != nil {
				bad(v.Env, "%v", err)
			}
		}
	}
	for _, n := range []struct {
		env      string
		got, min int
	}{
		{"TAYORI_RATE", c.RatePerSecond, 0},
		{"TAYORI_SMTP_CONNS", c.SMTPConns, 1},
		{"TAYORI_SMTP_MAX_CONNS", c.SMTPMaxConns, 0},
		{"TAYORI_CONCURRENCY", c.Concurrency, 1},
		{"TAYORI_SIGNUP_PER_IP", c.SignupPerIP, 1},
		{"TAYORI_CONFIRM_PER_ADDRESS", c.ConfirmPerAddress, 1},
		{"TAYORI_LOGIN_PER_IP", c.LoginPerIP, 1},
		{"TAYORI_LOGIN_PER_ACCOUNT", c.LoginPerAccount, 1},
		{"TAYORI_WEBHOOK_LOG_DAYS", c.WebhookLogDays, 1},
		{"TAYORI_AUDIT_DAYS", c.AuditDays, 1},
	} {
		if n.got < n.min {
			bad(n.env, "want a number ≥ %d, got %d", n.min, n.got)
		}
	}
	if c.LoginLockMax < c.LoginLock {
		bad("TAYORI_LOGIN_LOCK_MAX", "want at least TAYORI_LOGIN_LOCK (%s), got %s", c.LoginLock, c.LoginLockMax)
	}
	if c.ShutdownTimeout <= 0 {
		bad("TAYORI_SHUTDOWN_TIMEOUT", "want a positive duration such as 30s, got %s", c.ShutdownTimeout)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("TAYORI_METRICS_ADDR", "want host:port such as 127.0.0.1:9464, got %q", c.MetricsAddr)
		}
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("TAYORI_METRICS_TOKEN", "want at least 16 characters (a random token), got %d", len(c.MetricsToken))
	}

	if c.DB == "" {
		c.DB = "sqlite:" + filepath.Join(c.DataDir, "tayori.db")
	}
	// The engine must be named: a bare path or a misspelt scheme would
	// otherwise open (and create) a database nobody meant. store.Parse
	// never shows a password in its errors.
	if _, _, err := store.Parse(c.DB); err != nil {
		if !strings.Contains(c.DB, "://") && !strings.HasPrefix(c.DB, "sqlite:") {
			bad("TAYORI_DB", "%v (for example sqlite:%s), got %q", err, filepath.Join(c.DataDir, "tayori.db"), c.DB)
		} else {
			bad("TAYORI_DB", "%v", err)
		}
	}
	if _, err := redisurl.Parse(c.RedisURL); err != nil {
		bad("TAYORI_REDIS_URL", "%v", err)
	}
	if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		bad("TAYORI_SMTP_URL", "want smtp://host:port or smtps://host:port, got %q", redactURL(c.SMTPURL))
	} else if tls := u.Query().Get("tls"); tls != "" && !oneOf(tls, "none", "starttls", "opportunistic", "implicit") {
		bad("TAYORI_SMTP_URL", "tls= wants none, starttls, opportunistic or implicit, got %q", tls)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("TAYORI_BASE_URL", "want an absolute http(s) URL, got %q", c.BaseURL)
	} else {
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	if !strings.Contains(c.HTTPAddr, ":") {
		bad("TAYORI_HTTP_ADDR", "want host:port, got %q", c.HTTPAddr)
	}
	if hasCRLF(c.From, c.ReplyTo, c.PostalAddress, c.Contact) {
		bad("TAYORI_FROM", "sender settings must not contain line breaks")
	}
	if a, err := mail.ParseAddress(c.From); err != nil {
		bad("TAYORI_FROM", "want a mailbox like 'Name <addr@domain>', got %q: %v", c.From, err)
	} else if !strings.Contains(a.Address, "@") {
		bad("TAYORI_FROM", "want an address with a domain, got %q", c.From)
	}
	if c.ReplyTo == "" {
		c.ReplyTo = c.From
	} else if _, err := mail.ParseAddress(c.ReplyTo); err != nil {
		bad("TAYORI_REPLY_TO", "want a mailbox, got %q: %v", c.ReplyTo, err)
	}
	if c.Contact == "" {
		if a, err := mail.ParseAddress(c.ReplyTo); err == nil {
			c.Contact = a.Address
		}
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{5,15}$`).MatchString(c.FeedbackID) {
		bad("TAYORI_FEEDBACK_ID", "want 5–15 letters or digits, got %q", c.FeedbackID)
	}
	if c.BounceLabel != "none" && !regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`).MatchString(c.BounceLabel) {
		bad("TAYORI_BOUNCE_LABEL", "want one lower-case DNS label (bounce) or none, got %q", c.BounceLabel)
	}
	dk := []string{c.DKIMDomain, c.DKIMSelector, c.DKIMKeyFile}
	if n := countSet(dk...); n != 0 && n != 3 {
		bad("TAYORI_DKIM_DOMAIN", "set TAYORI_DKIM_DOMAIN, TAYORI_DKIM_SELECTOR and TAYORI_DKIM_KEY_FILE together")
	}
	if c.DKIMKeyFile != "" {
		if _, err := os.Stat(c.DKIMKeyFile); err != nil {
			bad("TAYORI_DKIM_KEY_FILE", "%v", err)
		}
	}
	if c.Monthly != "" {
		if _, err := cron.ParseStandard(c.Monthly); err != nil {
			bad("TAYORI_MONTHLY", "want a cron spec such as \"0 9 1 * *\" (minute hour day month weekday): %v", err)
		}
	}
	if c.MonthlyList == "" {
		bad("TAYORI_MONTHLY_LIST", "want a list key such as monthly, got nothing")
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		bad("TAYORI_TIMEZONE", "want an IANA zone such as Asia/Tokyo, got %q", c.Timezone)
	}
	if !oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error") {
		bad("TAYORI_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if !oneOf(c.LogFormat, "auto", "text", "json") {
		bad("TAYORI_LOG_FORMAT", "want auto, text or json, got %q", c.LogFormat)
	}

	c.SecretFile = getenv("TAYORI_SECRET_FILE")
	secrets, err := loadSecrets(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	}
	c.Secrets = secrets
	if err == nil && len(c.Secrets) == 0 {
		c.GeneratedSecret = filepath.Join(c.DataDir, "secret")
		s, err := readGeneratedSecret(c.GeneratedSecret)
		if err != nil {
			bad("TAYORI_SECRET", "not set, and %v", err)
		} else if s != nil {
			c.Secrets = []Secret{*s}
		}
	}
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}

// EnsureSecret generates the secret into GeneratedSecret (<DataDir>/secret,
// creating the directory) when no secret is configured and none was
// generated before, so that a demo needs no setup and links stay valid
// across runs. Commands that sign or read links call it after Load;
// `tayori config` does not, and so changes nothing on disk.
func (c *Config) EnsureSecret() error {
	if len(c.Secrets) > 0 || c.GeneratedSecret == "" {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s := Secret{ID: "g1", Key: []byte(base64.RawURLEncoding.EncodeToString(b))}
	dir := filepath.Dir(c.GeneratedSecret)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return &Error{Problems: []string{fmt.Sprintf("TAYORI_SECRET: not set, and cannot create %s: %v", dir, err)}}
	}
	// O_EXCL: two commands starting at once must not write two keys.
	f, err := os.OpenFile(c.GeneratedSecret, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		got, rerr := readGeneratedSecret(c.GeneratedSecret)
		if rerr != nil || got == nil {
			return &Error{Problems: []string{fmt.Sprintf("TAYORI_SECRET: not set, and %s: %v", c.GeneratedSecret, rerr)}}
		}
		c.Secrets = []Secret{*got}
		return nil
	}
	if err != nil {
		return &Error{Problems: []string{fmt.Sprintf("TAYORI_SECRET: not set, and cannot write %s: %v", c.GeneratedSecret, err)}}
	}
	_, err = f.WriteString(s.ID + ":" + string(s.Key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(c.GeneratedSecret)
		return &Error{Problems: []string{fmt.Sprintf("TAYORI_SECRET: not set, and cannot write %s: %v", c.GeneratedSecret, err)}}
	}
	c.Secrets = []Secret{s}
	return nil
}

func loadSecrets(getenv func(string) string) ([]Secret, error) {
	raw := getenv("TAYORI_SECRET")
	src := "TAYORI_SECRET"
	if f := getenv("TAYORI_SECRET_FILE"); f != "" {
		if raw != "" {
			return nil, errors.New("TAYORI_SECRET_FILE: set TAYORI_SECRET or TAYORI_SECRET_FILE, not both")
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("TAYORI_SECRET_FILE: %w", err)
		}
		raw = strings.ReplaceAll(strings.TrimSpace(string(data)), "\n", ",")
		src = "TAYORI_SECRET_FILE"
	}
	if raw == "" {
		return nil, nil
	}
	var out []Secret
	seen := map[string]bool{}
	for i, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, key, ok := strings.Cut(part, ":")
		if !ok {
			id, key = fmt.Sprintf("k%d", i+1), part
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`).MatchString(id) {
			return nil, fmt.Errorf("%s: key %d: id %q wants 1–16 letters, digits, '-' or '_'", src, i+1, id)
		}
		if len(key) < 16 {
			return nil, fmt.Errorf("%s: key %q: want at least 16 bytes of secret, got %d", src, id, len(key))
		}
		if seen[id] {
			return nil, fmt.Errorf("%s: key id %q appears twice", src, id)
		}
		seen[id] = true
		out = append(out, Secret{ID: id, Key: []byte(key)})
	}
	return out, nil
}

// readGeneratedSecret reads a secret written by EnsureSecret; nil when the
// file does not exist yet.
func readGeneratedSecret(path string) (*Secret, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	id, key, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok || len(key) < 16 {
		return nil, fmt.Errorf("%s is malformed (want id:secret)", path)
	}
	return &Secret{ID: id, Key: []byte(key)}, nil
}

// Redacted returns each of Vars with its value as `tayori config` prints
// it, in the same order, with passwords and secrets hidden.
func (c Config) Redacted() [][2]string {
	out := make([][2]string, 0, len(Vars))
	for _, v := range Vars {
		var val string
		switch {
		case v.Env == "TAYORI_CONFIG":
			val = c.File
		case v.Env == "TAYORI_SECRET_FILE":
			val = c.SecretFile
		case v.Env == "TAYORI_SECRET":
			ids := make([]string, len(c.Secrets))
			for i, s := range c.Secrets {
				ids[i] = s.ID + ":<redacted>"
			}
			val = strings.Join(ids, ",")
			switch {
			case c.GeneratedSecret != "" && len(c.Secrets) > 0:
				val += " (generated, in " + c.GeneratedSecret + ")"
			case c.GeneratedSecret != "":
				val = "(not set: generated into " + c.GeneratedSecret + " by the first command that needs it)"
			}
		case v.field == nil:
			panic("config: Redacted does not know how to show " + v.Env)
		case v.Env == "TAYORI_REDIS_URL":
			val = redisurl.Redact(c.RedisURL)
		case v.Env == "TAYORI_METRICS_TOKEN":
			if c.MetricsToken != "" {
				val = "<redacted>"
			}
		case v.Secret:
			val = redactURL(v.get(&c))
		default:
			val = v.get(&c)
		}
		out = append(out, [2]string{v.Env, val})
	}
	return out
}

// Warnings lists settings that work but should not reach production.
func (c Config) Warnings() []string {
	var w []string
	if strings.HasPrefix(c.BaseURL, "http://") {
		w = append(w, "TAYORI_BASE_URL is not https: one-click unsubscribe (RFC 8058) needs an https URL in production")
	}
	if c.DKIMDomain == "" {
		w = append(w, "DKIM signing is off: Gmail, Yahoo and Outlook require DKIM for bulk senders")
	}
	if strings.Contains(c.PostalAddress, "設定してください") {
		w = append(w, "TAYORI_POSTAL_ADDRESS is the placeholder: 特定電子メール法 requires the sender's real postal address")
	}
	return w
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func hasCRLF(ss ...string) bool {
	for _, s := range ss {
		if strings.ContainsAny(s, "\r\n") {
			return true
		}
	}
	return false
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}
