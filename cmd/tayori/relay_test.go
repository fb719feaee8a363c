package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// TestSendShowsRelayDown: with the relay refusing connections, the
// worker's circuit breaker opens and `send status` and `send wait` say
// why the send does not progress; the copies stay open (waiting), none
// failed.
func TestSendShowsRelayDown(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	smtp.Refuse()
	startWorker(t, getenv)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	if out, _, err := runCLI(t, getenv, "send", issue, "--force"); err != nil || !strings.HasPrefix(out, "send 1:") {
		t.Fatalf("send: %v\n%s", err, out)
	}
	var out string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if out, _, err = runCLI(t, getenv, "send", "status", "1"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "relay:") {
			break
		}
	}
	if !strings.Contains(out, "relay:    relay 127.0.0.1:") || !strings.Contains(out, "unreachable since") ||
		!strings.Contains(out, ": connection refused; the workers retry it") {
		t.Errorf("send status with the relay down:\n%s", out)
	}
	if !strings.Contains(out, "waiting:  3") || !strings.Contains(out, "failed:   0 permanently, 0 after retries") {
		t.Errorf("with the relay down the copies should wait, none failed:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wout bytes.Buffer
	_ = run(ctx, []string{"send", "wait", "1"}, getenv, strings.NewReader(""), &wout, &bytes.Buffer{})
	if !strings.Contains(wout.String(), "send 1: relay 127.0.0.1:") || !strings.Contains(wout.String(), "connection refused") {
		t.Errorf("send wait with the relay down:\n%s", wout.String())
	}
	if err := smtp.Restore(); err != nil {
		t.Fatal(err)
	}
}
