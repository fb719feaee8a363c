package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
)

// testEnv returns a getenv for run() with a fresh data directory, the
// test's own Redis database and the given overrides.
func testEnv(t *testing.T, kv ...string) func(string) string {
	t.Helper()
	env := map[string]string{
		"TAYORI_DATA_DIR":  t.TempDir(),
		"TAYORI_SECRET":    "t1:0123456789abcdef0123456789abcdef",
		"TAYORI_BASE_URL":  "https://news.example.jp",
		"TAYORI_FROM":      "AI政策動向 <newsletter@news.example.jp>",
		"TAYORI_LOG_LEVEL": "warn",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return func(k string) string { return env[k] }
}

// runCLI runs the program as main would, returning stdout, stderr and the error.
func runCLI(t *testing.T, getenv func(string) string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, testEnv(t), "version")
	if err != nil || !strings.HasPrefix(out, "tayori ") {
		t.Fatalf("version: %q, %v", out, err)
	}
	if !strings.Contains(out, "SQLite engine: "+sqlitedb.Engine+"\n") {
		t.Errorf("version does not name the SQLite engine: %q", out)
	}
	// version works even when the configuration is broken.
	if _, _, err := runCLI(t, testEnv(t, "TAYORI_REDIS_URL", "nonsense"), "version"); err != nil {
		t.Fatalf("version with bad config: %v", err)
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	getenv := testEnv(t,
		"TAYORI_SMTP_URL", "smtp://mailer:hunter2hunter2@relay.example.jp:587?tls=starttls",
		"TAYORI_REDIS_URL", "redis://:redispass@127.0.0.1:6379/3")
	out, _, err := runCLI(t, getenv, "config")
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2hunter2", "redispass", "0123456789abcdef"} {
		if strings.Contains(out, secret) {
			t.Errorf("config output leaks %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"TAYORI_SMTP_URL", "relay.example.jp:587", "TAYORI_SECRET            t1:<redacted>", "TAYORI_BASE_URL          https://news.example.jp"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := map[string][2]string{
		"malformed redis URL": {"TAYORI_REDIS_URL", "localhost:6379"},
		"redis db too large":  {"TAYORI_REDIS_URL", "redis://127.0.0.1:6379/42"},
		"smtp scheme":         {"TAYORI_SMTP_URL", "http://relay"},
		"smtp tls mode":       {"TAYORI_SMTP_URL", "smtp://relay?tls=sometimes"},
		"rate not a number":   {"TAYORI_RATE", "fast"},
		"short secret":        {"TAYORI_SECRET", "k1:short"},
		"from with newline":   {"TAYORI_FROM", "a <a@example.jp>\r\nBcc: x@evil.example"},
		"feedback id":         {"TAYORI_FEEDBACK_ID", "x"},
		"timezone":            {"TAYORI_TIMEZONE", "Mars/Olympus"},
		"log level":           {"TAYORI_LOG_LEVEL", "loud"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := runCLI(t, testEnv(t, kv[0], kv[1]), "config")
			if err == nil || !strings.Contains(err.Error(), kv[0]) {
				t.Fatalf("err = %v; want an error naming %s", err, kv[0])
			}
		})
	}
}

func TestConfigFileAndGeneratedSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tayori.yaml")
	if err := os.WriteFile(file, []byte("http_addr: 127.0.0.1:9999\nrate: 50\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TAYORI_DATA_DIR": dir, "TAYORI_RATE": "70"}
	getenv := func(k string) string { return env[k] }
	out, _, err := runCLI(t, getenv, "--config", file, "config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "127.0.0.1:9999") {
		t.Errorf("file value not applied:\n%s", out)
	}
	if !strings.Contains(out, "TAYORI_RATE              70") {
		t.Errorf("environment must override the file:\n%s", out)
	}
	// No secret configured: config generates none (it changes nothing on
	// disk); the first command that needs one generates it, and it is reused.
	if _, err := os.Stat(filepath.Join(dir, "secret")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("config wrote a secret: %v", err)
	}
	if !strings.Contains(out, "(not set: generated into "+filepath.Join(dir, "secret")) {
		t.Errorf("config does not say where the secret will be generated:\n%s", out)
	}
	if _, _, err := runCLI(t, getenv, "--config", file, "init"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, getenv, "--config", file, "subscribers", "list"); err != nil {
		t.Fatal(err)
	}
	s1, err := os.ReadFile(filepath.Join(dir, "secret"))
	if err != nil {
		t.Fatalf("generated secret: %v", err)
	}
	if _, _, err := runCLI(t, getenv, "--config", file, "init"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, getenv, "--config", file, "subscribers", "list"); err != nil {
		t.Fatal(err)
	}
	s2, _ := os.ReadFile(filepath.Join(dir, "secret"))
	if !bytes.Equal(s1, s2) {
		t.Error("generated secret changed between runs")
	}
	out, _, err = runCLI(t, getenv, "--config", file, "config")
	if err != nil || !strings.Contains(out, "g1:<redacted> (generated, in "+filepath.Join(dir, "secret")+")") {
		t.Errorf("config does not show the generated secret's id and file (%v):\n%s", err, out)
	}
	// An unknown key in the file is an error that names the file.
	os.WriteFile(file, []byte("redis_ulr: redis://x\n"), 0o600)
	if _, _, err := runCLI(t, getenv, "--config", file, "config"); err == nil || !strings.Contains(err.Error(), "redis_ulr") {
		t.Errorf("unknown key: err = %v", err)
	}
}

// TestConfigChangesNothingOnDisk: `tayori config` on a fresh machine
// neither creates the data directory nor generates the secret, and prints
// every variable of config.Vars, in order.
func TestConfigChangesNothingOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	getenv := func(k string) string { return map[string]string{"TAYORI_DATA_DIR": dir}[k] }
	out, _, err := runCLI(t, getenv, "config")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tayori config created %s (stat: %v)", dir, err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "TAYORI_") {
			names = append(names, f[0])
		}
	}
	var want []string
	for _, v := range config.Vars {
		want = append(want, v.Env)
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("tayori config prints\n  %v\nwant config.Vars\n  %v", names, want)
	}
}

func TestRedisClientTalksToRedis(t *testing.T) {
	_, n := testutil.RedisDBNumber(t)
	getenv := testEnv(t, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n))
	a := &app{getenv: getenv, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	defer a.close()
	if err := a.setup(newRootCmd(a)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := a.redisClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "tayori:probe", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Unreachable Redis: a clear error that says what to do.
	a2 := &app{getenv: testEnv(t, "TAYORI_REDIS_URL", "redis://127.0.0.1:1/0"), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	defer a2.close()
	if err := a2.setup(newRootCmd(a2)); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.redisClient(ctx); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigRedactsTheSentinelForm(t *testing.T) {
	getenv := testEnv(t,
		"TAYORI_REDIS_URL", "redis+sentinel://:redispass@s1.internal:26379,s2.internal/tayori/2?sentinel_password=sentinelpass")
	out, _, err := runCLI(t, getenv, "config")
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"redispass", "sentinelpass"} {
		if strings.Contains(out, secret) {
			t.Errorf("config output leaks %q:\n%s", secret, out)
		}
	}
	if want := "redis+sentinel://:xxxxx@s1.internal:26379,s2.internal/tayori/2?sentinel_password=xxxxx"; !strings.Contains(out, want) {
		t.Errorf("config output lacks %q:\n%s", want, out)
	}
	// A Sentinel URL without a master name: the variable, both forms, no password.
	_, _, err = runCLI(t, testEnv(t, "TAYORI_REDIS_URL", "redis+sentinel://:redispass@s1.internal:26379"), "config")
	if err == nil || !strings.Contains(err.Error(), "TAYORI_REDIS_URL: want redis://") ||
		!strings.Contains(err.Error(), "no master name") || strings.Contains(err.Error(), "redispass") {
		t.Errorf("err = %v", err)
	}
}

func TestRedisClientSentinelDoesNotAnswer(t *testing.T) {
	a := &app{getenv: testEnv(t, "TAYORI_REDIS_URL", "redis+sentinel://127.0.0.1:1/tayori/0?dial_timeout=200ms"),
		stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	defer a.close()
	if err := a.setup(newRootCmd(a)); err != nil {
		t.Fatal(err)
	}
	_, err := a.redisClient(context.Background())
	if err == nil || !strings.Contains(err.Error(), `redis at master "tayori" via Sentinel 127.0.0.1:1 (db 0) does not answer`) {
		t.Fatalf("err = %v", err)
	}
}

// createStore creates the SQLite store at path with Tayori's schema
// (store.Migrate), as `tayori init` does, for a test to fill before the
// CLI runs on it.
func createStore(ctx context.Context, path string) (*sql.DB, error) {
	db, err := store.Create(ctx, "sqlite:"+path)
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db.SQL, nil
}

// A command line cobra cannot parse exits 2, whatever its words; a
// command that fails exits 1.
func TestExitCodes(t *testing.T) {
	getenv := testEnv(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"bogus"}, 2},
		{[]string{"worker", "bogus"}, 2},
		{[]string{"--bogus", "version"}, 2},
		{[]string{"version", "-z"}, 2},
		{[]string{"feedback", "--days", "x"}, 2},
		{[]string{"send"}, 2},
		{[]string{"compose", "check", filepath.Join(t.TempDir(), "missing.md")}, 1},
	} {
		_, _, err := runCLI(t, getenv, c.args...)
		if err == nil || exitCode(err) != c.want {
			t.Errorf("tayori %s: %v, exit %d; want %d", strings.Join(c.args, " "), err, exitCode(err), c.want)
		}
	}
}
