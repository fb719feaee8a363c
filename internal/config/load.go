package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Var describes one setting: its environment variable, YAML key and what it
// expects. Vars is the table `tayori config` prints and the README documents.
type Var struct {
	Env     string
	Key     string
	Default string
	Doc     string
	Secret  bool
}

// Vars lists every setting in the order `tayori config` prints them.
var Vars = []Var{
	{"TAYORI_CONFIG", "", "", "optional YAML file with any of the keys below", false},
	{"TAYORI_DATA_DIR", "data_dir", "./data", "directory for the SQLite database, generated secret and caches", false},
	{"TAYORI_DB", "db", "sqlite:<data_dir>/tayori.db", "subscriber store: sqlite:PATH", false},
	{"TAYORI_REDIS_URL", "redis_url", "redis://127.0.0.1:6379/0", "Redis for Asynq and the shared rate limiter: redis://[:password@]host:port/db", true},
	{"TAYORI_SMTP_URL", "smtp_url", "smtp://127.0.0.1:1025?tls=none", "relay: smtp[s]://[user[:password]@]host[:port][?tls=none|starttls|opportunistic|implicit]", true},
	{"TAYORI_BASE_URL", "base_url", "http://127.0.0.1:8080", "public URL of the web server, used in every link of every message (https in production)", false},
	{"TAYORI_TRUST_PROXY", "trust_proxy", "false", "trust X-Forwarded-For from the reverse proxy in front (per-IP limits, consent records); only behind one", false},
	{"TAYORI_HTTP_ADDR", "http_addr", "127.0.0.1:8080", "listen address of the web server", false},
	{"TAYORI_SECRET", "", "(generated into <data_dir>/secret)", "HMAC keys for links, newest first: id:secret[,id:secret…] (16+ bytes each)", true},
	{"TAYORI_SECRET_FILE", "", "", "file with one id:secret per line, newest first (instead of TAYORI_SECRET)", false},
	{"TAYORI_FROM", "from", "AI政策動向 <newsletter@news.example.jp>", "sender mailbox; its domain is used for Message-ID and List-Id", false},
	{"TAYORI_REPLY_TO", "reply_to", "(From)", "address that reads replies", false},
	{"TAYORI_POSTAL_ADDRESS", "postal_address", "〒100-0000 東京都千代田区（設定してください）", "sender's postal address, shown in every footer (特定電子メール法 Art. 4)", false},
	{"TAYORI_CONTACT", "contact", "(Reply-To)", "contact for enquiries (e-mail, phone or URL), shown in every footer", false},
	{"TAYORI_FEEDBACK_ID", "feedback_id", "tayori", "stable sender id in Gmail's Feedback-ID header (5–15 letters or digits)", false},
	{"TAYORI_BOUNCE_LABEL", "bounce_label", "bounce", "envelope sender b+TOKEN@<label>.<from-domain> of each copy, for bounces (VERP; MX and SPF needed there); none: the From address", false},
	{"TAYORI_DKIM_DOMAIN", "dkim_domain", "", "DKIM d= domain (signing is on when domain, selector and key file are set)", false},
	{"TAYORI_DKIM_SELECTOR", "dkim_selector", "", "DKIM selector", false},
	{"TAYORI_DKIM_KEY_FILE", "dkim_key_file", "", "PEM private key (RSA or Ed25519)", false},
	{"TAYORI_RATE", "rate", "0", "messages per second to the relay across all workers (0: no cap)", false},
	{"TAYORI_SMTP_CONNS", "smtp_conns", "4", "SMTP connections per worker process", false},
	{"TAYORI_SMTP_MAX_CONNS", "smtp_max_conns", "0", "SMTP connections across all worker processes (0: no cap)", false},
	{"TAYORI_CONCURRENCY", "concurrency", "8", "Asynq tasks a worker runs at once", false},
	{"TAYORI_SHUTDOWN_TIMEOUT", "shutdown_timeout", "30s", "how long a worker waits for in-flight work on shutdown", false},
	{"TAYORI_TIMEZONE", "timezone", "Asia/Tokyo", "time zone of schedules and dates shown to editors", false},
	{"TAYORI_LOG_LEVEL", "log_level", "info", "debug, info, warn or error", false},
	{"TAYORI_LOG_FORMAT", "log_format", "auto", "text, json or auto (text on a terminal, JSON otherwise)", false},
}

// Error lists every invalid setting, each naming its variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		DataDir:         "./data",
		RedisURL:        "redis://127.0.0.1:6379/0",
		SMTPURL:         "smtp://127.0.0.1:1025?tls=none",
		BaseURL:         "http://127.0.0.1:8080",
		HTTPAddr:        "127.0.0.1:8080",
		From:            "AI政策動向 <newsletter@news.example.jp>",
		PostalAddress:   "〒100-0000 東京都千代田区（設定してください）",
		FeedbackID:      "tayori",
		BounceLabel:     "bounce",
		PrecedenceBulk:  true,
		SMTPConns:       4,
		Concurrency:     8,
		ShutdownTimeout: 30 * time.Second,
		Timezone:        "Asia/Tokyo",
		LogLevel:        "info",
		LogFormat:       "auto",
	}
}

// Load builds the configuration: defaults, then the YAML file named by
// configFile or TAYORI_CONFIG, then TAYORI_* variables from getenv. It
// validates everything and returns an *Error naming every bad variable.
// When no secret is configured it creates one in <DataDir>/secret.
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
	str := func(env string, dst *string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
	}
	num := func(env string, dst *int, min int) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				bad(env, "want a whole number, got %q", v)
				return
			}
			*dst = n
		}
		if *dst < min {
			bad(env, "want a number ≥ %d, got %d", min, *dst)
		}
	}
	str("TAYORI_DATA_DIR", &c.DataDir)
	str("TAYORI_DB", &c.DB)
	str("TAYORI_REDIS_URL", &c.RedisURL)
	str("TAYORI_SMTP_URL", &c.SMTPURL)
	str("TAYORI_BASE_URL", &c.BaseURL)
	str("TAYORI_HTTP_ADDR", &c.HTTPAddr)
	str("TAYORI_FROM", &c.From)
	str("TAYORI_REPLY_TO", &c.ReplyTo)
	str("TAYORI_POSTAL_ADDRESS", &c.PostalAddress)
	str("TAYORI_CONTACT", &c.Contact)
	str("TAYORI_FEEDBACK_ID", &c.FeedbackID)
	str("TAYORI_BOUNCE_LABEL", &c.BounceLabel)
	str("TAYORI_DKIM_DOMAIN", &c.DKIMDomain)
	str("TAYORI_DKIM_SELECTOR", &c.DKIMSelector)
	str("TAYORI_DKIM_KEY_FILE", &c.DKIMKeyFile)
	str("TAYORI_TIMEZONE", &c.Timezone)
	str("TAYORI_LOG_LEVEL", &c.LogLevel)
	str("TAYORI_LOG_FORMAT", &c.LogFormat)
	boolean := func(env string, dst *bool) {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(env, "want true or false, got %q", v)
				return
			}
			*dst = b
		}
	}
	boolean("TAYORI_TRUST_PROXY", &c.TrustProxy)
	boolean("TAYORI_PRECEDENCE_BULK", &c.PrecedenceBulk)
	num("TAYORI_RATE", &c.RatePerSecond, 0)
	num("TAYORI_SMTP_CONNS", &c.SMTPConns, 1)
	num("TAYORI_SMTP_MAX_CONNS", &c.SMTPMaxConns, 0)
	num("TAYORI_CONCURRENCY", &c.Concurrency, 1)
	if v := getenv("TAYORI_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("TAYORI_SHUTDOWN_TIMEOUT", "want a positive duration such as 30s, got %q", v)
		} else {
			c.ShutdownTimeout = d
		}
	}

	if c.DB == "" {
		c.DB = "sqlite:" + filepath.Join(c.DataDir, "tayori.db")
	}
	// The engine must be named: a bare path or a misspelt scheme would
	// otherwise open (and create) a database nobody meant.
	switch path, ok := strings.CutPrefix(c.DB, "sqlite:"); {
	case !ok && strings.Contains(c.DB, "://"):
		bad("TAYORI_DB", "want sqlite:PATH, got scheme of %q (PostgreSQL is not supported by this build yet)", redactURL(c.DB))
	case !ok:
		bad("TAYORI_DB", "want sqlite:PATH (for example sqlite:%s), got %q without the sqlite: scheme",
			filepath.Join(c.DataDir, "tayori.db"), c.DB)
	case strings.TrimPrefix(path, "//") == "":
		bad("TAYORI_DB", "want sqlite:PATH, got %q with no path", c.DB)
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		bad("TAYORI_REDIS_URL", "want redis://[:password@]host:port/db, got %q", redactURL(c.RedisURL))
	} else if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || n > 15 {
			bad("TAYORI_REDIS_URL", "want a database number 0–15 in the path, got %q", db)
		}
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
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		bad("TAYORI_TIMEZONE", "want an IANA zone such as Asia/Tokyo, got %q", c.Timezone)
	}
	if !oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error") {
		bad("TAYORI_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if !oneOf(c.LogFormat, "auto", "text", "json") {
		bad("TAYORI_LOG_FORMAT", "want auto, text or json, got %q", c.LogFormat)
	}

	secrets, err := loadSecrets(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	}
	c.Secrets = secrets
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	if len(c.Secrets) == 0 {
		s, err := generatedSecret(c.DataDir)
		if err != nil {
			return c, &Error{Problems: []string{"TAYORI_SECRET: not set, and " + err.Error()}}
		}
		c.Secrets = []Secret{s}
	}
	return c, nil
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

// generatedSecret reads <dir>/secret, creating it with 32 random bytes on
// first use, so that a demo needs no setup and links stay valid across runs.
func generatedSecret(dir string) (Secret, error) {
	path := filepath.Join(dir, "secret")
	if data, err := os.ReadFile(path); err == nil {
		id, key, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
		if !ok || len(key) < 16 {
			return Secret{}, fmt.Errorf("%s is malformed (want id:secret)", path)
		}
		return Secret{ID: id, Key: []byte(key)}, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Secret{}, err
	}
	s := Secret{ID: "g1", Key: []byte(base64.RawURLEncoding.EncodeToString(b))}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Secret{}, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	if err := os.WriteFile(path, []byte(s.ID+":"+string(s.Key)+"\n"), 0o600); err != nil {
		return Secret{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	return s, nil
}

// Redacted returns the value of each Var as `tayori config` prints it,
// with passwords and secrets hidden.
func (c Config) Redacted() [][2]string {
	secretIDs := make([]string, len(c.Secrets))
	for i, s := range c.Secrets {
		secretIDs[i] = s.ID + ":<redacted>"
	}
	return [][2]string{
		{"TAYORI_DATA_DIR", c.DataDir},
		{"TAYORI_DB", c.DB},
		{"TAYORI_REDIS_URL", redactURL(c.RedisURL)},
		{"TAYORI_SMTP_URL", redactURL(c.SMTPURL)},
		{"TAYORI_BASE_URL", c.BaseURL},
		{"TAYORI_TRUST_PROXY", strconv.FormatBool(c.TrustProxy)},
		{"TAYORI_HTTP_ADDR", c.HTTPAddr},
		{"TAYORI_SECRET", strings.Join(secretIDs, ",")},
		{"TAYORI_FROM", c.From},
		{"TAYORI_REPLY_TO", c.ReplyTo},
		{"TAYORI_POSTAL_ADDRESS", c.PostalAddress},
		{"TAYORI_CONTACT", c.Contact},
		{"TAYORI_FEEDBACK_ID", c.FeedbackID},
		{"TAYORI_BOUNCE_LABEL", c.BounceLabel},
		{"TAYORI_PRECEDENCE_BULK", strconv.FormatBool(c.PrecedenceBulk)},
		{"TAYORI_DKIM_DOMAIN", c.DKIMDomain},
		{"TAYORI_DKIM_SELECTOR", c.DKIMSelector},
		{"TAYORI_DKIM_KEY_FILE", c.DKIMKeyFile},
		{"TAYORI_RATE", strconv.Itoa(c.RatePerSecond)},
		{"TAYORI_SMTP_CONNS", strconv.Itoa(c.SMTPConns)},
		{"TAYORI_SMTP_MAX_CONNS", strconv.Itoa(c.SMTPMaxConns)},
		{"TAYORI_CONCURRENCY", strconv.Itoa(c.Concurrency)},
		{"TAYORI_SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()},
		{"TAYORI_TIMEZONE", c.Timezone},
		{"TAYORI_LOG_LEVEL", c.LogLevel},
		{"TAYORI_LOG_FORMAT", c.LogFormat},
	}
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
