package smtpsink

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Stats is a snapshot of what the sink has accepted since start or Reset.
type Stats struct {
	// Messages is the number of messages accepted (250 after DATA).
	Messages int64 `json:"messages"`
	// Recipients is the number of RCPT TO commands accepted.
	Recipients int64 `json:"recipients"`
	// Bytes is the total size of the accepted DATA payloads.
	Bytes int64 `json:"bytes"`
	// Connections is the number of connections accepted.
	Connections int64 `json:"connections"`
	// First and Last are when the first and the last message were accepted
	// (zero when none).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Seconds is Last minus First in seconds.
	Seconds float64 `json:"seconds"`
	// PerSecond is Messages/Seconds (0 with fewer than two messages).
	PerSecond float64 `json:"per_second"`
}

// Sink accepts and discards SMTP messages, counting them. Its methods are
// safe for concurrent use.
type Sink struct {
	log   *slog.Logger
	srv   *smtp.Server
	msgs  atomic.Int64
	rcpts atomic.Int64
	bytes atomic.Int64
	conns atomic.Int64
	first atomic.Int64 // UnixNano, 0 = none
	last  atomic.Int64
	epoch int64 // start time, for queue ids
}

// New returns a sink. logger may be nil.
func New(logger *slog.Logger) *Sink {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{log: logger, epoch: time.Now().UnixNano()}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "smtpsink.invalid"
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	return s
}

// Serve accepts SMTP connections on ln until ctx ends or Close is called.
func (s *Sink) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	err := s.srv.Serve(&countingListener{Listener: ln, s: s})
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// Close stops the server and closes its connections.
func (s *Sink) Close() error {
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Stats returns a snapshot.
func (s *Sink) Stats() Stats {
	st := Stats{
		Messages:    s.msgs.Load(),
		Recipients:  s.rcpts.Load(),
		Bytes:       s.bytes.Load(),
		Connections: s.conns.Load(),
	}
	if f := s.first.Load(); f != 0 {
		st.First = time.Unix(0, f).UTC()
		st.Last = time.Unix(0, s.last.Load()).UTC()
		st.Seconds = st.Last.Sub(st.First).Seconds()
		if st.Messages > 1 && st.Seconds > 0 {
			st.PerSecond = float64(st.Messages-1) / st.Seconds
		}
	}
	return st
}

// Reset zeroes the counters.
func (s *Sink) Reset() {
	s.msgs.Store(0)
	s.rcpts.Store(0)
	s.bytes.Store(0)
	s.conns.Store(0)
	s.first.Store(0)
	s.last.Store(0)
}

// Handler serves GET /stats (JSON Stats) and POST /reset.
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// accepted counts a message of n bytes and returns its number.
func (s *Sink) accepted(n int64) int64 {
	now := time.Now().UnixNano()
	s.bytes.Add(n)
	seq := s.msgs.Add(1)
	s.first.CompareAndSwap(0, now)
	for {
		last := s.last.Load()
		if now <= last || s.last.CompareAndSwap(last, now) {
			return seq
		}
	}
}

type session struct{ s *Sink }

func (ss *session) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *session) Rcpt(string, *smtp.RcptOptions) error { ss.s.rcpts.Add(1); return nil }
func (ss *session) Reset()                               {}
func (ss *session) Logout() error                        { return nil }

// Data counts the message and answers as Postfix does, with a queue id
// of its own ("250 2.0.0 Ok: queued as 4ZqN8b1kXvz3HdQ"), so that a
// sender that keeps the relay's reply stores as much as it would in use.
func (ss *session) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	seq := ss.s.accepted(n)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + queueID(ss.s.epoch, seq)}
}

// queueID is a Postfix-style long queue id: 15 base-62 characters, 11
// from a mix (splitmix64) of the sink's start time and the message's
// number, 4 from the number.
func queueID(epoch, seq int64) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	z := uint64(epoch) + uint64(seq)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	var b [15]byte
	for i := 10; i >= 0; i-- {
		b[i] = digits[z%62]
		z /= 62
	}
	for i, v := 14, uint64(seq); i >= 11; i-- {
		b[i] = digits[v%62]
		v /= 62
	}
	return string(b[:])
}

type countingListener struct {
	net.Listener
	s *Sink
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.conns.Add(1)
	}
	return c, err
}
