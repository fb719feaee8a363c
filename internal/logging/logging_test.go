package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/logging"
)

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

func TestNewInWritesTimesInTheZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := logging.NewIn(&buf, "info", "json", ny)
	l.Info("scheduled", "at", time.Date(2031, 1, 15, 14, 0, 0, 0, time.UTC))
	var rec struct {
		Time string `json:"time"`
		At   string `json:"at"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if rec.At != "2031-01-15T09:00:00-05:00" {
		t.Errorf("attribute at = %q, want 2031-01-15T09:00:00-05:00", rec.At)
	}
	if !strings.HasSuffix(rec.Time, "-05:00") && !strings.HasSuffix(rec.Time, "-04:00") {
		t.Errorf("record time %q is not in New York's zone", rec.Time)
	}
}
