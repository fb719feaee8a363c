package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/webhooks"
)

// TestRunDeliversWebhooks: `tayori run` wires the webhooks end to end: a
// signup over HTTP reaches an endpoint as a signed subscriber.created,
// and a subscriber unsubscribed by the CLI (no worker running, no Redis
// used) reaches it once the worker runs.
func TestRunDeliversWebhooks(t *testing.T) {
	_, n := testutil.RedisDBNumber(t)
	smtp := testutil.StartSMTP(t)
	getenv := initEnv(t, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n), "TAYORI_HTTP_ADDR", "127.0.0.1:0",
		"TAYORI_SMTP_URL", smtp.URL(), "TAYORI_SHUTDOWN_TIMEOUT", "5s", "TAYORI_BASE_URL", "http://127.0.0.1:1")
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(getenv("TAYORI_DATA_DIR"), "tayori.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := store.Webhooks(db)
	secret := webhooks.NewSecret()
	recv := testutil.StartWebhookReceiver(t, secret, 1)
	if _, err := webhooks.New(st, nil, webhooks.Config{}, nil).AddEndpoint(ctx, webhooks.Endpoint{URL: recv.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	// The CLI records its events without a worker.
	if _, _, err := runCLI(t, getenv, "subscribers", "add", "cli@example.jp", "--regions", "jp", "--topics", "policy"); err != nil {
		t.Fatalf("subscribers add: %v", err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(rctx, []string{"run"}, getenv, strings.NewReader(""), stdout, stderr) }()
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("run did not start the web server:\n%s", stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	res, err := http.Post(base+"/subscribe", "application/x-www-form-urlencoded",
		strings.NewReader("email=run%40example.jp&region=jp&topic=policy&consent=yes&lang=ja"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	got := recv.WaitAccepted(t, 2, 30*time.Second)
	emails := map[string]bool{}
	for _, a := range got {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Subscriber struct{ Email string } `json:"subscriber"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(a.Body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != webhooks.SubscriberCreated {
			t.Errorf("event %s, want %s", ev.Type, webhooks.SubscriberCreated)
		}
		emails[ev.Data.Subscriber.Email] = true
		if n := recv.Attempts(a.ID); n != 2 {
			t.Errorf("%s: %d attempts, want 2 (one refused)", a.ID, n)
		}
	}
	if !emails["cli@example.jp"] || !emails["run@example.jp"] {
		t.Errorf("events for %v, want cli@example.jp and run@example.jp", emails)
	}
	if recv.BadRequests() != 0 {
		t.Errorf("%d requests failed verification", recv.BadRequests())
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
