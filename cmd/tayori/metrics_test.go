package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// scrape reads the metrics at url.
func scrape(t testing.TB, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", url, res.StatusCode, b)
	}
	return string(b)
}

// sample is the value of name{labels} (labels in the exposition's order,
// which is sorted) in expo, or -1.
func sample(expo, name, labels string) float64 {
	key := name
	if labels != "" {
		key += "{" + labels + "}"
	}
	for line := range strings.SplitSeq(expo, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// A worker that delivers to the SMTP test server, scraped on
// TAYORI_METRICS_ADDR: each counter moves by what happened. Of three
// readers, one copy is accepted, one refused for good (550 5.1.1: a bad
// mailbox) and one refused for now (451: retried later); TAYORI_RATE=2
// makes the third copy wait for the rate limit.
func TestWorkerMetrics(t *testing.T) {
	smtp := testutil.StartSMTP(t,
		testutil.FailRcpt("eu@example.jp", testutil.Reply(550, "5.1.1", "no such mailbox")),
		testutil.FailRcpt("us@example.jp", testutil.Reply(451, "4.3.0", "try again later")))
	base := sendTestEnv(t, smtp)
	getenv := func(k string) string {
		switch k {
		case "TAYORI_METRICS_ADDR":
			return "127.0.0.1:0"
		case "TAYORI_RATE":
			return "2"
		}
		return base(k)
	}
	ctx, stop := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"worker"}, getenv, strings.NewReader(""), stdout, &syncBuffer{}) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("worker did not stop")
		}
	}()
	re := regexp.MustCompile(`metrics listening on (http://127\.0\.0\.1:\d+/metrics)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the worker did not start its metrics listener:\n%s", stdout.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := scrape(t, url)
	for _, s := range []struct{ name, labels string }{
		{"tayori_copies_sent_total", `kind="issue"`}, {"tayori_copies_failed_total", `class="bad_mailbox",kind="issue"`},
		{"tayori_copies_retried_total", `class="temporary",kind="issue"`}, {"tayori_smtp_reply_seconds_count", ""},
		{"tayori_sends", `state="sending"`},
	} {
		if v := sample(before, s.name, s.labels); v != 0 {
			t.Errorf("before the send, %s{%s} = %v, want 0", s.name, s.labels, v)
		}
	}

	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	if out, _, err := runCLI(t, getenv, "send", issue, "--force"); err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	var after string
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = scrape(t, url)
		if sample(after, "tayori_copies_sent_total", `kind="issue"`) == 1 && sample(after, "tayori_copies_failed_total", `class="bad_mailbox",kind="issue"`) == 1 &&
			sample(after, "tayori_copies_retried_total", `class="temporary",kind="issue"`) == 1 &&
			sample(after, "tayori_queue_tasks", `queue="newsletter",state="retry"`) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the counters did not move as the copies went:\n%s", after)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := map[string]float64{
		`tayori_copies_sent_total{kind="issue"}`:                             1,
		`tayori_copies_sent_total{kind="test"}`:                              0,
		`tayori_copies_failed_total{class="bad_mailbox",kind="issue"}`:       1,
		`tayori_copies_failed_total{class="temporary",kind="issue"}`:         0,
		`tayori_copies_failed_total{class="permanent",kind="issue"}`:         0,
		`tayori_copies_retried_total{class="temporary",kind="issue"}`:        1,
		`tayori_copies_retried_total{class="unavailable",kind="issue"}`:      0,
		`tayori_copies_retried_total{class="temporary",kind="confirmation"}`: 0,
		"tayori_smtp_reply_seconds_count":                                    3,
		`tayori_sends{state="sending"}`:                                      1,
		`tayori_sends{state="done"}`:                                         0,
		`tayori_queue_tasks{queue="newsletter",state="retry"}`:               1,
		`tayori_queue_tasks{queue="newsletter",state="archived"}`:            0,
		`tayori_queue_inspect_up`:                                            1,
	}
	for k, w := range want {
		name, labels, _ := strings.Cut(strings.TrimSuffix(k, "}"), "{")
		if got := sample(after, name, labels); got != w {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("%d messages accepted, want 1", n)
	}
	if v := sample(after, "tayori_relay_connections_dialled_total", ""); v < 1 {
		t.Errorf("relay connections dialled: %v", v)
	}
	if v := sample(after, "tayori_relay_connections_open", ""); v < 0 || v > 4 {
		t.Errorf("relay connections open: %v", v)
	}
	// Three copies at 2 a second: the third waited for the limit.
	if w, s := sample(after, "tayori_rate_limit_waits_total", ""), sample(after, "tayori_rate_limit_wait_seconds_total", ""); w < 1 || s < 0.1 {
		t.Errorf("rate-limit waits %v, %v s: want at least one, of at least 0.1 s", w, s)
	}
	if v := sample(after, "tayori_queue_processed_total", `queue="newsletter"`); v < 2 {
		t.Errorf("newsletter tasks processed: %v (the plan and the batch at least)", v)
	}
}
