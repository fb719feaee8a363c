package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/rhythm"
)

// startApp runs the long-running command args on an app of the test's
// own until stdout shows want "listening on" lines (none: at once), and
// returns the app, its stdout and stderr, and a stop function that ends
// it and returns its error (stop may run on another goroutine).
func startApp(t *testing.T, getenv func(string) string, want int, args ...string) (*app, *syncBuffer, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	a := newApp(getenv, strings.NewReader(""), stdout, stderr)
	done := make(chan error, 1)
	go func() { done <- a.execute(ctx, args) }()
	for deadline := time.Now().Add(30 * time.Second); strings.Count(stdout.String(), "listening on") < want; {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("%s ended before serving: %v\n%s", args[0], err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%s did not start serving within 30 s:\n%s", args[0], stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := false
	var err error
	stop := func() error {
		if stopped {
			return err
		}
		stopped = true
		cancel()
		select {
		case err = <-done:
		case <-time.After(40 * time.Second):
			err = fmt.Errorf("%s did not stop within 40 s after its context ended", args[0])
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return a, stdout, stderr, stop
}

// TestRunMakesEachPartOnce: `tayori run` (worker, scheduler, webhooks,
// retention and web server in one process) opens one subscriber store
// and makes one renderer, one send gate, one ledger and one of each other
// part, and the store's events reach both the webhooks' outbox and the
// welcome mail, whichever service changes a reader; `tayori serve` and
// `tayori worker` likewise make each of theirs once.
func TestRunMakesEachPartOnce(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	base := sendTestEnv(t, smtp)
	getenv := func(k string) string {
		if k == "TAYORI_HTTP_ADDR" || k == "TAYORI_METRICS_ADDR" {
			return "127.0.0.1:0" // its metrics listener says when all is built
		}
		return base(k)
	}
	shared := []string{"subscribers", "renderer", "gate", "ledger", "webhook emitter", "webhooks", "rhythm", "clicks", "web store"}
	for _, c := range []struct {
		cmd     string
		serves  int // listeners
		welcome bool
	}{
		{"run", 2, true},
		{"serve", 2, true},
		{"worker", 1, false},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			a, _, _, stop := startApp(t, getenv, c.serves, c.cmd)
			if err := stop(); err != nil {
				t.Fatalf("%s: %v", c.cmd, err)
			}
			want := map[string]int{}
			for _, name := range shared {
				want[name] = 1
			}
			sinks := []any{a.emitter}
			if c.welcome {
				want["welcome"] = 1
				sinks = append(sinks, a.welcome)
			}
			if !maps.Equal(map[string]int(a.parts), want) {
				t.Errorf("tayori %s made %v, want %v", c.cmd, a.parts, want)
			}
			var got []any
			for _, s := range a.events.sinks {
				got = append(got, s)
			}
			if a.emitter == nil || !slices.Equal(got, sinks) {
				t.Errorf("the subscriber store's sinks are %v; want the webhooks' outbox (and the welcome mail where the web is served) %v", got, sinks)
			}
		})
	}
}

// TestWorkersScheduleOnce: two `tayori worker`s on one database and one
// Redis (two machines of a deployment with no `tayori run`) both offer to
// schedule; one takes the scheduler's lease, and the console's send rule
// that is due creates its send exactly once.
func TestWorkersScheduleOnce(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	base := sendTestEnv(t, smtp)
	issues := t.TempDir()
	getenv := func(k string) string {
		if k == "TAYORI_LOG_LEVEL" {
			return "info"
		}
		return base(k)
	}
	if _, _, err := runCLI(t, getenv, "init"); err != nil {
		t.Fatal(err)
	}
	// A rule that ran a minute ago (the console's "the Nth weekday at
	// HH:MM", in UTC), and its month's issue in --issues.
	ran := time.Now().UTC().Add(-time.Minute).Truncate(time.Minute)
	rule := rhythm.Rule{List: "monthly", Enabled: true, Nth: (ran.Day()-1)/7 + 1, Weekday: ran.Weekday(),
		Hour: ran.Hour(), Minute: ran.Minute(), Zone: "UTC"}
	if rule.Nth > 4 {
		rule.Nth = -1 // the 29th to the 31st: the last of its weekday
	}
	if !rule.In(ran.Year(), ran.Month()).Equal(ran) {
		t.Fatalf("rule %+v does not run at %s", rule, ran)
	}
	month := rule.Month(ran)
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(issues, month+".txt"), sample, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(getenv("TAYORI_DATA_DIR"), "tayori.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = store.Rhythm(db).SaveRule(ctx, rule, "hanako", time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, _, errs1, stop1 := startApp(t, getenv, 0, "worker", "--issues", issues)
	_, _, errs2, stop2 := startApp(t, getenv, 0, "worker", "--issues", issues)
	logs := func() string { return errs1.String() + errs2.String() }
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs(), "rhythm: monthly send created"); {
		if time.Now().After(deadline) {
			t.Fatalf("no worker created the rule's send within 30 s:\n%s", logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both have offered for the lease by now (every 5 s); give the
	// other a few more ticks to do something it should not.
	time.Sleep(2*queue.SchedulerLeaseTTL/3 + time.Second)
	// Read the logs while both run: once the holder stops, the other
	// rightly takes the lease over.
	seen := logs()
	if n := strings.Count(seen, "scheduler lease taken"); n != 1 {
		t.Errorf("the scheduler's lease was taken %d times, want 1:\n%s", n, seen)
	}
	if n := strings.Count(seen, "rhythm: monthly send created"); n != 1 {
		t.Errorf("the rule's send was created %d times, want 1:\n%s", n, seen)
	}
	errc := make(chan error, 1)
	go func() { errc <- stop1() }()
	if err := stop2(); err != nil {
		t.Errorf("worker 2: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("worker 1: %v", err)
	}
	out, _, err := runCLI(t, getenv, "sends")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, " monthly "); n != 1 {
		t.Errorf("%d sends to the list, want 1:\n%s", n, out)
	}
}
