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
	// CopySent counts a newsletter copy the relay accepted.
	CopySent()
	// CopyFailed counts a copy given up on, by the class of its error.
	CopyFailed(class ErrorClass)
	// CopyRetried counts a copy left for another attempt (a temporary
	// failure, or the relay unreachable), by class.
	CopyRetried(class ErrorClass)
	// RelayReply observes the time from handing a copy to its SMTP
	// connection to the relay's reply to it.
	RelayReply(d time.Duration)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) CopySent()                {}
func (noMetrics) CopyFailed(ErrorClass)    {}
func (noMetrics) CopyRetried(ErrorClass)   {}
func (noMetrics) RelayReply(time.Duration) {}

// SendsByState counts the sends in each state, for the operator's
// metrics (read when they are scraped). States with no send are absent.
func (s *Service) SendsByState(ctx context.Context) (map[State]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM sends GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("queue: count sends by state: %w", err)
	}
	defer rows.Close()
	out := map[State]int64{}
	for rows.Next() {
		var st State
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("queue: count sends by state: %w", err)
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: count sends by state: %w", err)
	}
	return out, nil
}

// States lists every state a send can be in.
var States = []State{Scheduled, Planning, Sending, Done, Paused, Cancelled, Failed}
