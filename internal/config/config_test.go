package config

import (
	"errors"
	"os"
	"path/filepath"
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

func TestDefaultsLoadAndGenerateASecret(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(env("TAYORI_DATA_DIR", dir), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DB != "sqlite:"+filepath.Join(dir, "tayori.db") || c.RedisURL != "redis://127.0.0.1:6379/0" || c.TrustProxy || !c.PrecedenceBulk {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.Secrets) != 1 {
		t.Fatalf("%d secrets, want the generated one", len(c.Secrets))
	}
	again, err := Load(env("TAYORI_DATA_DIR", dir), "")
	if err != nil || len(again.Secrets) != 1 || string(again.Secrets[0].Key) != string(c.Secrets[0].Key) {
		t.Errorf("the generated secret is not stable across loads: %v", err)
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
		"TAYORI_CONCURRENCY", "0", "TAYORI_SHUTDOWN_TIMEOUT", "soon"), "")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *config.Error", err)
	}
	for _, v := range []string{"TAYORI_TRUST_PROXY", "TAYORI_PRECEDENCE_BULK", "TAYORI_CONCURRENCY", "TAYORI_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}
	if len(ce.Problems) != 4 {
		t.Errorf("%d problems, want 4: %q", len(ce.Problems), ce.Problems)
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
	for _, v := range Vars {
		if _, ok := got[v.Env]; !ok && v.Env != "TAYORI_CONFIG" && v.Env != "TAYORI_SECRET_FILE" {
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

// TAYORI_DB must name its engine: a bare path, a misspelt scheme or an
// empty path is refused with a message naming the variable, so a typo
// never opens (and creates) some other database file.
func TestDBWithoutSchemeIsRefused(t *testing.T) {
	for _, v := range []string{"data/tayori.db", "/srv/tayori/tayori.db", "sqllite:data/tayori.db", "sqlite3:data/tayori.db",
		"postgres://u:secretpw@db/tayori", "sqlite:", "sqlite://"} {
		t.Run(v, func(t *testing.T) {
			_, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_SECRET", "k1:0123456789abcdef", "TAYORI_DB", v), "")
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "TAYORI_DB: want sqlite:PATH") {
				t.Fatalf("TAYORI_DB=%q: err = %v, want one naming TAYORI_DB", v, err)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("the message shows the password: %v", err)
			}
		})
	}
	for _, v := range []string{"sqlite:data/tayori.db", "sqlite:/srv/tayori/tayori.db", "sqlite:///srv/tayori/tayori.db"} {
		if _, err := Load(env("TAYORI_DATA_DIR", t.TempDir(), "TAYORI_SECRET", "k1:0123456789abcdef", "TAYORI_DB", v), ""); err != nil {
			t.Errorf("TAYORI_DB=%q: %v", v, err)
		}
	}
}
