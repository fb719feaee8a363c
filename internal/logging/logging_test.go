package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/tayori-news/tayori/internal/logging"
)

var _ asynq.Logger = logging.Asynq{}

func TestNewJSONAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, "warn", "auto") // a buffer is not a terminal: JSON
	l.Info("hidden")
	l.Warn("shown", "send_id", 7)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if rec["msg"] != "shown" || rec["send_id"] != float64(7) {
		t.Fatalf("record = %v", rec)
	}
}

func TestAsynqAdapter(t *testing.T) {
	var buf bytes.Buffer
	a := logging.Asynq{L: logging.New(&buf, "debug", "text")}
	a.Info("processing ", 3, " tasks")
	if !strings.Contains(buf.String(), `msg="processing 3 tasks"`) || !strings.Contains(buf.String(), "component=asynq") {
		t.Fatalf("log = %q", buf.String())
	}
}
