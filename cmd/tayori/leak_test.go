package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tayori-news/tayori/internal/testutil"
)

// startStop runs the long-running command args until it serves (its
// "listening on" lines: want of them), makes a request to each listener,
// and stops it; it fails the test if the command fails or does not stop.
func startStop(t *testing.T, getenv func(string) string, want int, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, getenv, strings.NewReader(""), stdout, &syncBuffer{}) }()
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var urls [][]string
	for deadline := time.Now().Add(30 * time.Second); len(urls) < want; urls = re.FindAllStringSubmatch(stdout.String(), -1) {
		select {
		case err := <-done:
			t.Fatalf("%s ended before serving: %v", args[0], err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start serving within 30 s:\n%s", args[0], stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, u := range urls {
		for _, path := range []string{"/metrics", "/readyz"} {
			if res, err := c.Get(u[1] + path); err == nil {
				res.Body.Close()
			}
		}
	}
	tr.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("%s did not stop after its context ended", args[0])
	}
}

// `tayori serve`, `tayori worker` and `tayori run`, each with its metrics
// listener, leave no goroutine behind once stopped: the asynq server, the
// lease and reconcile loops, the outcome writer, the HTTP servers, the
// Redis client and the store watch all end.
func TestStartStopLeavesNoGoroutines(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	base := sendTestEnv(t, smtp)
	getenv := func(k string) string {
		switch k {
		case "TAYORI_HTTP_ADDR", "TAYORI_METRICS_ADDR":
			return "127.0.0.1:0"
		case "TAYORI_SHUTDOWN_TIMEOUT":
			return "5s"
		}
		return base(k)
	}
	for _, c := range []struct {
		args []string
		want int // listeners
	}{
		{[]string{"serve"}, 2},
		{[]string{"worker"}, 1},
		{[]string{"run"}, 2},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			startStop(t, getenv, c.want, c.args...)
			goleak.VerifyNone(t, ignore)
		})
	}
}
