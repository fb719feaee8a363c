package queue

import (
	"context"
	"fmt"
	"time"
)

// Metrics receives the delivery's counts as they happen (implemented by
// *metrics.Metrics in internal/metrics). Its methods are called on the
// sending goroutines, once per copy: they must be cheap and safe for
// concurrent use. Deps.Metrics nil counts nothing.
type Metrics interface {
	// CopySent counts a message of kind the relay accepted.
	CopySent(kind MailKind)
	// CopyFailed counts a message given up on, by the class of its error.
	CopyFailed(kind MailKind, class ErrorClass)
	// CopyRetried counts a message left for another attempt (a temporary
	// failure, or the relay unreachable), by class.
	CopyRetried(kind MailKind, class ErrorClass)
	// RelayReply observes the time from handing a newsletter copy to its
	// SMTP connection to the relay's reply to it.
	RelayReply(d time.Duration)
}

// MailKind says what a message is, for the metrics: a newsletter copy or
// one of the transactional mails ([TransactionalMessage].Kind).
type MailKind string

// The kinds of message, as the metrics' kind label names them.
const (
	KindIssue        MailKind = "issue"        // a reader's copy of an issue
	KindConfirmation MailKind = "confirmation" // a signup's confirmation mail
	KindWelcome      MailKind = "welcome"      // the welcome mail after confirmation (package welcome)
	KindTest         MailKind = "test"         // an editor's test copy
	KindReminder     MailKind = "reminder"     // the monthly rhythm's reminder to editors
	// KindOther is a transactional message that names no kind (one
	// queued by an older version) or one not listed here.
	KindOther MailKind = "other"
)

// MailKinds lists every kind, in the order the metrics make their series.
var MailKinds = []MailKind{KindIssue, KindConfirmation, KindWelcome, KindTest, KindReminder, KindOther}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) CopySent(MailKind)                {}
func (noMetrics) CopyFailed(MailKind, ErrorClass)  {}
func (noMetrics) CopyRetried(MailKind, ErrorClass) {}
func (noMetrics) RelayReply(time.Duration)         {}

// SendsByState counts the sends in each state, for the operator's
// metrics (read when they are scraped). States with no send are absent.
func (s *Service) SendsByState(ctx context.Context) (map[State]int64, error) {
	out, err := s.ledger.SendsByState(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: count sends by state: %w", err)
	}
	return out, nil
}

// States lists every state a send can be in.
var States = []State{Scheduled, Planning, Sending, Done, Paused, Cancelled, Failed}
