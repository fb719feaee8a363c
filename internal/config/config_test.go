package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaultsLoadAndEnsureSecretGeneratesOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c, err := Load(env("TAYORI_DATA_DIR", dir), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "sqlite:"+filepath.Join(dir, "tayori.db") || c.RedisURL != "redis://127.0.0.1:6379/0" || c.TrustProxy || !c.PrecedenceBulk {
		t.Errorf("defaults: %+v", c)
	}
	// Load writes nothing: no secret yet, and no data directory.
	if len(c.Secrets) != 0 || c.GeneratedSecret != filepath.Join(dir, "secret") {
		t.Fatalf("Load: %d secrets, generated secret %q; want none yet, to go into %s/secret", len(c.Secrets), c.GeneratedSecret, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load touched the disk: stat %s: %v", dir, err)
	}
	if err := c.EnsureSecret(); err != nil {
		t.Fatal(err)
	}
	if len(c.Secrets) != 1 {
		t.Fatalf("%d secrets after EnsureSecret, want the generated one", len(c.Secrets))
	}
	again, err := Load(env("TAYORI_DATA_DIR", dir), "")
	if err != nil || len(again.Secrets) != 1 || string(again.Secrets[0].Key) != string(c.Secrets[0].Key) {
		t.Errorf("the generated secret is not stable across loads: %v", err)
	}
	if err := again.EnsureSecret(); err != nil || string(again.Secrets[0].Key) != string(c.Secrets[0].Key) {
		t.Errorf("EnsureSecret replaced the generated secret: %v", err)
	}
	// A configured secret is used as it is, and nothing is generated.
	other := filepath.Join(t.TempDir(), "other")
	cs, err := Load(env("TAYORI_DATA_DIR", other, "TAYORI_SECRET", "k1:0123456789abcdef"), "")
	if err != nil || cs.EnsureSecret() != nil || len(cs.Secrets) != 1 || cs.Secrets[0].ID != "k1" {
		t.Fatalf("configured secret: %+v, %v", cs.Secrets, err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("EnsureSecret wrote although a secret is configured: %v", err)
	}
}

// sample holds, for every variable of Vars that sets a field, a valid value
// other than its default: a new variable without one fails
// TestEveryVariableIsReadAndShown, so the list stays complete.
var sample = map[string]string{
	"TAYORI_DATA_DIR":         "/srv/tayori",
	"TAYORI_DB":               "sqlite:/srv/tayori/other.db",
	"TAYORI_REDIS_URL":        "redis://10.0.0.5:6380/2",
	"TAYORI_SMTP_URL":         "smtp://relay.example.jp:587?tls=starttls",
	"TAYORI_BASE_URL":         "https://news.example.jp",
	"TAYORI_TRUST_PROXY":      "true",
	"TAYORI_HTTP_ADDR":        "0.0.0.0:8081",
	"TAYORI_FROM":             "便り <news@example.jp>",
	"TAYORI_REPLY_TO":         "editors@example.jp",
	"TAYORI_POSTAL_ADDRESS":   "〒100-0013 東京都千代田区霞が関1-1-1",
	"TAYORI_CONTACT":          "https://example.jp/contact",
	"TAYORI_FEEDBACK_ID":      "monthly1",
	"TAYORI_PRECEDENCE_BULK":  "false",
	"TAYORI_BOUNCE_LABEL":     "none",
	"TAYORI_DKIM_DOMAIN":      "example.jp",
	"TAYORI_DKIM_SELECTOR":    "tayori1",
	"TAYORI_DKIM_KEY_FILE":    "", // filled with a file that exists
	"TAYORI_RATE":             "40",
	"TAYORI_SMTP_CONNS":       "6",
	"TAYORI_SMTP_MAX_CONNS":   "12",
	"TAYORI_CONCURRENCY":      "3",
	"TAYORI_SHUTDOWN_TIMEOUT": "1m0s",
	"TAYORI_TIMEZONE":         "Europe/Paris",
	"TAYORI_MONTHLY":          "0 10 1 * *",
	"TAYORI_MONTHLY_LIST":     "weekly",
	"TAYORI_ISSUES_DIR":       "/srv/tayori/issues",
	"TAYORI_LOG_LEVEL":        "debug",
	"TAYORI_LOG_FORMAT":       "json",
	"TAYORI_METRICS_ADDR":     "127.0.0.1:9464",
	"TAYORI_METRICS_TOKEN":    "metrics-token-0123456789",
}

// limitSample is sample's part for the web limits (issue 22), kept apart
// so that the two lists align on their own.
var limitSample = map[string]string{
	"TAYORI_SIGNUP_PER_IP":       "100",
	"TAYORI_SIGNUP_WINDOW":       "2h0m0s",
	"TAYORI_CONFIRM_PER_ADDRESS": "2",
	"TAYORI_CONFIRM_WINDOW":      "12h0m0s",
	"TAYORI_LOGIN_PER_IP":        "50",
	"TAYORI_LOGIN_PER_ACCOUNT":   "8",
	"TAYORI_LOGIN_WINDOW":        "30m0s",
	"TAYORI_LOGIN_LOCK":          "2m0s",
	"TAYORI_LOGIN_LOCK_MAX":      "1h0m0s",
	"TAYORI_SESSION_TTL":         "8h0m0s",
	"TAYORI_WEBHOOK_LOG_DAYS":    "7",
	"TAYORI_AUDIT_DAYS":          "730",
}

func init() {
	for k, v := range limitSample {
		sample[k] = v
	}
}

func TestEveryVariableIsReadAndShown(t *testing.T) {
	key := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(key, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{"TAYORI_SECRET": "k1:0123456789abcdef"}
	for k, v := range sample {
		m[k] = v
	}
	m["TAYORI_DKIM_KEY_FILE"] = key
	c, err := Load(func(k string) string { return m[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{}
	for _, kv := range c.Redacted() {
		shown[kv[0]] = kv[1]
	}
	def := Defaults()
	for _, v := range Vars {
		if _, ok := shown[v.Env]; !ok {
			t.Errorf("tayori config does not show %s", v.Env)
		}
		if v.field == nil {
			continue
		}
		want, ok := m[v.Env]
		if !ok {
			t.Errorf("%s has no sample value in this test: add one", v.Env)
			continue
		}
		if got := v.get(&c); got != want {
			t.Errorf("%s=%q: the loaded configuration holds %q", v.Env, want, got)
		}
		if got := v.get(&def); got == want {
			t.Errorf("%s: the sample %q is the default, so the test proves nothing", v.Env, want)
		}
		if v.Env == "TAYORI_METRICS_TOKEN" {
			if shown[v.Env] != "<redacted>" {
				t.Errorf("tayori config shows %s as %q, want <redacted>", v.Env, shown[v.Env])
			}
			continue
		}
		if shown[v.Env] != want {
			t.Errorf("tayori config shows %s as %q, want %q", v.Env, shown[v.Env], want)
		}
	}
}

// TestVarsCoverEveryField: each field of Config that the YAML file can set
// has exactly one variable in Vars, under the same key, and every default
// in Vars parses.
func TestVarsCoverEveryField(t *testing.T) {
	var c Config
	byAddr := map[any]Var{}
	envs := map[string]bool{}
	for _, v := range Vars {
		if envs[v.Env] {
			t.Errorf("%s appears twice in Vars", v.Env)
		}
		envs[v.Env] = true
		if v.Doc == "" {
			t.Errorf("%s has no description", v.Env)
		}
		if v.field == nil {
			continue
		}
		p := v.field(&c)
		if prev, dup := byAddr[p]; dup {
			t.Errorf("%s and %s set the same field", prev.Env, v.Env)
		}
		byAddr[p] = v
		if v.Default != "" {
			var d Config
			if err := v.set(&d, v.Default); err != nil {
				t.Errorf("default of %s: %v", v.Env, err)
			}
		}
	}
	rv := reflect.ValueOf(&c).Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || tag == "" {
			continue
		}
		v, ok := byAddr[rv.Field(i).Addr().Interface()]
		if !ok {
			t.Errorf("Config.%s (yaml %q) has no variable in Vars", f.Name, tag)
			continue
		}
		if v.Key != tag {
			t.Errorf("%s: Vars says YAML key %q, Config.%s reads %q", v.Env, v.Key, f.Name, tag)
		}
	}
}

func TestEnvironmentOverridesFileOverridesDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tayori.yaml")
	if err := os.WriteFile(file, []byte("rate: 40\nsmtp_conns: 2\ntrust_proxy: true\nprecedence_bulk: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env("TAYORI_DATA_DIR", dir, "TAYORI_RATE", "70", "TAYORI_TRUST_PROXY", "false"), file)
	if err != nil {
		t.Fatal(err)
	}
	if c.PrecedenceBulk {
		t.Error("precedence_bulk: false in the file left it on")
	}
	if c.RatePerSecond != 70 || c.SMTPConns != 2 || c.TrustProxy {
		t.Errorf("rate %d (want 70, env), conns %d (want 2, file), trust proxy %v (want false, env)",
			c.RatePerSecond, c.SMTPConns, c.TrustProxy)
	}
}

func TestEveryProblemIsReportedAtOnceNamingItsVariable(t *testing.T) {
	_, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_TRUST_PROXY", "perhaps", "TAYORI_PRECEDENCE_BULK", "bulk",
		"TAYORI_CONCURRENCY", "0", "TAYORI_SHUTDOWN_TIMEOUT", "soon", "TAYORI_MONTHLY", "first tuesday"), "")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *config.Error", err)
	}
	for _, v := range []string{"TAYORI_TRUST_PROXY", "TAYORI_PRECEDENCE_BULK", "TAYORI_CONCURRENCY", "TAYORI_SHUTDOWN_TIMEOUT", "TAYORI_MONTHLY"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}
	if len(ce.Problems) != 5 {
		t.Errorf("%d problems, want 5: %q", len(ce.Problems), ce.Problems)
	}
}

func TestUnknownKeyInTheFileIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tayori.yaml")
	if err := os.WriteFile(file, []byte("smtp_ulr: smtp://relay\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(env(), file)
	if err == nil || !strings.Contains(err.Error(), "smtp_ulr") {
		t.Fatalf("err = %v, want one naming the misspelt key", err)
	}
}

func TestRedactedListsEveryVariableAndHidesSecrets(t *testing.T) {
	c, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_SECRET", "k2:0123456789abcdef0123,k1:fedcba9876543210fedc",
		"TAYORI_SMTP_URL", "smtp://user:hunter2hunter2@relay.example.jp:587?tls=starttls"), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range c.Redacted() {
		got[kv[0]] = kv[1]
	}
	if len(got) != len(Vars) {
		t.Errorf("Redacted lists %d variables, Vars %d", len(got), len(Vars))
	}
	for _, v := range Vars {
		if _, ok := got[v.Env]; !ok {
			t.Errorf("Redacted does not list %s", v.Env)
		}
	}
	all := strings.Join(func() []string {
		var s []string
		for _, v := range got {
			s = append(s, v)
		}
		return s
	}(), "\n")
	for _, secret := range []string{"hunter2hunter2", "0123456789abcdef0123", "fedcba9876543210fedc"} {
		if strings.Contains(all, secret) {
			t.Errorf("Redacted shows the secret %q", secret)
		}
	}
	if got["TAYORI_SECRET"] != "k2:<redacted>,k1:<redacted>" {
		t.Errorf("TAYORI_SECRET shows %q, want the key ids newest first", got["TAYORI_SECRET"])
	}
}

func TestRedisURLTakesTheSentinelForm(t *testing.T) {
	const u = "redis+sentinel://:datapw@s1.internal:26379,s2.internal:26379/mymaster/2?sentinel_password=sentpw"
	c, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_REDIS_URL", u), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != u {
		t.Errorf("RedisURL = %q", c.RedisURL)
	}
	var shown string
	for _, kv := range c.Redacted() {
		if kv[0] == "TAYORI_REDIS_URL" {
			shown = kv[1]
		}
	}
	if want := "redis+sentinel://:xxxxx@s1.internal:26379,s2.internal:26379/mymaster/2?sentinel_password=xxxxx"; shown != want {
		t.Errorf("redacted %q, want %q", shown, want)
	}
}

func TestBadRedisURLNamesTheVariableAndTheForms(t *testing.T) {
	for _, u := range []string{
		"redis+sentinel://:hunter2@s1:26379,s2:26379",    // no master name
		"redis+sentinel://:hunter2@s1:26379/mymaster/99", // database out of range
		"redis://:hunter2@127.0.0.1:6379/42",
		"sentinel://:hunter2@s1:26379/mymaster",
	} {
		_, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_REDIS_URL", u), "")
		if err == nil {
			t.Errorf("%s: accepted", u)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"TAYORI_REDIS_URL: want redis://", "redis+sentinel://[:password@]host:port[,host:port…]/master/db"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", u, msg, want)
			}
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("%s: error shows the password: %q", u, msg)
		}
	}
}

// TestVarsListsEveryVariableLoadReads: the list `tayori config`, the README
// and the deployment files' test rely on names every variable Load asks for.
func TestVarsListsEveryVariableLoadReads(t *testing.T) {
	asked := map[string]bool{}
	getenv := func(k string) string {
		asked[k] = true
		if k == "TAYORI_DATA_DIR" {
			return t.TempDir()
		}
		return ""
	}
	if _, err := Load(getenv, ""); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, v := range Vars {
		listed[v.Env] = true
	}
	for k := range asked {
		if !listed[k] {
			t.Errorf("Load reads %s, which Vars does not list", k)
		}
	}
	if len(asked) < 20 {
		t.Errorf("Load asked for only %d variables: %v", len(asked), asked)
	}
}

// TAYORI_DB must name its engine: a bare path, a misspelt scheme, an
// empty path or a PostgreSQL URL without a host or database is refused
// with a message naming the variable and never the password, so a typo
// never opens (and creates) some other database.
func TestDBWithoutSchemeIsRefused(t *testing.T) {
	for v, want := range map[string]string{
		"data/tayori.db":                              "no scheme",
		"/srv/tayori/tayori.db":                       "no scheme",
		"sqllite:data/tayori.db":                      "scheme sqllite",
		"sqlite3:data/tayori.db":                      "scheme sqlite3",
		"mysql://u:secretpw@db/tayori":                "scheme mysql",
		"sqlite:":                                     "file path",
		"sqlite://":                                   "file path",
		"postgres://u:secretpw@/tayori":               "names no host",
		"postgres://u:secretpw@db:5432":               "names no database",
		"postgres://u:secretpw@db:5432/tayori%zz":     "does not parse",
		"postgresql://u:secretpw@db:99999x/tayori":    "does not parse",
		"postgres://tayori:secretpw@db:5432/?sslmode": "names no database",
	} {
		t.Run(v, func(t *testing.T) {
			_, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_SECRET", "k1:0123456789abcdef", "TAYORI_DB", v), "")
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "TAYORI_DB: ") || !strings.Contains(err.Error(), want) {
				t.Fatalf("TAYORI_DB=%q: err = %v, want one naming TAYORI_DB and saying %q", v, err, want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("the message shows the password: %v", err)
			}
		})
	}
	for _, v := range []string{"sqlite:data/tayori.db", "sqlite:/srv/tayori/tayori.db", "sqlite:///srv/tayori/tayori.db",
		"postgres://tayori:secretpw@db.internal:5432/tayori?sslmode=verify-full", "postgresql://db/tayori"} {
		c, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_SECRET", "k1:0123456789abcdef", "TAYORI_DB", v), "")
		if err != nil || c.DB != v {
			t.Errorf("TAYORI_DB=%q: %q, %v", v, c.DB, err)
		}
		for _, kv := range c.Redacted() {
			if kv[0] == "TAYORI_DB" && (strings.Contains(kv[1], "secretpw") || !strings.Contains(kv[1], strings.SplitN(v, ":", 2)[0])) {
				t.Errorf("tayori config shows TAYORI_DB=%q as %q", v, kv[1])
			}
		}
	}
}
