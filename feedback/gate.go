package feedback

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tayori-news/tayori/subscribers"
)

// Default thresholds of the send gate (deliverability checklist 36:
// Gmail and Yahoo want complaints under 0.3%, and ideally under 0.1%).
const (
	DefaultWarnRate  = 0.001
	DefaultBlockRate = 0.003
	DefaultWindow    = 7 * 24 * time.Hour
)

// Thresholds are the complaint rates at which the gate warns and blocks.
type Thresholds struct {
	Warn, Block float64
}

// Figures are what the gate decides on: the trailing window's copies
// sent, complaints and authentication refusals.
type Figures struct {
	Since, Until time.Time
	// Sent counts the copies the relay accepted in the window.
	Sent int64
	// Complaints counts complaint reports received in the window.
	Complaints int64
	// AuthReports counts authentication refusals in bounce reports, and
	// AuthReplies those the relay gave during the SMTP session.
	AuthReports, AuthReplies int64
	// AuthExample is one refusal's status and diagnostic, to show.
	AuthExample string
	// Unmatched counts complaints and authentication refusals in reports
	// that matched no copy (no valid token). Anyone can mail such a report
	// to the bounce address, so they are shown but do not count: a forger
	// could otherwise close the gate.
	Unmatched int64
}

// ComplaintRate is Complaints/Sent, or 0 when nothing was sent.
func (f Figures) ComplaintRate() float64 {
	if f.Sent == 0 {
		return 0
	}
	return float64(f.Complaints) / float64(f.Sent)
}

// Verdict is the gate's decision.
type Verdict struct {
	// Block refuses an editor's send; Warn lets it go with a warning.
	Block, Warn bool
	// Reason names the figures behind Block or Warn.
	Reason string
}

// Decide is the send gate (checklist 36), a pure function of the
// window's figures. It blocks on any authentication refusal (5.7.26,
// 5.7.515 …: the providers reject our mail, so sending more only burns
// reputation) or on a complaint rate at or above t.Block; it warns at or
// above t.Warn. With complaints but nothing sent in the window there is
// no rate: it warns. Rates compare exactly (parts per million), so 3
// complaints in 1,000 copies is 0.3% and blocks.
func Decide(f Figures, t Thresholds) Verdict {
	var v Verdict
	var block, warn []string
	days := windowText(f.Until.Sub(f.Since))
	if auth := f.AuthReports + f.AuthReplies; auth > 0 {
		msg := fmt.Sprintf("%d authentication %s in %s (%d in bounce reports, %d from the relay)",
			auth, plural(auth, "refusal", "refusals"), days, f.AuthReports, f.AuthReplies)
		if f.AuthExample != "" {
			msg += ", e.g. " + f.AuthExample
		}
		block = append(block, msg+": fix SPF, DKIM and DMARC first")
	}
	rate := fmt.Sprintf("complaint rate %.2f%% (%d %s / %d copies sent in %s)",
		100*f.ComplaintRate(), f.Complaints, plural(f.Complaints, "complaint", "complaints"), f.Sent, days)
	switch {
	case f.Sent == 0 && f.Complaints > 0:
		warn = append(warn, fmt.Sprintf("%d %s in %s but no copy sent in it: no rate to judge",
			f.Complaints, plural(f.Complaints, "complaint", "complaints"), days))
	case f.Sent > 0 && atLeast(f.Complaints, f.Sent, t.Block):
		block = append(block, fmt.Sprintf("%s is at or above the %.2f%% limit", rate, 100*t.Block))
	case f.Sent > 0 && atLeast(f.Complaints, f.Sent, t.Warn):
		warn = append(warn, fmt.Sprintf("%s is at or above the %.2f%% warning level (limit %.2f%%)", rate, 100*t.Warn, 100*t.Block))
	}
	switch {
	case len(block) > 0:
		v.Block, v.Reason = true, strings.Join(append(block, warn...), "; ")
	case len(warn) > 0:
		v.Warn, v.Reason = true, strings.Join(warn, "; ")
	}
	return v
}

// atLeast reports whether n/d ≥ rate, in parts per million.
func atLeast(n, d int64, rate float64) bool {
	ppm := int64(math.Round(rate * 1e6))
	return n*1_000_000 >= ppm*d
}

func windowText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		n := int64(d / (24 * time.Hour))
		return fmt.Sprintf("the last %d %s", n, plural(n, "day", "days"))
	}
	return "the last " + d.String()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// EventTotals counts recorded feedback events (*subscribers.Store).
type EventTotals interface {
	FeedbackTotals(ctx context.Context, since, until time.Time) (subscribers.FeedbackTotals, error)
	FeedbackEvents(ctx context.Context, q subscribers.FeedbackQuery) ([]subscribers.FeedbackEvent, error)
}

// Volume is the queue's record of the window (queue.Outcomes, through a
// small adapter in cmd/tayori).
type Volume interface {
	// SentBetween counts the copies the relay accepted in [since, until).
	SentBetween(ctx context.Context, since, until time.Time) (int64, error)
	// FailedReplies returns the relay's replies to the copies that failed
	// in [since, until).
	FailedReplies(ctx context.Context, since, until time.Time) ([]string, error)
}

// GateConfig configures a Gate. Events and Volume are required.
type GateConfig struct {
	Events EventTotals
	Volume Volume
	// Window is the trailing window. Default DefaultWindow (7 days).
	Window time.Duration
	// Thresholds default to DefaultWarnRate and DefaultBlockRate.
	Thresholds Thresholds
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Gate reads the window's figures and decides with Decide.
type Gate struct{ cfg GateConfig }

// NewGate returns a Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Events == nil || cfg.Volume == nil {
		return nil, errors.New("feedback gate: Events and Volume are required")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Thresholds.Warn <= 0 {
		cfg.Thresholds.Warn = DefaultWarnRate
	}
	if cfg.Thresholds.Block <= 0 {
		cfg.Thresholds.Block = DefaultBlockRate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gate{cfg: cfg}, nil
}

// Figures reads the trailing window's figures.
func (g *Gate) Figures(ctx context.Context) (Figures, error) {
	until := g.cfg.Now()
	f := Figures{Since: until.Add(-g.cfg.Window), Until: until}
	tot, err := g.cfg.Events.FeedbackTotals(ctx, f.Since, f.Until)
	if err != nil {
		return f, fmt.Errorf("send gate: %w", err)
	}
	f.Complaints, f.AuthReports = tot.ByKind[string(Complaint)], tot.Auth
	f.Unmatched = tot.Unmatched[string(Complaint)] + tot.UnmatchedAuth
	if f.AuthReports > 0 {
		evs, err := g.cfg.Events.FeedbackEvents(ctx, subscribers.FeedbackQuery{Since: f.Since, Kinds: []string{string(Policy)}, Limit: 50})
		if err != nil {
			return f, fmt.Errorf("send gate: %w", err)
		}
		for _, e := range evs {
			if e.Auth && e.MatchedBy != "" {
				f.AuthExample = strings.TrimSpace(e.Domain + " " + e.Status + " (bounce report)")
				break
			}
		}
	}
	if f.Sent, err = g.cfg.Volume.SentBetween(ctx, f.Since, f.Until); err != nil {
		return f, fmt.Errorf("send gate: %w", err)
	}
	replies, err := g.cfg.Volume.FailedReplies(ctx, f.Since, f.Until)
	if err != nil {
		return f, fmt.Errorf("send gate: %w", err)
	}
	for _, r := range replies {
		if class, auth := Classify("failed", "", r); class == Policy && auth {
			f.AuthReplies++
			if f.AuthExample == "" {
				f.AuthExample = fmt.Sprintf("%q (relay reply)", truncate(maskAddresses(r), 120))
			}
		}
	}
	return f, nil
}

// Check reads the figures and decides.
func (g *Gate) Check(ctx context.Context) (Verdict, Figures, error) {
	f, err := g.Figures(ctx)
	if err != nil {
		return Verdict{}, f, err
	}
	return Decide(f, g.cfg.Thresholds), f, nil
}

// Thresholds returns the gate's thresholds.
func (g *Gate) Thresholds() Thresholds { return g.cfg.Thresholds }

// truncate cuts s to at most n bytes on a UTF-8 boundary, adding "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
