package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestServeEndToEnd creates an editor and an API token with the CLI, runs
// `tayori serve` on port 0, waits for /healthz and uses the API and a
// public page; cancelling the context shuts the server down cleanly.
func TestServeEndToEnd(t *testing.T) {
	_, n := testutil.RedisDBNumber(t)
	smtp := testutil.StartSMTP(t)
	getenv := initEnv(t, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n), "TAYORI_HTTP_ADDR", "127.0.0.1:0",
		"TAYORI_SMTP_URL", smtp.URL(), "TAYORI_SHUTDOWN_TIMEOUT", "5s")

	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"editors", "add", "hanako"}, getenv,
		strings.NewReader("correct horse battery staple\n"), &out, &errb); err != nil {
		t.Fatalf("editors add: %v\n%s", err, errb.String())
	}
	// Too short a password is refused.
	if err := run(context.Background(), []string{"editors", "add", "jiro"}, getenv, strings.NewReader("short\n"), io.Discard, io.Discard); err == nil {
		t.Error("a 5-character password was accepted")
	}
	tokOut, _, err := runCLI(t, getenv, "editors", "token", "hanako", "--label", "ci")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(tokOut)
	if !strings.HasPrefix(tok, "tyr_") {
		t.Fatalf("token %q", tok)
	}
	list, _, err := runCLI(t, getenv, "editors", "list")
	if err != nil || !strings.Contains(list, "hanako") {
		t.Fatalf("editors list: %q %v", list, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenv, strings.NewReader(""), stdout, io.Discard) }()

	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz never answered 200")
		}
		time.Sleep(20 * time.Millisecond)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/issues", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("API with token: %d", res.StatusCode)
	}
	res, err = http.Get(base + "/api/v1/issues")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("API without token: %d", res.StatusCode)
	}
	res, err = http.Get(base + "/subscribe")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "AI政策動向") {
		t.Errorf("/subscribe: %d", res.StatusCode)
	}

	// The console's feedback page shows the send gate (wired from the
	// feedback events and the queue's deliveries): open on a new database.
	jar, _ := cookiejar.New(nil)
	console := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err = console.PostForm(base+"/admin/login", url.Values{"name": {"hanako"}, "password": {"correct horse battery staple"},
		"next": {"/admin/feedback"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/admin/feedback" || !strings.Contains(string(body), `id="gate" data-state="open"`) {
		t.Errorf("/admin/feedback after sign-in: %d %s\n%s", res.StatusCode, res.Request.URL.Path, body)
	}

	// Revoked tokens stop working.
	if _, _, err := runCLI(t, getenv, "editors", "revoke", "hanako"); err != nil {
		t.Fatal(err)
	}
	res, err = http.DefaultClient.Do(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("revoked token: %d", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestRunServesWebAndDelivers runs `tayori run` (worker and web server in
// one process) and signs up through the web: the confirmation mail goes
// through the transactional queue and the worker to the SMTP server, and
// its link confirms the subscription.
func TestRunServesWebAndDelivers(t *testing.T) {
	_, n := testutil.RedisDBNumber(t)
	smtp := testutil.StartSMTP(t)
	getenv := initEnv(t, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n), "TAYORI_HTTP_ADDR", "127.0.0.1:0",
		"TAYORI_SMTP_URL", smtp.URL(), "TAYORI_SHUTDOWN_TIMEOUT", "5s", "TAYORI_BASE_URL", "http://127.0.0.1:1",
		"TAYORI_LOG_LEVEL", "info")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run"}, getenv, strings.NewReader(""), stdout, stderr) }()
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatal("run did not start the web server")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	form := "email=run%40example.jp&region=jp&topic=policy&consent=yes&lang=ja"
	res, err := http.Post(base+"/subscribe", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	msgs := smtp.WaitFor(1, 20*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "run@example.jp" {
		t.Fatalf("messages %+v", msgs)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(msgs[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if v := msg.Header.Get("List-Unsubscribe-Post"); v != "" {
		t.Errorf("confirmation mail carries List-Unsubscribe-Post: %q", v)
	}
	body, _ := io.ReadAll(msg.Body)
	if msg.Header.Get("Content-Transfer-Encoding") == "base64" {
		body, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body)))
		if err != nil {
			t.Fatal(err)
		}
	}
	m := regexp.MustCompile(`/confirm/(v1\.[A-Za-z0-9_.-]+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no confirm link in the mail:\n%s", body)
	}
	res, err = http.Post(base+"/confirm/"+string(m[1]), "application/x-www-form-urlencoded", strings.NewReader("lang=ja"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	// The retention purge ran at start (and found the fresh signup too
	// young to delete: it was confirmed above).
	if !strings.Contains(stderr.String(), "retention purge") || regexp.MustCompile(`level"?[=:]"?ERROR`).MatchString(stderr.String()) {
		t.Errorf("no clean retention purge in the log:\n%s", stderr.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
}
