package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// sendTestEnv returns a getenv for run() with the test's Redis database,
// the in-process SMTP server and a data directory holding readers.
func sendTestEnv(t *testing.T, smtp *testutil.SMTPServer) func(string) string {
	t.Helper()
	_, n := testutil.RedisDBNumber(t)
	dir := t.TempDir()
	getenv := testEnv(t, "TAYORI_DATA_DIR", dir, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n),
		"TAYORI_SMTP_URL", smtp.URL(), "TAYORI_POSTAL_ADDRESS", "東京都港区六本木1-1-1",
		"TAYORI_CONTACT", "https://news.example.jp/contact", "TAYORI_CONCURRENCY", "4")
	// Readers, added through the real store on the file the CLI will use.
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(dir, "tayori.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "t1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	for addr, p := range map[string]string{"jp@example.jp": "jp", "us@example.jp": "us", "eu@example.jp": "eu"} {
		rs, _ := audience.ParseRegions(p)
		pr := audience.Prefs{Regions: rs, Topics: audience.StandardTopics}
		if _, err := store.Add(ctx, subscribers.NewSubscriber{Email: addr, Prefs: &pr, Method: subscribers.API,
			Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, Text: "同意"}, Cause: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return getenv
}

// startWorker runs `tayori worker` in the background until the test ends,
// and checks that it stops cleanly.
func startWorker(t *testing.T, getenv func(string) string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"worker"}, getenv, strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("worker did not stop after its context ended")
		}
	})
}

func TestSendCommands(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")

	// The sample has two lint errors: sending refuses without --force.
	_, stderr, err := runCLI(t, getenv, "send", issue)
	if !errors.Is(err, errSilent) || !strings.Contains(stderr, "--force") {
		t.Errorf("send of an issue with errors: %v\n%s", err, stderr)
	}
	// A dry run needs no --force: the errors are warnings (issue 22).
	out, stderr, err := runCLI(t, getenv, "send", issue, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, ":70: error") || !strings.Contains(stderr, "--force") {
		t.Errorf("dry run does not warn of the lint errors:\n%s", stderr)
	}
	if !strings.Contains(out, "3 readers in 3 variants") || !strings.Contains(out, "Nothing was sent") {
		t.Errorf("dry run output:\n%s", out)
	}

	startWorker(t, getenv)

	out, _, err = runCLI(t, getenv, "send", issue, "--wait", "--force")
	if err != nil {
		t.Fatalf("send --wait: %v\n%s", err, out)
	}
	if !strings.Contains(out, "state:    done") || !strings.Contains(out, "sent:     3") {
		t.Errorf("send --wait output:\n%s", out)
	}
	if n := len(smtp.Messages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	// Each copy's envelope sender is its VERP return path on the bounce
	// subdomain (TAYORI_BOUNCE_LABEL's default), distinct per reader.
	verp := regexp.MustCompile(`^b\+[A-Za-z0-9_-]+@bounce\.news\.example\.jp$`) // default TAYORI_FROM
	paths := map[string]bool{}
	for _, m := range smtp.Messages() {
		if !verp.MatchString(m.From) {
			t.Errorf("copy to %v: MAIL FROM %q is not a VERP return path", m.To, m.From)
		}
		paths[m.From] = true
		// TAYORI_PRECEDENCE_BULK's default.
		if !bytes.Contains(m.Raw, []byte("\r\nPrecedence: bulk\r\n")) {
			t.Errorf("copy to %v has no Precedence: bulk", m.To)
		}
	}
	if len(paths) != 3 {
		t.Errorf("%d distinct return paths for 3 readers", len(paths))
	}
	// The same issue to the same list again is refused, naming send 1;
	// --again sends it to the reader who joined since, only.
	_, _, err = runCLI(t, getenv, "send", issue, "--force")
	if err == nil || !strings.Contains(err.Error(), "issue 2025-11 was already sent to list monthly by send 1 (done, created ") ||
		!strings.Contains(err.Error(), "3 copies sent): nothing was sent") || !strings.Contains(err.Error(), "add --again") {
		t.Errorf("a second send: %v", err)
	}
	_, _, err = runCLI(t, getenv, "send", issue, "--force", "--list", "monthy")
	if err == nil || err.Error() != `list "monthy" does not exist: nothing was sent (tayori subscribers lists shows the lists)` {
		t.Errorf("a send to an unknown list: %v", err)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "add", "new@example.jp", "--consent-at", "2026-01-05", "--consent-text", "同意"); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, getenv, "send", issue, "--force", "--again", "--wait")
	if err != nil || !strings.Contains(out, "planned:  1") || !strings.Contains(out, "sent:     1") ||
		!strings.Contains(out, "had it:   3 (left out: an earlier send of the issue to the list gave them a copy)") {
		t.Errorf("send --again: %v\n%s", err, out)
	}
	if n := len(smtp.Messages()); n != 4 {
		t.Errorf("%d messages after --again, want 4", n)
	}
	if n := len(smtp.MessagesTo("new@example.jp")); n != 1 {
		t.Errorf("the new reader got %d copies", n)
	}

	out, _, err = runCLI(t, getenv, "sends")
	if err != nil || !strings.Contains(out, "2025-11") || !strings.Contains(out, "done") {
		t.Errorf("sends: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, getenv, "send", "status", "1")
	if err != nil || !strings.Contains(out, "planned:  3") {
		t.Errorf("send status: %v\n%s", err, out)
	}
	_, _, err = runCLI(t, getenv, "send", "pause", "1")
	if err == nil || !strings.Contains(err.Error(), "it is done") {
		t.Errorf("pause of a done send: %v", err)
	}

	// A test send needs no --force either.
	out, _, err = runCLI(t, getenv, "send", issue, "--regions", "us", "--test-to", "editor@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "queued test copy") {
		t.Errorf("test send output:\n%s", out)
	}
	msgs := smtp.WaitFor(5, 10*time.Second)
	var test int
	for _, m := range msgs {
		if m.To[0] == "editor@example.jp" {
			test++
		}
	}
	if test != 1 {
		t.Errorf("%d test copies, want 1 (one variant with --regions us)", test)
	}
}

func TestRunStartsAndStopsGracefully(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "--monthly", "0 9 1 * *", "--issues", t.TempDir()}, func(k string) string {
			if k == "TAYORI_HTTP_ADDR" {
				return "127.0.0.1:0"
			}
			return getenv(k)
		}, strings.NewReader(""), stdout, &strings.Builder{})
	}()
	// Stop it once it serves (a loaded machine may take seconds to start),
	// so what is tested is the graceful stop of a running process.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stdout.String(), "listening on"); {
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not start serving within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
}

// The command line's words for a second send while the first runs.
func TestSendRefusalWhileRunning(t *testing.T) {
	created := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	err := sendRefusal(fmt.Errorf("queue: %w", &queue.DuplicateError{Issue: "2025-11", List: "monthly", Again: true,
		Earlier: queue.EarlierSend{ID: 12, State: queue.Sending, CreatedAt: created}}))
	want := "issue 2025-11 is being sent to list monthly by send 12 (sending, created " + created.Local().Format("2006-01-02 15:04 MST") +
		"): nothing was sent.\nWait for it to finish (tayori send wait 12) or cancel it (tayori send cancel 12); " +
		"then --again sends the issue to the readers who have not had it"
	if err == nil || err.Error() != want {
		t.Errorf("refusal:\n%v\nwant\n%s", err, want)
	}
}
