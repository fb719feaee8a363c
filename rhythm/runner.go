package rhythm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/queue"
)

// Store keeps the rules and what was done (store.Rhythm in internal/store picks the engine's).
type Store interface {
	Rule(ctx context.Context, list string) (Rule, bool, error)
	Rules(ctx context.Context) ([]Rule, error)
	SaveRule(ctx context.Context, r Rule, by string, now time.Time) error
	Claim(ctx context.Context, list, month, kind string, now time.Time) (bool, error)
	Unclaim(ctx context.Context, list, month, kind string) error
}

// Sends creates the month's send (implemented by *queue.Service's
// CreateMonthlySend, the scheduler's own path: one send per month and
// list).
type Sends interface {
	CreateMonthlySend(ctx context.Context, load queue.IssueLoader, slug, list string, notAfter time.Time) error
	EnqueueMessage(ctx context.Context, m queue.TransactionalMessage) (string, error)
}

// Config configures the Runner.
type Config struct {
	// NotAfter bounds how late a run may still create its send (a process
	// down at the time). Default 6h, as the monthly schedule.
	NotAfter time.Duration
	// BaseURL is the console's URL, for the reminder's link.
	BaseURL string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Runner applies the rules: the existing queue scheduler calls Tick while
// it holds its lease (queue.Schedule.Every), so one process acts.
type Runner struct {
	store Store
	sends Sends
	ready func(ctx context.Context, slug string) (bool, error)
	load  queue.IssueLoader
	cfg   Config
	log   *slog.Logger
}

// NewRunner returns a Runner. ready says whether a month's issue is ready;
// load loads it for the send.
func NewRunner(store Store, sends Sends, ready func(ctx context.Context, slug string) (bool, error), load queue.IssueLoader, cfg Config, logger *slog.Logger) *Runner {
	if cfg.NotAfter <= 0 {
		cfg.NotAfter = 6 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{store: store, sends: sends, ready: ready, load: load, cfg: cfg, log: logger}
}

// ErrInvalid: a rule with problems (see *RuleError).
var ErrInvalid = errors.New("invalid rule")

// RuleError lists a rule's problems by field.
type RuleError struct{ Problems map[string]string }

func (e *RuleError) Error() string {
	var parts []string
	for f, p := range e.Problems {
		parts = append(parts, f+": "+p)
	}
	slices.Sort(parts)
	return "rhythm rule: " + strings.Join(parts, "; ")
}

// Is makes a *RuleError match ErrInvalid.
func (e *RuleError) Is(target error) bool { return target == ErrInvalid }

// Rule returns list's rule (ok false: none yet).
func (r *Runner) Rule(ctx context.Context, list string) (Rule, bool, error) {
	return r.store.Rule(ctx, list)
}

// SaveRule checks and stores a rule.
func (r *Runner) SaveRule(ctx context.Context, rule Rule, by string) error {
	if p := rule.Validate(); len(p) > 0 {
		return &RuleError{Problems: p}
	}
	return r.store.SaveRule(ctx, rule, by, r.cfg.Now())
}

// Next returns list's next run after now and whether its issue is ready.
func (r *Runner) Next(ctx context.Context, list string) (time.Time, bool, error) {
	rule, ok, err := r.store.Rule(ctx, list)
	if err != nil || !ok || !rule.Enabled {
		return time.Time{}, false, err
	}
	next := rule.Next(r.cfg.Now())
	if next.IsZero() {
		return next, false, nil
	}
	ready, err := r.ready(ctx, rule.Month(next))
	return next, ready, err
}

// SkipNext skips the month of list's next run and returns that month.
func (r *Runner) SkipNext(ctx context.Context, list, by string) (string, error) {
	rule, ok, err := r.store.Rule(ctx, list)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("rhythm: %q has no rule: %w", list, ErrInvalid)
	}
	next := rule.Next(r.cfg.Now())
	if next.IsZero() {
		return "", fmt.Errorf("rhythm: %q has no next run: %w", list, ErrInvalid)
	}
	m := rule.Month(next)
	rule.Skip = append(rule.Skip, m)
	return m, r.store.SaveRule(ctx, rule, by, r.cfg.Now())
}

// Tick creates the sends that are due and mails the reminders that are,
// each once per month and list. Errors are logged; the next tick tries
// again.
func (r *Runner) Tick(ctx context.Context) {
	rules, err := r.store.Rules(ctx)
	if err != nil {
		r.log.WarnContext(ctx, "rhythm: rules not read", "err", err)
		return
	}
	now := r.cfg.Now()
	for _, rule := range rules {
		if !rule.Enabled {
			continue
		}
		if err := r.send(ctx, rule, now); err != nil {
			r.log.ErrorContext(ctx, "rhythm: send not created", "list", rule.List, "err", err)
		}
		if err := r.remind(ctx, rule, now); err != nil {
			r.log.ErrorContext(ctx, "rhythm: reminder not sent", "list", rule.List, "err", err)
		}
	}
}

// send creates the send of a run that is due (at or before now, less than
// NotAfter ago, not skipped).
func (r *Runner) send(ctx context.Context, rule Rule, now time.Time) error {
	run := rule.Next(now.Add(-r.cfg.NotAfter - time.Nanosecond))
	if run.IsZero() || run.After(now) {
		return nil
	}
	month := rule.Month(run)
	ok, err := r.store.Claim(ctx, rule.List, month, "send", now)
	if err != nil || !ok {
		return err
	}
	if err := r.sends.CreateMonthlySend(ctx, r.load, month, rule.List, run.Add(r.cfg.NotAfter)); err != nil {
		return errors.Join(err, r.store.Unclaim(ctx, rule.List, month, "send"))
	}
	r.log.InfoContext(ctx, "rhythm: monthly send created", "list", rule.List, "issue", month)
	return nil
}

// remind mails the editors once when the next run is RemindDays or fewer
// days away and its issue is not ready.
func (r *Runner) remind(ctx context.Context, rule Rule, now time.Time) error {
	if rule.RemindDays <= 0 || len(rule.RemindTo) == 0 {
		return nil
	}
	next := rule.Next(now)
	if next.IsZero() || now.Before(next.AddDate(0, 0, -rule.RemindDays)) {
		return nil
	}
	month := rule.Month(next)
	ready, err := r.ready(ctx, month)
	if err != nil || ready {
		return err
	}
	ok, err := r.store.Claim(ctx, rule.List, month, "reminder", now)
	if err != nil || !ok {
		return err
	}
	loc, _ := rule.location()
	when := next.In(loc).Format("2006年1月2日 15:04 MST")
	text := fmt.Sprintf("リスト「%s」の次の配信は %s の予定ですが、%s 号がまだ準備できていません。\n"+
		"コンソールで号を作成し、チェックでエラーがないことを確かめてください。\n%s/admin/issues\n\n"+
		"この月を休む場合は、こちらから設定できます。\n%s/admin/rhythm?list=%s\n",
		rule.List, when, month, r.cfg.BaseURL, r.cfg.BaseURL, rule.List)
	for _, to := range rule.RemindTo {
		if _, err := r.sends.EnqueueMessage(ctx, queue.TransactionalMessage{To: to,
			Subject: fmt.Sprintf("【Tayori】%s 号の準備がまだです（配信予定 %s）", month, when),
			Text:    []byte(text), Kind: queue.KindReminder, Key: "rhythm-reminder:" + rule.List + ":" + month + ":" + to}); err != nil && !errors.Is(err, queue.ErrDuplicate) {
			return errors.Join(err, r.store.Unclaim(ctx, rule.List, month, "reminder"))
		}
	}
	r.log.InfoContext(ctx, "rhythm: reminder sent", "list", rule.List, "issue", month, "editors", len(rule.RemindTo))
	return nil
}
