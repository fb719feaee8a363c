package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file serves the feedback loop (package feedback, wired by
// cmd/tayori): what the deliveries table knows about a reader's recent
// sends and about the last days' volume and refusals, and the send gate
// that Create consults.

// Outcomes reads the send ledger for the feedback loop. It needs only
// the store, not Redis.
type Outcomes struct{ ledger Ledger }

// NewOutcomes returns an Outcomes over the ledger.
func NewOutcomes(ledger Ledger) *Outcomes { return &Outcomes{ledger: ledger} }

// Attempt is one send's copy to one reader that reached the relay.
type Attempt struct {
	SendID int64
	// Sent: the relay accepted the copy. Otherwise it failed: Permanent
	// after a 5xx, or not after temporary failures until retries ran out.
	Sent      bool
	Permanent bool
	Reply     string
	At        time.Time
}

// LastAttempts returns the subscriber's last n copies that reached the
// relay (sent or failed; not skipped, cancelled or still open), newest
// send first.
func (o *Outcomes) LastAttempts(ctx context.Context, subscriberID int64, n int) ([]Attempt, error) {
	out, err := o.ledger.LastAttempts(ctx, subscriberID, n)
	if err != nil {
		return nil, fmt.Errorf("queue: last attempts of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}

// SentBetween counts the copies the relay accepted in [since, until).
// It reads each send of the window along its primary key.
func (o *Outcomes) SentBetween(ctx context.Context, since, until time.Time) (int64, error) {
	n, err := o.ledger.SentBetween(ctx, since, until)
	if err != nil {
		return 0, fmt.Errorf("queue: copies sent since %s: %w", since.Format(time.RFC3339), err)
	}
	return n, nil
}

// Refusal is a copy the relay refused or gave up on, with its reply.
type Refusal struct {
	SendID       int64
	SubscriberID int64
	Permanent    bool
	Reply        string
	At           time.Time
}

// Refusals returns the failed copies of [since, until) with the relay's
// replies, newest first, at most limit (default 1000): the synchronous
// counterpart of bounce reports, which the send gate reads for
// authentication refusals. Failed rows are few and use the partial index
// of migration 0004.
func (o *Outcomes) Refusals(ctx context.Context, since, until time.Time, limit int) ([]Refusal, error) {
	if limit <= 0 {
		limit = 1000
	}
	out, err := o.ledger.Refusals(ctx, since, until, limit)
	if err != nil {
		return nil, fmt.Errorf("queue: refusals since %s: %w", since.Format(time.RFC3339), err)
	}
	return out, nil
}

// ErrBlocked is wrapped by the error of a send the gate refused (a
// *GateError). It wraps ErrState, so callers that map ErrState (the web
// API's 409) need nothing new.
var ErrBlocked = fmt.Errorf("%w: the send gate is closed", ErrState)

// GateVerdict is the send gate's answer.
type GateVerdict struct {
	// Block refuses the send; Reason says why, with the figures.
	Block bool
	// Warn lets the send go but says why it should be looked at.
	Warn   bool
	Reason string
}

// GateFunc decides whether an editor may start a send now (cmd/tayori
// wires package feedback's Gate). An error refuses the send too: a gate
// that cannot read its figures does not open.
type GateFunc func(ctx context.Context) (GateVerdict, error)

// GateError is the error of a send the gate refused.
type GateError struct {
	Reason string
	// Err is the gate's own error when it could not read its figures
	// (nil when it read them and refused).
	Err error
}

// Error says the send was refused and why.
func (e *GateError) Error() string { return "send refused by the send gate: " + e.Reason }

// Unwrap makes errors.Is(err, ErrBlocked) (and ErrState) true, and
// errors.Is/As reach the gate's own error, if any.
func (e *GateError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrBlocked}
	}
	return []error{ErrBlocked, e.Err}
}

// checkGate runs the gate for a new send. ns.IgnoreGate skips a closed
// gate (logged); a warning is logged and returned.
func (s *Service) checkGate(ctx context.Context, ns NewSend) (warning string, err error) {
	if s.deps.Gate == nil {
		return "", nil
	}
	v, err := s.deps.Gate(ctx)
	if err != nil {
		if ns.IgnoreGate {
			s.log.WarnContext(ctx, "send gate unreadable, ignored on request", "issue", ns.Issue.Slug, "list", ns.List, "err", err)
			return "", nil
		}
		return "", &GateError{Reason: fmt.Sprintf("cannot read the complaint and refusal figures: %v", err), Err: err}
	}
	switch {
	case v.Block && ns.IgnoreGate:
		s.log.WarnContext(ctx, "send gate closed, ignored on request", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return "gate ignored: " + v.Reason, nil
	case v.Block:
		s.log.WarnContext(ctx, "send refused by the send gate", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return "", &GateError{Reason: v.Reason}
	case v.Warn:
		s.log.WarnContext(ctx, "send gate warning", "issue", ns.Issue.Slug, "list", ns.List, "reason", v.Reason)
		return v.Reason, nil
	}
	return "", nil
}

// IsBlocked reports whether err is a send refused by the gate, and its
// reason.
func IsBlocked(err error) (string, bool) {
	var ge *GateError
	if errors.As(err, &ge) {
		return ge.Reason, true
	}
	return "", false
}
