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
}

// New returns a sink. logger may be nil.
func New(logger *slog.Logger) *Sink {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{log: logger}
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

func (s *Sink) accepted(n int64) {
	now := time.Now().UnixNano()
	s.bytes.Add(n)
	s.msgs.Add(1)
	s.first.CompareAndSwap(0, now)
	for {
		last := s.last.Load()
		if now <= last || s.last.CompareAndSwap(last, now) {
			return
		}
	}
}

type session struct{ s *Sink }

func (ss *session) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *session) Rcpt(string, *smtp.RcptOptions) error { ss.s.rcpts.Add(1); return nil }
func (ss *session) Reset()                               {}
func (ss *session) Logout() error                        { return nil }

func (ss *session) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	ss.s.accepted(n)
	return nil
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
