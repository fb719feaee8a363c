package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A circuit breaker per relay (per Pool). After BreakerThreshold
// connection-level failures in a row (a dial that fails, a greeting or a
// reply that does not come in time, a connection lost mid-exchange) with
// no transaction answered in between, it opens: for BreakerCooldown every
// dial fails at once with an *UnavailableError, which wraps
// ErrRelayUnavailable, instead of waiting for the relay. Then it lets one
// dial through as a probe (half-open): if the probe connects, the breaker
// closes; if not, it opens again. A refusal by the relay (4xx or 5xx to a
// message) is an answer, not a connection failure.

// RelayState is the relay's state as the breaker sees it, handed to
// PoolOptions.OnRelayState when it changes.
type RelayState struct {
	// Relay is the relay's host:port.
	Relay string
	// Up is false while the breaker is open (the relay is taken for
	// unreachable) and true again once a probe connected.
	Up bool
	// Since is when the relay's failures began (Up false) or when it
	// answered again (Up true).
	Since time.Time
	// Retry is when the breaker will let the next probe through (Up false).
	Retry time.Time
	// Kind says what went wrong, for a message in the reader's language:
	// "refused" (connection refused), "timeout" (no answer in time),
	// "closed" (the relay closed the connection), "reply" (the relay
	// answered 4xx at connection time), "dns" (unknown host), "tls" (TLS
	// handshake) or "other". Empty when Up.
	Kind string
	// Cause is the last failure in a few English words, e.g.
	// "connection refused" or "no greeting within 30s". Empty when Up.
	Cause string
}

// UnavailableError is what a dial returns, without trying, while the
// relay's circuit breaker is open. It wraps ErrRelayUnavailable and the
// last connection failure.
type UnavailableError struct {
	Relay string
	// Since is when the run of failures began; Retry when the next probe
	// may go.
	Since, Retry time.Time
	// Cause is the last connection failure.
	Cause error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	s := "mailer: relay " + e.Relay + " unavailable since " + e.Since.Format(time.TimeOnly) +
		" (next try " + e.Retry.Format(time.TimeOnly) + ")"
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrRelayUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrRelayUnavailable }

// Unwrap returns the last connection failure.
func (e *UnavailableError) Unwrap() error { return e.Cause }

const (
	breakerClosed = iota
	breakerOpen
	breakerProbing
)

type breaker struct {
	relay     string
	threshold int // <= 0: never opens
	cooldown  time.Duration
	probeMax  time.Duration // a probe not reported within this is forgotten
	hook      func(RelayState)
	now       func() time.Time

	// clean is set while there is no failure to forget and the breaker
	// is closed: the hot path (a transaction answered) reads only it.
	clean atomic.Bool
	fails int // consecutive failures

	mu      sync.Mutex
	state   int
	since   time.Time // first failure of the run
	retry   time.Time // open: until then; probing: the probe's deadline
	lastErr error
}

// allow is asked before every dial: nil, or the error to fail with.
func (b *breaker) allow() error {
	if b.threshold <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	switch b.state {
	case breakerOpen:
		if now.Before(b.retry) {
			return b.unavailable()
		}
		b.state, b.retry = breakerProbing, now.Add(b.probeMax) // this dial is the probe
	case breakerProbing:
		if now.Before(b.retry) {
			return b.unavailable()
		}
		b.retry = now.Add(b.probeMax) // the last probe never reported: another
	}
	return nil
}

func (b *breaker) unavailable() error {
	return &UnavailableError{Relay: b.relay, Since: b.since, Retry: b.retry, Cause: b.lastErr}
}

// failure records a connection-level failure.
func (b *breaker) failure(err error) {
	if b.threshold <= 0 {
		return
	}
	b.mu.Lock()
	now := b.now()
	b.clean.Store(false)
	b.fails++
	if b.fails == 1 || b.since.IsZero() {
		b.since = now
	}
	b.lastErr = err
	var st *RelayState
	if b.state == breakerProbing || (b.state == breakerClosed && b.fails >= b.threshold) {
		b.state, b.retry = breakerOpen, now.Add(b.cooldown)
		kind, cause := describe(err)
		st = &RelayState{Relay: b.relay, Since: b.since, Retry: b.retry, Kind: kind, Cause: cause}
	}
	b.mu.Unlock()
	if st != nil && b.hook != nil {
		b.hook(*st)
	}
}

// connected records a dial that reached the relay and got through its
// greeting: a probe's success closes the breaker. The failure count is
// kept until a transaction is answered, so a relay that greets and then
// fails again opens it at once.
func (b *breaker) connected() { b.up(false) }

// answered records that the relay answered a transaction. On the hot
// path: one atomic load.
func (b *breaker) answered() { b.up(true) }

func (b *breaker) up(answered bool) {
	if b.threshold <= 0 || b.clean.Load() {
		return
	}
	b.mu.Lock()
	var st *RelayState
	if b.state != breakerClosed {
		b.state = breakerClosed
		st = &RelayState{Relay: b.relay, Up: true, Since: b.now()}
	}
	if answered {
		b.fails, b.since, b.lastErr = 0, time.Time{}, nil
		b.clean.Store(true)
	}
	b.mu.Unlock()
	if st != nil && b.hook != nil {
		b.hook(*st)
	}
}

// connFailure reports err to the breaker when it is a failure of the
// connection (not a refusal, not the caller's cancelled context).
func (p *Pool) connFailure(ctx context.Context, err error) {
	if ctx.Err() != nil || err == nil {
		return
	}
	var se *SMTPError
	if errors.As(err, &se) && (se.Code/100 != 4 || se.Stage != StageConnect) {
		return // the relay answered
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return
	}
	p.brk.failure(err)
}

// describe sums up a connection failure: a kind and a few English words.
func describe(err error) (kind, cause string) {
	var se *SMTPError
	var dnsErr *net.DNSError
	var ne net.Error
	var tlsErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &se):
		s := strconv.Itoa(se.Code)
		if se.Enhanced != "" {
			s += " " + se.Enhanced
		}
		if se.Message != "" {
			s += " " + se.Message
		}
		return "reply", "the relay answered " + s
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", "connection refused"
	case errors.As(err, &dnsErr):
		return "dns", "relay host not found"
	case errors.As(err, &ne) && ne.Timeout():
		var te *timeoutError
		if errors.As(err, &te) {
			return "timeout", "no " + te.what + " within " + te.after.String()
		}
		return "timeout", "no answer in time"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "closed", "the relay closed the connection"
	case errors.As(err, &tlsErr), errors.As(err, &certErr):
		return "tls", "TLS handshake failed"
	}
	return "other", err.Error()
}

// timeoutError names what did not come in time. It is a net.Error with
// Timeout true, wrapping the I/O error.
type timeoutError struct {
	what  string // "greeting", "reply", "reply to the message"
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string {
	return "no " + e.what + " within " + e.after.String() + ": " + e.err.Error()
}
func (e *timeoutError) Unwrap() error   { return e.err }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
