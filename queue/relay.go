package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// While the relay cannot be reached, a batch leaves its copies open
// (Unavailable: nothing was sent, no attempt counted) and stops; Asynq
// runs it again after Config.RelayRetry, not counting it as a failure, so
// the send slows down and goes on by itself when the relay is back. The
// workers record the relay's state (their circuit breaker's transitions)
// in one Redis hash, which the CLI and the console show beside a send.

// errRelayDown is returned by a batch that stopped because the relay
// could not be reached.
var errRelayDown = errors.New("relay unavailable")

// relayRetryDelay is how long a batch stopped by errRelayDown waits:
// between half and all of Config.RelayRetry, so that batches do not all
// come back at once.
func (s *Service) relayRetryDelay() time.Duration {
	d := s.cfg.RelayRetry
	return d/2 + rand.N(d/2+1)
}

// RelayState is the mail relay's state as the workers last reported it.
// The zero value means nothing is known: the relay is taken to be up.
type RelayState struct {
	// Relay is the relay's host:port.
	Relay string `json:"relay,omitempty"`
	// Down is set while the relay is unreachable (a worker's circuit
	// breaker is open).
	Down bool `json:"down"`
	// Since is when the failures began (Down) or when the relay answered
	// again.
	Since time.Time `json:"since,omitzero"`
	// Kind is what went wrong: "refused", "timeout", "closed", "reply",
	// "dns", "tls" or "other" (see mailer.RelayState). Cause says it in a
	// few English words ("connection refused").
	Kind  string `json:"kind,omitempty"`
	Cause string `json:"cause,omitempty"`
	// Retry is when the worker tries the relay again (Down).
	Retry time.Time `json:"retry,omitzero"`
	// Updated is when a worker last reported.
	Updated time.Time `json:"updated,omitzero"`
}

// relayKey is the Redis hash of the relay's state; it expires a day after
// the last report.
const (
	relayKey = "tayori:relay"
	relayTTL = 24 * time.Hour
)

// SetRelayState records the relay's state for every process to read;
// workers call it when their circuit breaker opens or closes.
func (s *Service) SetRelayState(ctx context.Context, st RelayState) error {
	if st.Updated.IsZero() {
		st.Updated = s.cfg.Now()
	}
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	down := "0"
	if st.Down {
		down = "1"
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, relayKey)
		p.HSet(ctx, relayKey, "relay", st.Relay, "down", down, "since", ms(st.Since), "kind", st.Kind,
			"cause", st.Cause, "retry", ms(st.Retry), "updated", ms(st.Updated))
		p.Expire(ctx, relayKey, relayTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: record the relay's state: %w", err)
	}
	return nil
}

// RelayState returns the relay's state as last reported; the zero
// RelayState when no worker has reported one.
func (s *Service) RelayState(ctx context.Context) (RelayState, error) {
	m, err := s.rdb.HGetAll(ctx, relayKey).Result()
	if err != nil {
		return RelayState{}, fmt.Errorf("queue: read the relay's state: %w", err)
	}
	t := func(k string) time.Time {
		n, _ := strconv.ParseInt(m[k], 10, 64)
		if n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	return RelayState{Relay: m["relay"], Down: m["down"] == "1", Since: t("since"), Kind: m["kind"], Cause: m["cause"],
		Retry: t("retry"), Updated: t("updated")}, nil
}
