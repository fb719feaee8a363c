package bind

import (
	"context"
	"time"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// History gives package feedback a reader's last delivery attempts from
// the queue's ledger (feedback.History), so that neither package imports
// the other.
type History struct{ O *queue.Outcomes }

// LastAttempts returns the reader's last n attempts, newest first.
func (h History) LastAttempts(ctx context.Context, subscriberID int64, n int) ([]feedback.Attempt, error) {
	atts, err := h.O.LastAttempts(ctx, subscriberID, n)
	if err != nil {
		return nil, err
	}
	out := make([]feedback.Attempt, len(atts))
	for i, a := range atts {
		out[i] = feedback.Attempt{SendID: a.SendID, Sent: a.Sent, Permanent: a.Permanent}
	}
	return out, nil
}

// Volume gives the send gate the copies sent and the relay's refusals
// from the queue's ledger (feedback.Volume).
type Volume struct{ O *queue.Outcomes }

// SentBetween counts the copies sent in [since, until).
func (v Volume) SentBetween(ctx context.Context, since, until time.Time) (int64, error) {
	return v.O.SentBetween(ctx, since, until)
}

// FailedReplies are the relay's refusals in [since, until).
func (v Volume) FailedReplies(ctx context.Context, since, until time.Time) ([]string, error) {
	refs, err := v.O.Refusals(ctx, since, until, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Reply
	}
	return out, nil
}

// SendGate is the send gate (deliverability checklist 36): complaints and
// authentication refusals from the subscribers' feedback events, copies
// sent and relay refusals from the ledger. now is the clock (nil: the
// real one).
func SendGate(ledger queue.Ledger, store *subscribers.Store, now func() time.Time) (*feedback.Gate, error) {
	return feedback.NewGate(feedback.GateConfig{Events: store, Volume: Volume{queue.NewOutcomes(ledger)}, Now: now})
}

// Gate adapts a feedback.Gate to the queue's Deps.Gate.
func Gate(g *feedback.Gate) queue.GateFunc {
	return func(ctx context.Context) (queue.GateVerdict, error) {
		v, _, err := g.Check(ctx)
		return queue.GateVerdict{Block: v.Block, Warn: v.Warn, Reason: v.Reason}, err
	}
}
