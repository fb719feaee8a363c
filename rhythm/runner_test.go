package rhythm_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/rhythm"
)

// sendsLog stands in for the queue at the edge and records what the
// runner asked of it.
type sendsLog struct {
	mu      sync.Mutex
	created []string // "list month"
	mails   []queue.TransactionalMessage
}

func (l *sendsLog) CreateMonthlySend(_ context.Context, _ queue.IssueLoader, slug, list string, _ time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.created = append(l.created, list+" "+slug)
	return nil
}

func (l *sendsLog) EnqueueMessage(_ context.Context, m queue.TransactionalMessage) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mails = append(l.mails, m)
	return "t", nil
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func openStore(t *testing.T, eng testutil.Engine) rhythm.Store {
	t.Helper()
	return store.Rhythm(testutil.OpenStore(t, eng))
}

// TestRunnerSendsAndRemindsOnce: with the first Tuesday at 10:00 Tokyo and
// a reminder 3 days before, ticks every few minutes across December and
// January (the year end) remind once per month whose issue is not ready,
// never for a ready one, create each month's send once (two runners
// sharing the store, as two processes would), and skip a skipped month.
func TestRunnerSendsAndRemindsOnce(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testRunnerSendsAndRemindsOnce(t, eng) })
	}
}

func testRunnerSendsAndRemindsOnce(t *testing.T, eng testutil.Engine) {
	ctx := context.Background()
	st := openStore(t, eng)
	log := &sendsLog{}
	clk := &clock{t: at("2026-11-20 00:00")}
	readyMonths := map[string]bool{"2027-01": true}
	ready := func(_ context.Context, slug string) (bool, error) { return readyMonths[slug], nil }
	load := func(context.Context, string) (*compose.Issue, error) { return nil, nil }
	cfg := rhythm.Config{BaseURL: "https://news.example.jp", Now: clk.Now}
	a := rhythm.NewRunner(st, log, ready, load, cfg, nil)
	b := rhythm.NewRunner(st, log, ready, load, cfg, nil)
	rule := rhythm.Rule{List: "monthly", Enabled: true, Nth: 1, Weekday: time.Tuesday, Hour: 10, RemindDays: 3,
		RemindTo: []string{"editor@example.jp"}, Skip: []string{"2027-02"}}
	if err := a.SaveRule(ctx, rule, "hanako"); err != nil {
		t.Fatal(err)
	}
	next, ok, err := a.Next(ctx, "monthly")
	if err != nil || ok || !next.Equal(at("2026-12-01 10:00")) {
		t.Fatalf("Next = %s, ready %v, %v; want 2026-12-01 10:00, not ready", next, ok, err)
	}
	for clk.t.Before(at("2027-03-10 00:00")) {
		a.Tick(ctx)
		b.Tick(ctx)
		clk.t = clk.t.Add(29 * time.Minute)
	}
	wantSends := []string{"monthly 2026-12", "monthly 2027-01", "monthly 2027-03"}
	if strings.Join(log.created, ",") != strings.Join(wantSends, ",") {
		t.Errorf("sends created %v, want %v (February skipped)", log.created, wantSends)
	}
	// Reminders: December and March (not ready), not January (ready),
	// not February (skipped).
	var subjects []string
	for _, m := range log.mails {
		if m.To != "editor@example.jp" || !strings.Contains(string(m.Text), "まだ準備できていません") {
			t.Errorf("reminder %+v", m)
		}
		subjects = append(subjects, m.Subject)
	}
	if len(subjects) != 2 || !strings.Contains(subjects[0], "2026-12 号") || !strings.Contains(subjects[1], "2027-03 号") {
		t.Errorf("reminders %q, want one for 2026-12 and one for 2027-03", subjects)
	}
	if len(subjects) > 0 && !strings.Contains(subjects[0], "2026年12月1日 10:00 JST") {
		t.Errorf("reminder subject %q, want the run in Tokyo time", subjects[0])
	}
}

// TestRunnerSkipNext: skipping moves the next run a month on.
func TestRunnerSkipNext(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) { testRunnerSkipNext(t, eng) })
	}
}

func testRunnerSkipNext(t *testing.T, eng testutil.Engine) {
	ctx := context.Background()
	st := openStore(t, eng)
	clk := &clock{t: at("2026-12-15 00:00")}
	r := rhythm.NewRunner(st, &sendsLog{}, func(context.Context, string) (bool, error) { return true, nil }, nil,
		rhythm.Config{Now: clk.Now}, nil)
	if err := r.SaveRule(ctx, rhythm.Rule{List: "monthly", Enabled: true, Nth: 1, Weekday: time.Tuesday, Hour: 10}, "hanako"); err != nil {
		t.Fatal(err)
	}
	m, err := r.SkipNext(ctx, "monthly", "hanako")
	if err != nil || m != "2027-01" {
		t.Fatalf("SkipNext = %q, %v; want 2027-01", m, err)
	}
	if next, _, _ := r.Next(ctx, "monthly"); !next.Equal(at("2027-02-02 10:00")) {
		t.Errorf("after skipping January, next = %s", next)
	}
	if err := r.SaveRule(ctx, rhythm.Rule{List: "monthly", Nth: 7}, "hanako"); err == nil {
		t.Error("a bad rule was saved")
	}
}
