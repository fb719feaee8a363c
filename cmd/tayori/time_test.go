package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

// TestCLITimesFollowTimezone: every time a command prints for people is in
// TAYORI_TIMEZONE with the zone's name, as the console shows it, not in
// the machine's zone. New York is neither this machine's zone (UTC) nor
// the default (Asia/Tokyo). Logs follow it too.
func TestCLITimesFollowTimezone(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	base := sendTestEnv(t, smtp)
	getenv := func(k string) string {
		switch k {
		case "TAYORI_TIMEZONE":
			return "America/New_York"
		case "TAYORI_LOG_LEVEL":
			return "info"
		case "TAYORI_LOG_FORMAT":
			return "json"
		}
		return base(k)
	}
	nyTime := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T`)
	issue := "../../testdata/aisi-monthly-2025-11.txt"

	// --at is read in the zone, and the scheduled time is shown in it.
	out, logs, err := runCLI(t, getenv, "send", issue, "--force", "--at", "2031-01-15 09:00")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "scheduled at 2031-01-15 09:00 EST") {
		t.Errorf("send --at: want the time in New York's zone:\n%s", out)
	}
	// The log's times too, the record's and its attributes'.
	if !strings.Contains(logs, `"scheduled_at":"2031-01-15T09:00:00-05:00"`) ||
		!regexp.MustCompile(`"time":"[^"]*-0[45]:00"`).MatchString(logs) {
		t.Errorf("send --at: want the log's times in New York's zone:\n%s", logs)
	}
	out, _, err = runCLI(t, getenv, "send", "status", "1")
	if err != nil || !strings.Contains(out, "time:     2031-01-15 09:00 EST (not after 2031-01-15 15:00 EST)") {
		t.Errorf("send status (%v):\n%s", err, out)
	}
	out, _, err = runCLI(t, getenv, "sends")
	if err != nil || !nyTime.MatchString(out) {
		t.Errorf("sends: want CREATED in New York's zone (%v):\n%s", err, out)
	}

	var eout, eerr bytes.Buffer
	if err := run(context.Background(), []string{"editors", "add", "hanako"}, getenv,
		strings.NewReader("correct horse battery\n"), &eout, &eerr); err != nil {
		t.Fatalf("editors add: %v\n%s", err, eerr.String())
	}
	out, _, err = runCLI(t, getenv, "editors", "list")
	if err != nil || !nyTime.MatchString(out) {
		t.Errorf("editors list: want CREATED in New York's zone (%v):\n%s", err, out)
	}
	out, _, err = runCLI(t, getenv, "feedback")
	if err != nil || !nyTime.MatchString(out) {
		t.Errorf("feedback: want the window's start in New York's zone (%v):\n%s", err, out)
	}
}
