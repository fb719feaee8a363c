package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/testutil"
)

// `tayori send resume ID` re-creates from the store the tasks of a send
// that Redis lost (here: Redis emptied before any worker planned it),
// and says what it did; the send then goes out once to each reader.
func TestSendResumeRecreatesWhatRedisLost(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	out, _, err := runCLI(t, getenv, "send", issue, "--force")
	if err != nil || !strings.HasPrefix(out, "send 1: ") {
		t.Fatalf("send: %v\n%s", err, out)
	}
	opt, err := redis.ParseURL(getenv("TAYORI_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, getenv, "send", "resume", "1")
	if err != nil || out != "send 1: re-queued its planning, which Redis had lost\n" {
		t.Fatalf("send resume after Redis lost the send's tasks: %v\n%q", err, out)
	}
	out, _, err = runCLI(t, getenv, "send", "resume", "1")
	if err != nil || out != "send 1: every task is in Redis; nothing to re-queue\n" {
		t.Fatalf("send resume again: %v\n%q", err, out)
	}
	startWorker(t, getenv)
	out, _, err = runCLI(t, getenv, "send", "wait", "1")
	if err != nil || !strings.Contains(out, "sent:     3") {
		t.Fatalf("send wait: %v\n%s", err, out)
	}
	if n := len(smtp.Messages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	if _, _, err := runCLI(t, getenv, "send", "resume", "1"); err == nil || !strings.Contains(err.Error(), "it is done") {
		t.Errorf("resume of a done send: %v", err)
	}
	_ = time.Second
}
