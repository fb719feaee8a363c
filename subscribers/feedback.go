package subscribers

import (
	"context"
	"fmt"
	"time"
)

// FeedbackEvent is one recipient's result in a bounce (RFC 3464) or
// complaint (RFC 5965) report, and what was done about it. Package
// feedback parses and classifies reports; the store only keeps the
// events, for `tayori feedback`, the soft-bounce rule and the send gate.
// Events hold no address: the recipient's domain only.
type FeedbackEvent struct {
	ID int64 `json:"id"`
	// ReportKey and Seq identify the event: the report's key (a hash of
	// its Message-ID) and the recipient's place in it. Recording the same
	// pair twice keeps the first.
	ReportKey  string    `json:"report_key"`
	Seq        int       `json:"seq"`
	ReceivedAt time.Time `json:"received_at"`
	// Kind is the class: hard, soft, policy, complaint, delayed,
	// delivered or unknown (feedback.Class).
	Kind string `json:"kind"`
	// Status is the enhanced status code ("5.1.1") or, for a complaint,
	// the ARF feedback type ("abuse").
	Status string `json:"status,omitempty"`
	// Auth marks an authentication refusal (5.7.26, 5.7.515, …).
	Auth bool `json:"auth,omitempty"`
	// Domain is the recipient's domain (or the reporting provider's).
	Domain string `json:"domain,omitempty"`
	// Detail is the diagnostic, with the local parts of addresses masked.
	Detail string `json:"detail,omitempty"`
	// SubscriberID and SendID name the copy when the report was matched
	// to one; 0 otherwise.
	SubscriberID int64 `json:"subscriber_id,omitempty"`
	SendID       int64 `json:"send_id,omitempty"`
	// MatchedBy says how: "return-path", "message-id", "cfbl", "address"
	// or "" (not matched).
	MatchedBy string `json:"matched_by,omitempty"`
	// Action is what was done ("marked bounced", "alert", "recorded").
	Action string `json:"action,omitempty"`
}

// FeedbackKinds lists the kinds the store accepts.
var FeedbackKinds = []string{"hard", "soft", "policy", "complaint", "delayed", "delivered", "unknown"}

// maxDetail bounds the stored diagnostic, in bytes.
const maxDetail = 1000

// FeedbackSeen reports whether a report with this key was recorded.
func (s *Store) FeedbackSeen(ctx context.Context, reportKey string) (bool, error) {
	seen, err := s.st.FeedbackSeen(ctx, reportKey)
	if err != nil {
		return false, fmt.Errorf("feedback seen: %w", err)
	}
	return seen, nil
}

// RecordFeedback stores events in one transaction and returns how many
// were new; an event whose (ReportKey, Seq) is stored already is skipped,
// so recording a report twice changes nothing. A zero ReceivedAt is the
// store's clock.
func (s *Store) RecordFeedback(ctx context.Context, events []FeedbackEvent) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx Queries) error {
		for _, e := range events {
			if e.ReportKey == "" {
				return fmt.Errorf("%w: feedback event without a report key", ErrInvalid)
			}
			if !validKind(e.Kind) {
				return fmt.Errorf("%w: feedback kind %q", ErrInvalid, e.Kind)
			}
			at := e.ReceivedAt
			if at.IsZero() {
				at = s.now()
			}
			e.ReceivedAt = at.UTC().Truncate(time.Microsecond)
			e.Detail = truncate(e.Detail, maxDetail)
			added, err := tx.InsertFeedback(ctx, e)
			if err != nil {
				return err
			}
			if added {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record feedback: %w", err)
	}
	return n, nil
}

func validKind(k string) bool {
	for _, v := range FeedbackKinds {
		if v == k {
			return true
		}
	}
	return false
}

// FeedbackQuery selects events for FeedbackEvents.
type FeedbackQuery struct {
	// Since keeps events received at or after it; zero means all.
	Since time.Time
	// SubscriberID keeps one subscriber's events; 0 means everyone's.
	SubscriberID int64
	// Kinds keeps these kinds; empty means all.
	Kinds []string
	// BeforeID keeps the events listed after the event with this id,
	// newest first (received earlier, or at the same time with a smaller
	// id): the page after one that ended with it. 0 means from the newest.
	BeforeID int64
	// Limit caps the result (newest first). Default 100.
	Limit int
}

// FeedbackEvents returns events, newest first.
func (s *Store) FeedbackEvents(ctx context.Context, q FeedbackQuery) ([]FeedbackEvent, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	out, err := s.st.FeedbackEvents(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("feedback events: %w", err)
	}
	if out == nil {
		out = []FeedbackEvent{}
	}
	return out, nil
}

// SoftBouncedSends returns the ids of the sends on which the subscriber
// soft-bounced (by report), in ascending order.
func (s *Store) SoftBouncedSends(ctx context.Context, subscriberID int64) ([]int64, error) {
	out, err := s.st.SoftBouncedSends(ctx, subscriberID)
	if err != nil {
		return nil, fmt.Errorf("soft-bounced sends of subscriber %d: %w", subscriberID, err)
	}
	return out, nil
}

// FeedbackTotals counts the events received in [Since, Until).
type FeedbackTotals struct {
	Since, Until time.Time
	// ByKind counts events of each kind matched to a copy (MatchedBy set).
	ByKind map[string]int64
	// Auth counts matched authentication refusals (policy events with
	// Auth set).
	Auth int64
	// Unmatched and UnmatchedAuth count the same for events that matched
	// no copy: reports anyone could have mailed to the bounce address.
	Unmatched     map[string]int64
	UnmatchedAuth int64
}

// FeedbackTotals counts the events received in [since, until).
func (s *Store) FeedbackTotals(ctx context.Context, since, until time.Time) (FeedbackTotals, error) {
	t := FeedbackTotals{Since: since, Until: until, ByKind: map[string]int64{}, Unmatched: map[string]int64{}}
	counts, err := s.st.FeedbackCounts(ctx, since, until)
	if err != nil {
		return t, fmt.Errorf("feedback totals: %w", err)
	}
	for _, c := range counts {
		switch {
		case c.Matched:
			t.ByKind[c.Kind] += c.N
			if c.Auth {
				t.Auth += c.N
			}
		default:
			t.Unmatched[c.Kind] += c.N
			if c.Auth {
				t.UnmatchedAuth += c.N
			}
		}
	}
	return t, nil
}
