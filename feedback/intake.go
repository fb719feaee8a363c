package feedback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/tayori-news/tayori/subscribers"
)

// Store is the subscriber store as the intake needs it
// (*subscribers.Store implements it).
type Store interface {
	Get(ctx context.Context, id int64) (subscribers.Subscriber, error)
	FindByEmail(ctx context.Context, email string) (subscribers.Subscriber, error)
	// MarkBounced and MarkComplained are idempotent and suppress the
	// address; MarkComplained also leaves every list.
	MarkBounced(ctx context.Context, id int64, cause string) error
	MarkComplained(ctx context.Context, id int64, cause string) error
	FeedbackSeen(ctx context.Context, reportKey string) (bool, error)
	RecordFeedback(ctx context.Context, events []subscribers.FeedbackEvent) (int, error)
	SoftBouncedSends(ctx context.Context, subscriberID int64) ([]int64, error)
}

// Attempt is one send's copy to a reader that reached the relay, as the
// queue recorded it (queue.Attempt).
type Attempt struct {
	SendID int64
	// Sent: the relay accepted it. Otherwise it failed, Permanent after a
	// 5xx and not after temporary failures until retries ran out.
	Sent      bool
	Permanent bool
}

// History is the queue's record of copies sent (queue.Outcomes, through
// a small adapter in cmd/tayori).
type History interface {
	// LastAttempts returns the reader's last n copies that reached the
	// relay, newest send first.
	LastAttempts(ctx context.Context, subscriberID int64, n int) ([]Attempt, error)
}

// IntakeConfig configures an Intake. Store, History and Tagger are
// required.
type IntakeConfig struct {
	Store   Store
	History History
	Tagger  *Tagger
	// MatchByAddress also acts on reports matched to a reader only by the
	// recipient address in the report (no valid token). Anyone who can
	// mail the bounce address can forge such a report, so it is off by
	// default: unmatched reports are recorded and change nobody. Turn it
	// on for mail sent before return paths carried tokens.
	MatchByAddress bool
	// SoftLimit is the number of soft bounces in a row, on the reader's
	// last SoftLimit sends, that suppresses the address. Default 3.
	SoftLimit int
	// Logger receives one record per result (subscriber ids, never
	// addresses) and a warning per policy refusal. Default: discard.
	Logger *slog.Logger
	// Now is the clock of ReceivedAt. Default time.Now.
	Now func() time.Time
}

// Intake applies reports to the subscriber store: it matches each to the
// copy it is about, acts on the reader (hard bounce, three soft bounces,
// complaint), alerts on policy refusals and records an event per result.
// Ingesting a report twice changes nothing the second time.
type Intake struct {
	cfg IntakeConfig
	log *slog.Logger
}

// NewIntake returns an Intake.
func NewIntake(cfg IntakeConfig) (*Intake, error) {
	if cfg.Store == nil || cfg.History == nil || cfg.Tagger == nil {
		return nil, errors.New("feedback intake: Store, History and Tagger are required")
	}
	if cfg.SoftLimit <= 0 {
		cfg.SoftLimit = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Intake{cfg: cfg, log: cfg.Logger}, nil
}

// Outcome is what Ingest concluded and did.
type Outcome struct {
	// Duplicate: the report was ingested before; nothing was done.
	Duplicate bool
	// Results has one entry per recipient of a DSN, one for a complaint.
	Results []Result
}

// Result is one recipient's result.
type Result struct {
	Class  Class
	Status string // enhanced status code, or the ARF feedback type
	Auth   bool
	Domain string // the recipient's domain, or the reporter's
	// Ref names the copy when the report was matched (SubscriberID 0
	// otherwise), and MatchedBy says how: return-path, message-id, cfbl
	// or address.
	Ref       Ref
	MatchedBy string
	// Action says what was done, for people.
	Action string
}

// Match sources.
const (
	byReturnPath = "return-path"
	byMessageID  = "message-id"
	byCFBL       = "cfbl"
	byAddress    = "address"
)

// Ingest applies rep. envelopeTo is the address the report was delivered
// to (the bounce address: Postfix's ${original_recipient}), or "" to read
// it from the report's own headers.
func (in *Intake) Ingest(ctx context.Context, rep *Report, envelopeTo string) (Outcome, error) {
	if rep == nil || rep.Key == "" {
		return Outcome{}, errors.New("feedback intake: no report")
	}
	seen, err := in.cfg.Store.FeedbackSeen(ctx, rep.Key)
	if err != nil {
		return Outcome{}, fmt.Errorf("ingest report: %w", err)
	}
	if seen {
		return Outcome{Duplicate: true}, nil
	}
	ref, by := in.match(ctx, rep, envelopeTo)
	now := in.cfg.Now()

	var out Outcome
	var events []subscribers.FeedbackEvent
	add := func(seq int, r Result, detail string) {
		out.Results = append(out.Results, r)
		events = append(events, subscribers.FeedbackEvent{
			ReportKey: rep.Key, Seq: seq, ReceivedAt: now, Kind: string(r.Class), Status: r.Status, Auth: r.Auth,
			Domain: r.Domain, Detail: maskAddresses(detail), SubscriberID: r.Ref.SubscriberID, SendID: r.Ref.SendID,
			MatchedBy: r.MatchedBy, Action: r.Action,
		})
	}
	switch rep.Type {
	case DeliveryStatus:
		for i, rc := range rep.Recipients {
			r := Result{Class: rc.Class, Status: rc.Status, Auth: rc.Auth, Domain: domainOf(rc.FinalRecipient)}
			if r.Domain == "" {
				r.Domain = domainOf(rc.OriginalRecipient)
			}
			addr := rc.OriginalRecipient
			if addr == "" {
				addr = rc.FinalRecipient
			}
			if err := in.apply(ctx, &r, ref, by, addr, rc.DiagnosticCode); err != nil {
				return Outcome{}, err
			}
			add(i, r, rc.DiagnosticCode)
		}
	case FeedbackReport:
		a := rep.ARF
		r := Result{Class: a.Class, Status: a.FeedbackType, Domain: domainOf(rep.From)}
		var addr string
		if len(a.OriginalRcptTo) == 1 {
			addr = a.OriginalRcptTo[0]
		}
		detail := "feedback report from " + r.Domain
		if a.UserAgent != "" {
			detail += " (" + a.UserAgent + ")"
		}
		if err := in.apply(ctx, &r, ref, by, addr, detail); err != nil {
			return Outcome{}, err
		}
		add(0, r, detail)
	default:
		return Outcome{}, fmt.Errorf("feedback intake: report type %q", rep.Type)
	}
	if _, err := in.cfg.Store.RecordFeedback(ctx, events); err != nil {
		return Outcome{}, fmt.Errorf("ingest report: %w", err)
	}
	return out, nil
}

// match finds the copy a report is about from its tokens: the envelope
// recipient and the report's To fields (our return path), the original's
// envelope sender and Return-Path, its Message-ID, its CFBL-Feedback-ID.
// A token that does not verify is logged (a forgery, or a retired key)
// and skipped.
func (in *Intake) match(ctx context.Context, rep *Report, envelopeTo string) (Ref, string) {
	type source struct{ by, value string }
	var srcs []source
	if envelopeTo != "" {
		srcs = append(srcs, source{byReturnPath, envelopeTo})
	}
	for _, a := range rep.SentTo {
		srcs = append(srcs, source{byReturnPath, a})
	}
	if rep.ARF != nil && rep.ARF.OriginalMailFrom != "" {
		srcs = append(srcs, source{byReturnPath, rep.ARF.OriginalMailFrom})
	}
	if rep.Original.ReturnPath != "" {
		srcs = append(srcs, source{byReturnPath, rep.Original.ReturnPath})
	}
	if rep.Original.MessageID != "" {
		srcs = append(srcs, source{byMessageID, rep.Original.MessageID})
	}
	if rep.Original.CFBLFeedbackID != "" {
		srcs = append(srcs, source{byCFBL, rep.Original.CFBLFeedbackID})
	}
	t := in.cfg.Tagger
	for _, s := range srcs {
		var (
			ref Ref
			err error
		)
		switch s.by {
		case byReturnPath:
			ref, err = t.RefFromAddress(s.value)
		case byMessageID:
			ref, err = t.RefFromMessageID(s.value)
		case byCFBL:
			ref, err = t.Parse(strings.TrimSpace(s.value))
		}
		switch {
		case err == nil && ref.SubscriberID != 0:
			return ref, s.by
		case errors.Is(err, ErrBadToken):
			in.log.WarnContext(ctx, "feedback: token does not verify (forged, damaged or from a retired key)",
				"source", s.by, "report", shortKey(rep.Key))
		}
	}
	return Ref{}, ""
}

func shortKey(k string) string {
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

// apply finds the reader of one result, acts on them and fills r.Ref,
// r.MatchedBy and r.Action.
func (in *Intake) apply(ctx context.Context, r *Result, ref Ref, by, addr, detail string) error {
	st := in.cfg.Store
	var sub subscribers.Subscriber
	matched := false
	if ref.SubscriberID != 0 {
		s, err := st.Get(ctx, ref.SubscriberID)
		switch {
		case err == nil:
			sub, matched = s, true
			r.Ref, r.MatchedBy = ref, by
		case !errors.Is(err, subscribers.ErrNotFound):
			return fmt.Errorf("ingest report: %w", err)
		}
	}
	if !matched && in.cfg.MatchByAddress && addr != "" {
		s, err := st.FindByEmail(ctx, addr)
		switch {
		case err == nil:
			sub, matched = s, true
			r.Ref, r.MatchedBy = Ref{SubscriberID: s.ID}, byAddress
		case !errors.Is(err, subscribers.ErrNotFound) && !errors.Is(err, subscribers.ErrInvalid):
			return fmt.Errorf("ingest report: %w", err)
		}
	}
	logArgs := []any{"class", string(r.Class), "status", r.Status, "domain", r.Domain,
		"subscriber_id", r.Ref.SubscriberID, "send_id", r.Ref.SendID, "matched_by", r.MatchedBy}

	switch r.Class {
	case Policy:
		r.Action = "alert: policy refusal, reader left alone"
		if r.Auth {
			r.Action = "alert: authentication refusal, reader left alone; sends blocked"
		}
		in.log.WarnContext(ctx, "feedback: the receiver refused our mail for policy or authentication",
			append(logArgs, "auth", r.Auth, "detail", maskAddresses(detail))...)
		return nil
	case Hard, Soft, Complaint:
		if !matched {
			r.Action = "recorded: no reader matched"
			in.log.InfoContext(ctx, "feedback: report matched no reader", logArgs...)
			return nil
		}
	default:
		r.Action = "recorded"
		in.log.DebugContext(ctx, "feedback: report recorded", logArgs...)
		return nil
	}

	switch r.Class {
	case Hard:
		if err := st.MarkBounced(ctx, sub.ID, "bounce report: "+r.Status+" "+maskAddresses(detail)); err != nil {
			return fmt.Errorf("ingest report: %w", err)
		}
		r.Action = "marked bounced and suppressed"
	case Complaint:
		if err := st.MarkComplained(ctx, sub.ID, "complaint ("+r.Status+") from "+r.Domain); err != nil {
			return fmt.Errorf("ingest report: %w", err)
		}
		r.Action = "marked complained: left every list, suppressed"
	case Soft:
		if r.Ref.SendID == 0 {
			// Matched by address: the copy is the reader's latest.
			last, err := in.cfg.History.LastAttempts(ctx, sub.ID, 1)
			if err != nil {
				return fmt.Errorf("ingest report: %w", err)
			}
			if len(last) == 1 {
				r.Ref.SendID = last[0].SendID
			}
		}
		n, sends, err := in.softStreak(ctx, sub.ID, r.Ref.SendID)
		if err != nil {
			return err
		}
		if n < in.cfg.SoftLimit {
			r.Action = fmt.Sprintf("soft bounce recorded (%d in a row of %d)", n, in.cfg.SoftLimit)
			break
		}
		cause := fmt.Sprintf("%d soft bounces in a row (sends %s; last %s)", n, joinIDs(sends), r.Status)
		if err := st.MarkBounced(ctx, sub.ID, cause); err != nil {
			return fmt.Errorf("ingest report: %w", err)
		}
		r.Action = fmt.Sprintf("marked bounced and suppressed after %d soft bounces in a row", n)
	}
	in.log.InfoContext(ctx, "feedback: "+r.Action, logArgs...)
	return nil
}

// softStreak counts the reader's last sends, newest first, that
// soft-bounced: by a soft-bounce report (recorded before, or this one for
// sendID), or by a copy the relay refused temporarily until retries ran
// out. A copy that was sent and drew no soft report, or that failed
// permanently, ends the streak. It returns the count and those sends.
func (in *Intake) softStreak(ctx context.Context, subscriberID, sendID int64) (int, []int64, error) {
	atts, err := in.cfg.History.LastAttempts(ctx, subscriberID, in.cfg.SoftLimit)
	if err != nil {
		return 0, nil, fmt.Errorf("ingest report: %w", err)
	}
	prior, err := in.cfg.Store.SoftBouncedSends(ctx, subscriberID)
	if err != nil {
		return 0, nil, fmt.Errorf("ingest report: %w", err)
	}
	soft := map[int64]bool{}
	for _, id := range prior {
		soft[id] = true
	}
	if sendID != 0 {
		soft[sendID] = true
	}
	var sends []int64
	for _, a := range atts {
		if !soft[a.SendID] && (a.Sent || a.Permanent) {
			break
		}
		sends = append(sends, a.SendID)
	}
	return len(sends), sends, nil
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[len(ids)-1-i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ", ")
}

var addressRe = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)`)

// maskAddresses replaces the local part of every address in s with '*',
// so diagnostics can be kept and shown without personal data.
func maskAddresses(s string) string {
	return addressRe.ReplaceAllString(s, "*@$1")
}
