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
