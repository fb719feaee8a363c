package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Limiter paces messages, e.g. a Redis-backed global rate limit shared by all
// workers. Wait blocks until one message may be sent or ctx ends.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Slots caps connections, e.g. a Redis-backed semaphore shared by all
// workers. Acquire blocks until a connection may be opened; release is
// called exactly once when that connection closes.
type Slots interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// PoolOptions configures a Pool. Every field is optional; the zero value of
// each is documented.
type PoolOptions struct {
	// MaxIdle is how many idle connections the pool keeps for reuse; 0 means 8.
	// Connections beyond it are closed when put back.
	MaxIdle int
	// HELO is the name sent in EHLO; empty means the host name (go-mail's default).
	HELO string
	// TLSConfig is used for STARTTLS and implicit TLS; nil means the system
	// roots, ServerName = relay host, TLS ≥ 1.2.
	TLSConfig *tls.Config
	// DialTimeout bounds the TCP connect (and, for implicit TLS, the
	// handshake); 0 means 10s.
	DialTimeout time.Duration
	// GreetingTimeout bounds the relay's greeting and the replies to
	// EHLO, STARTTLS and AUTH, together, from the connect; 0 means 30s.
	// A relay that accepts connections and never answers fails here.
	GreetingTimeout time.Duration
	// CommandTimeout bounds the wait for each reply to a command (NOOP,
	// MAIL, RCPT, DATA); 0 means 30s.
	CommandTimeout time.Duration
	// DataTimeout bounds the wait for the reply to a message's data (the
	// relay may scan it first), the write of a message, and, when
	// transactions are pipelined (Conn.Start), the replies of each
	// transaction and the write of a window; 0 means 2 minutes. An
	// earlier deadline of the caller's ctx wins.
	DataTimeout time.Duration
	// BreakerThreshold is how many connection-level failures in a row
	// (dial, greeting or reply timeouts, connections lost mid-exchange),
	// with no transaction answered in between, open the relay's circuit
	// breaker: dials then fail at once with an *UnavailableError for
	// BreakerCooldown, after which one probe dial is let through. 0
	// means 3; a negative value disables the breaker.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before a probe;
	// 0 means 10s.
	BreakerCooldown time.Duration
	// OnRelayState, if set, is called when the breaker opens (the relay
	// is unreachable; again after each failed probe) and when it closes
	// (a probe connected), e.g. to show the relay's state to people.
	// It is called on the sending goroutine: it should be quick.
	OnRelayState func(RelayState)
	// IdleCheck: a connection idle longer than this is checked with NOOP
	// before use (and re-dialled if dead); 0 means 15s. Busy connections never
	// send NOOP.
	IdleCheck time.Duration
	// MaxIdleTime: an idle connection older than this is closed instead of
	// reused; 0 means 2 minutes (most relays drop idle clients after 5).
	MaxIdleTime time.Duration
	// MaxMessagesPerConn re-dials after this many messages on one connection
	// (relays often cap it, e.g. at 100); 0 means no limit.
	MaxMessagesPerConn int
	// NoPipelining sends MAIL, RCPT and DATA one at a time even when the
	// relay offers PIPELINING (RFC 2920). The zero value pipelines.
	NoPipelining bool
	// NoChunking sends the message with DATA even when the relay offers
	// CHUNKING (RFC 3030 BDAT). The zero value uses BDAT for messages in
	// canonical CRLF form.
	NoChunking bool
	// Limiter, if set, is waited on before every message.
	Limiter Limiter
	// Slots, if set, is acquired before every dial and released on close.
	Slots Slots
	// Logger receives debug records (dials, re-dials, closes); never
	// addresses or bodies. Nil discards them.
	Logger *slog.Logger
}

// Pool hands out SMTP connections to one relay and takes them back for
// reuse. One connection serves one sending goroutine at a time: Get, Send
// many times, Put. Pool is safe for concurrent use.
type Pool struct {
	cfg    RelayConfig
	opts   PoolOptions
	client *gomail.Client
	log    *slog.Logger

	mu     sync.Mutex
	idle   []*Conn
	closed bool

	dials atomic.Int64
	open  atomic.Int64

	brk breaker
	// undrained is set once the relay was seen taking the bytes of a
	// chunk it refused for commands: from then on new connections send
	// with DATA, which waits for the relay's go-ahead (RFC 2920).
	undrained atomic.Bool
	// drainProbed is set once probeDrain has told whether the relay
	// reads a refused chunk; skipDrainProbe (tests) trusts it does.
	drainProbed    atomic.Bool
	skipDrainProbe bool
}

// NewPool returns a pool for cfg. It dials nothing until Get.
func NewPool(cfg RelayConfig, opts PoolOptions) (*Pool, error) {
	if cfg.Host == "" || cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mailer: NewPool: relay host/port not set (use ParseSMTPURL)")
	}
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 8
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.GreetingTimeout <= 0 {
		opts.GreetingTimeout = 30 * time.Second
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = 2 * time.Minute
	}
	if opts.BreakerThreshold == 0 {
		opts.BreakerThreshold = 3
	}
	if opts.BreakerCooldown <= 0 {
		opts.BreakerCooldown = 10 * time.Second
	}
	if opts.IdleCheck <= 0 {
		opts.IdleCheck = 15 * time.Second
	}
	if opts.MaxIdleTime <= 0 {
		opts.MaxIdleTime = 2 * time.Minute
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if opts.TLSConfig != nil {
		tlsCfg = opts.TLSConfig.Clone()
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = cfg.Host
		}
		if tlsCfg.MinVersion == 0 {
			tlsCfg.MinVersion = tls.VersionTLS12
		}
	}
	p := &Pool{cfg: cfg, opts: opts, log: logger}
	p.brk = breaker{relay: cfg.Addr(), threshold: opts.BreakerThreshold, cooldown: opts.BreakerCooldown,
		probeMax: opts.DialTimeout + opts.GreetingTimeout + time.Second, hook: opts.OnRelayState, now: time.Now}
	p.brk.clean.Store(true)

	copts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(opts.GreetingTimeout),
		gomail.WithTLSConfig(tlsCfg),
		gomail.WithDialContextFunc(p.dialContext(tlsCfg)),
	}
	switch cfg.TLS {
	case TLSStartTLS:
		copts = append(copts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSOpportunistic:
		copts = append(copts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		copts = append(copts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		// The dial function speaks TLS; WithSSL stops go-mail trying STARTTLS.
		copts = append(copts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("mailer: NewPool: unknown TLS mode %v", cfg.TLS)
	}
	if opts.HELO != "" {
		copts = append(copts, gomail.WithHELO(opts.HELO))
	}
	if cfg.Username != "" {
		// PLAIN: go-mail refuses it without TLS unless the relay is localhost,
		// matching ParseSMTPURL's rule.
		copts = append(copts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	} else {
		copts = append(copts, gomail.WithSMTPAuth(gomail.SMTPAuthNoAuth))
	}
	client, err := gomail.NewClient(cfg.Host, copts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: NewPool %s: %w", cfg, err)
	}
	p.client = client
	return p, nil
}

type connKey struct{}

// dialContext dials TCP (and TLS for implicit mode) and hands the net.Conn
// back through ctx so the Conn can interrupt blocked I/O when its ctx ends.
func (p *Pool) dialContext(tlsCfg *tls.Config) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: p.opts.DialTimeout}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if p.cfg.TLS == TLSImplicit {
			tc := tls.Client(nc, tlsCfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = nc.Close()
				return nil, fmt.Errorf("TLS handshake: %w", err)
			}
			nc = tc
		}
		if holder, ok := ctx.Value(connKey{}).(*net.Conn); ok {
			*holder = nc
		}
		return nc, nil
	}
}

// Relay returns the pool's relay configuration.
func (p *Pool) Relay() RelayConfig { return p.cfg }

// Dials returns how many connections the pool has opened so far.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Open returns how many connections are open now (idle or in use).
func (p *Pool) Open() int64 { return p.open.Load() }

// Get returns an idle connection, or dials a new one (after Slots.Acquire).
// Dial failures are *ConnError or, for a refusal at greeting/EHLO/AUTH,
// *SMTPError with Stage "connect".
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		var c *Conn
		if n := len(p.idle); n > 0 {
			c = p.idle[n-1]
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if c == nil {
			break
		}
		if time.Since(c.lastUsed) > p.opts.MaxIdleTime {
			c.close()
			continue
		}
		return c, nil
	}
	c := &Conn{pool: p}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Put returns c to the pool for reuse; a broken connection, or one beyond
// MaxIdle, is closed instead. c must not be used after Put.
func (p *Pool) Put(c *Conn) {
	if c == nil {
		return
	}
	if c.outstanding() > 0 {
		// Returned without Wait: the replies will not be read.
		c.abandon(&ConnError{Stage: StageMail, Err: errors.New("connection returned to the pool with transactions outstanding")})
	}
	c.warm = false
	if c.client == nil || c.broken || c.suspect > 0 {
		c.close()
		return
	}
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.opts.MaxIdle {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// Send is Get, Conn.Send and Put in one call.
func (p *Pool) Send(ctx context.Context, envelopeFrom, rcpt string, raw []byte) (Reply, error) {
	if err := checkEnvelope(envelopeFrom, rcpt); err != nil {
		return Reply{}, err
	}
	c, err := p.Get(ctx)
	if err != nil {
		return Reply{}, err
	}
	defer p.Put(c)
	return c.Send(ctx, envelopeFrom, rcpt, raw)
}

// Close closes the idle connections and makes later Gets fail; connections
// in use are closed when they are Put back.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	return nil
}

// Reply is the relay's answer to an accepted message, e.g.
// "250 2.0.0 Ok: queued as 4bWq7J".
type Reply struct {
	// Code is the reply code (250).
	Code int
	// Enhanced is the enhanced status code, e.g. "2.0.0"; may be empty.
	Enhanced string
	// Message is the text after the codes, e.g. "Ok: queued as 4bWq7J".
	Message string
}

// String returns the reply as the relay wrote it.
func (r Reply) String() string {
	s := fmt.Sprint(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if r.Message != "" {
		s += " " + r.Message
	}
	return s
}

// Conn is one SMTP connection, used by one goroutine at a time. After a
// connection failure it re-dials on the next Send.
type Conn struct {
	pool     *Pool
	client   *smtp.Client
	nc       net.Conn
	release  func()
	lastUsed time.Time
	sent     int
	broken   bool
	// pipelining and chunking are set when the relay offers PIPELINING
	// and CHUNKING and the pool allows them.
	pipelining bool
	chunking   bool
	// plain is set when nc carries the SMTP stream itself (no TLS), so a
	// chunked transaction can leave in one writev.
	plain bool
	cmd   []byte
	// inflight are the transactions Start took and has not settled, the
	// oldest first; the last queued of them are not written yet: their
	// bytes are in wbuf. free holds buffers to reuse.
	inflight []pending
	ihead    int
	queued   int
	wbuf     *obuf
	free     []*obuf
	// suspect is set after a transaction whose chunk the relay refused:
	// the number of lines of that chunk, which a relay that did not read
	// it answers one by one before anything written after it.
	suspect int
	// warm is set once a message went through since the connection left
	// the pool: Start pipelines only on a connection known to be alive.
	warm bool
	// armed is when readReplies last set the read deadline.
	armed time.Time
}

// dial connects to the relay. A connection refused (or reset, or closed
// before the greeting) is tried again at once, up to BreakerThreshold
// times with short pauses: a relay that is restarting is back, one that is
// down opens the breaker now rather than after as many batches.
func (c *Conn) dial(ctx context.Context) error {
	p := c.pool
	for try := 1; ; try++ {
		err := c.dialOnce(ctx)
		if err == nil || try >= p.opts.BreakerThreshold || !fastDialFailure(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(time.Duration(try) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// fastDialFailure: the relay's host said no at once (not a timeout, not
// a name that does not resolve, not a refusal in words).
func fastDialFailure(err error) bool {
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Stage != StageConnect || isTimeout(err) {
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (c *Conn) dialOnce(ctx context.Context) error {
	p := c.pool
	if err := p.brk.allow(); err != nil {
		return err
	}
	if p.opts.Slots != nil {
		release, err := p.opts.Slots.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("mailer: connection slot: %w", err)
		}
		c.release = release
	}
	var nc net.Conn
	dctx := context.WithValue(ctx, connKey{}, &nc)
	client, err := p.client.DialToSMTPClientWithContext(dctx)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = &timeoutError{what: "greeting", after: p.opts.GreetingTimeout, err: err}
			}
		}
		c.releaseSlot()
		p.log.DebugContext(ctx, "smtp dial failed", "relay", p.cfg.Addr(), "err", err)
		cerr := classify(StageConnect, err)
		p.connFailure(ctx, cerr)
		return cerr
	}
	p.brk.connected()
	p.dials.Add(1)
	p.open.Add(1)
	c.client, c.nc, c.broken, c.sent, c.suspect = client, nc, false, 0, 0
	c.pipelining, c.chunking = false, false
	_, isTLS := client.TLSConnectionState()
	c.plain = nc != nil && !isTLS
	if !p.opts.NoPipelining {
		c.pipelining, _ = client.Extension("PIPELINING")
	}
	if !p.opts.NoChunking && !p.undrained.Load() {
		c.chunking, _ = client.Extension("CHUNKING")
	}
	c.lastUsed = time.Now()
	if c.pipelining && c.chunking && !p.drainProbed.Load() && !p.skipDrainProbe {
		if err := c.probeDrain(ctx); err != nil {
			c.broken = true
			c.close()
			p.connFailure(ctx, err)
			return err
		}
		c.chunking = !p.undrained.Load()
	}
	p.log.DebugContext(ctx, "smtp connected", "relay", p.cfg.Addr())
	return nil
}

// drainProbe is a transaction every relay refuses (no recipient) whose
// chunk, "HELP", a relay that does not read a refused chunk answers as a
// command (214 or 502) before it answers the RSET that follows.
const drainProbe = "MAIL FROM:<>\r\nBDAT 6 LAST\r\nHELP\r\nRSET\r\n"

// probeDrain finds out, once per Pool, whether the relay reads a BDAT
// chunk it refuses, as RFC 3030 requires: a client that pipelines a
// message with its RCPT learns that the recipient was refused only after
// the message has gone, and a relay that takes the message's lines for
// commands answers them in place of what follows. If it does not, the
// Pool sends with DATA (noteUndrained). It costs one round trip per
// Pool.
func (c *Conn) probeDrain(ctx context.Context) error {
	p := c.pool
	defer c.watch(ctx)()
	c.deadline(ctx, p.opts.CommandTimeout)
	text := c.client.Text
	_, _ = text.W.WriteString(drainProbe)
	if err := text.W.Flush(); err != nil {
		return &ConnError{Stage: StageConnect, Err: fmt.Errorf("chunking probe: %w", err)}
	}
	var codes [3]int
	for i := range codes {
		code, _, err := text.ReadResponse(0)
		if err != nil {
			if isTimeout(err) {
				err = &timeoutError{what: "reply", after: p.opts.CommandTimeout, err: err}
			}
			return &ConnError{Stage: StageConnect, Err: fmt.Errorf("chunking probe: %w", err)}
		}
		codes[i] = code
	}
	// MAIL, BDAT (refused: no recipient), then RSET's 250, or HELP's reply.
	if codes[1]/100 == 2 || codes[2]/100 != 2 {
		if codes[2]/100 != 2 {
			if _, _, err := text.ReadResponse(0); err != nil { // the RSET's
				return &ConnError{Stage: StageConnect, Err: fmt.Errorf("chunking probe: %w", err)}
			}
		}
		p.noteUndrained(ctx)
	}
	p.drainProbed.Store(true)
	return nil
}

func (c *Conn) releaseSlot() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// close ends the connection: QUIT when healthy (bounded by a short
// deadline), then close, then release the slot.
func (c *Conn) close() {
	if c.client == nil {
		c.releaseSlot()
		return
	}
	if !c.broken && c.suspect == 0 && c.nc != nil {
		_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
		_ = c.client.Quit()
	}
	_ = c.client.Close()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.client, c.nc = nil, nil
	c.suspect = 0
	c.pool.open.Add(-1)
	c.releaseSlot()
}

// Close closes the connection without returning it to the pool.
func (c *Conn) Close() error {
	c.close()
	return nil
}

// Send delivers raw to one recipient: MAIL FROM:<envelopeFrom>, RCPT
// TO:<rcpt>, DATA. raw must be a complete message with CRLF line ends
// (Builder output); it is sent unchanged except for SMTP dot-stuffing.
//
// A message the relay accepted at DATA returns the relay's Reply and a nil
// error. Otherwise the error is a *SMTPError (4xx/5xx at a stage; the
// connection stays usable), a *ConnError (the connection is dropped and
// re-dialled on the next Send), an *UnavailableError (the relay's circuit
// breaker is open), a *ValidationError for bad addresses, or the error
// from the Limiter or ctx. Classify it with IsTemporary, IsPermanent,
// IsBadMailbox and IsPolicy, and errors.Is(err, ErrRelayUnavailable).
//
// When the connection turns out dead or out of step before the message
// could have been accepted (EOF or a reset before the first reply, a 421
// at any point, a 5.5.x "bad command" or "bad sequence" reply to MAIL or
// to the data), Send closes it, dials again and sends once more: nothing
// was accepted on it.
func (c *Conn) Send(ctx context.Context, envelopeFrom, rcpt string, raw []byte) (Reply, error) {
	if err := checkEnvelope(envelopeFrom, rcpt); err != nil {
		return Reply{}, err
	}
	p := c.pool
	if p.opts.Limiter != nil {
		if err := p.opts.Limiter.Wait(ctx); err != nil {
			return Reply{}, fmt.Errorf("mailer: rate limiter: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	return c.send(ctx, envelopeFrom, rcpt, raw)
}

// send is Send after the envelope check and the Limiter.
func (c *Conn) send(ctx context.Context, envelopeFrom, rcpt string, raw []byte) (Reply, error) {
	p := c.pool
	if c.client != nil && (c.broken || c.suspect > 0 || (p.opts.MaxMessagesPerConn > 0 && c.sent >= p.opts.MaxMessagesPerConn) ||
		time.Since(c.lastUsed) > p.opts.MaxIdleTime) {
		c.close()
	}
	reused := c.client != nil
	if !reused {
		if err := c.dial(ctx); err != nil {
			return Reply{}, err
		}
	}
	reply, err, again := c.transact(ctx, envelopeFrom, rcpt, raw, reused)
	if again {
		// Dead or out of step before anything could be accepted: once more
		// on a new connection.
		p.log.DebugContext(ctx, "smtp re-dial: connection dead or out of step", "relay", p.cfg.Addr(), "err", err)
		c.close()
		if derr := c.dial(ctx); derr != nil {
			return Reply{}, derr
		}
		reply, err, _ = c.transact(ctx, envelopeFrom, rcpt, raw, false)
	}
	return reply, err
}

// transact runs one transaction. again reports that the message was
// certainly not accepted and the connection is dead or out of step, so
// that it can go once more on a new connection.
func (c *Conn) transact(ctx context.Context, from, rcpt string, raw []byte, reused bool) (reply Reply, err error, again bool) {
	p := c.pool
	defer c.watch(ctx)()
	if reused && time.Since(c.lastUsed) > p.opts.IdleCheck {
		c.deadline(ctx, p.opts.CommandTimeout)
		if err := c.client.Noop(); err != nil {
			// Dead (EOF, reset, 421 idle timeout) or out of step.
			c.broken = true
			if isTimeout(err) && ctx.Err() == nil {
				cerr := classify(StageMail, &timeoutError{what: "reply to NOOP", after: p.opts.CommandTimeout, err: err})
				p.connFailure(ctx, cerr)
				return Reply{}, cerr, false
			}
			return Reply{}, &ConnError{Stage: StageMail, Err: fmt.Errorf("idle connection check (NOOP): %w", err)}, ctx.Err() == nil
		}
	}
	c.lastUsed = time.Now()

	// MAIL, RCPT and DATA (or BDAT) go through go-mail's textproto.Conn
	// directly. With PIPELINING (RFC 2920) the commands leave in one write
	// and their replies are read together; with CHUNKING (RFC 3030) the
	// message follows "BDAT <size> LAST" in that same write, unstuffed, so
	// a message costs one round trip.
	text := c.client.Text
	w := text.W
	canonical := isCanonical(raw)
	chunk := c.chunking && canonical
	// Replies to commands written together with the message wait as
	// long as the reply to the data: the relay may answer them all once
	// it has read the message.
	cmdTimeout := p.opts.CommandTimeout
	if chunk && c.pipelining {
		cmdTimeout = p.opts.DataTimeout
	}
	var (
		mailCode, rcptCode, dataCode int
		mailMsg, rcptMsg, dataMsg    string
		rerr                         error
	)
	// lost handles a connection failure: before the first reply it is a
	// dead connection (nothing was accepted), later the message's fate is
	// unknown.
	first := true
	lost := func(stage string, err error, timeout time.Duration, what string) (Reply, error, bool) {
		c.broken = true
		if isTimeout(err) && ctx.Err() == nil {
			err = &timeoutError{what: what, after: timeout, err: err}
		}
		cerr := classify(stage, err)
		dead := first && !isTimeout(err) && ctx.Err() == nil
		if !dead {
			p.connFailure(ctx, cerr)
		}
		return Reply{}, cerr, dead
	}
	read := func(timeout time.Duration) (int, string, error) {
		c.deadline(ctx, timeout)
		code, msg, err := text.ReadResponse(0)
		if err == nil {
			first = false
			if code == 421 {
				// The relay is closing the connection (idle timeout,
				// shutting down): nothing was accepted, and the next
				// read would be EOF.
				err = errClosing
			}
		}
		return code, msg, err
	}
	closing := func(stage string, code int, msg string) (Reply, error, bool) {
		c.broken = true
		return Reply{}, replyError(stage, code, msg), true
	}

	c.deadline(ctx, p.opts.DataTimeout)
	if chunk && c.pipelining && c.plain && w.Buffered() == 0 {
		// The commands and the message in one writev, without copying
		// the message through the 4 KB write buffer.
		b := appendChunkedCommands(c.cmd[:0], from, rcpt, len(raw))
		c.cmd = b
		bufs := net.Buffers{b, raw}
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return lost(StageMail, err, p.opts.DataTimeout, "write")
		}
		goto replies
	}
	_, _ = w.WriteString("MAIL FROM:<")
	_, _ = w.WriteString(from)
	_, _ = w.WriteString(">\r\n")
	if !c.pipelining {
		if err := w.Flush(); err != nil {
			return lost(StageMail, err, p.opts.DataTimeout, "write")
		}
		if mailCode, mailMsg, rerr = read(cmdTimeout); rerr == errClosing {
			return closing(StageMail, mailCode, mailMsg)
		} else if rerr != nil {
			return lost(StageMail, rerr, cmdTimeout, "reply to MAIL")
		}
	}
	_, _ = w.WriteString("RCPT TO:<")
	_, _ = w.WriteString(rcpt)
	_, _ = w.WriteString(">\r\n")
	if !c.pipelining {
		if err := w.Flush(); err != nil {
			return lost(StageRcpt, err, p.opts.DataTimeout, "write")
		}
		if rcptCode, rcptMsg, rerr = read(cmdTimeout); rerr == errClosing {
			return closing(StageRcpt, rcptCode, rcptMsg)
		} else if rerr != nil {
			return lost(StageRcpt, rerr, cmdTimeout, "reply to RCPT")
		}
	}
	if chunk {
		_, _ = w.WriteString("BDAT ")
		_, _ = w.WriteString(strconv.Itoa(len(raw)))
		_, _ = w.WriteString(" LAST\r\n")
		_, _ = w.Write(raw)
	} else {
		_, _ = w.WriteString("DATA\r\n")
	}
	c.deadline(ctx, p.opts.DataTimeout)
	if err := w.Flush(); err != nil {
		return lost(StageMail, err, p.opts.DataTimeout, "write")
	}
replies:
	if c.pipelining {
		// Read every reply, even after a refusal, to stay in step.
		if mailCode, mailMsg, rerr = read(cmdTimeout); rerr == errClosing {
			return closing(StageMail, mailCode, mailMsg)
		} else if rerr != nil {
			return lost(StageMail, rerr, cmdTimeout, "reply to MAIL")
		}
		if rcptCode, rcptMsg, rerr = read(cmdTimeout); rerr == errClosing {
			return closing(StageRcpt, rcptCode, rcptMsg)
		} else if rerr != nil {
			return lost(StageRcpt, rerr, cmdTimeout, "reply to RCPT")
		}
	}
	{
		timeout, what := cmdTimeout, "reply to DATA"
		if chunk {
			timeout, what = p.opts.DataTimeout, "reply to the message"
		}
		if dataCode, dataMsg, rerr = read(timeout); rerr == errClosing {
			return closing(StageData, dataCode, dataMsg)
		} else if rerr != nil {
			return lost(StageData, rerr, timeout, what)
		}
	}
	if outOfStep(mailCode, mailMsg) || mailCode/100 == 3 || rcptCode/100 == 3 ||
		(mailCode/100 == 2 && rcptCode/100 == 2 && outOfStep(dataCode, dataMsg)) {
		// A reply that cannot belong to its command: the relay and we do
		// not agree on where the conversation is.
		c.broken = true
		return Reply{}, &ConnError{Stage: StageMail, Err: fmt.Errorf("out of step: replies %d, %d, %d to MAIL, RCPT and the data", mailCode, rcptCode, dataCode)}, true
	}
	p.brk.answered()
	if mailCode/100 != 2 || rcptCode/100 != 2 {
		if dataCode/100 == 2 || dataCode/100 == 3 {
			if !chunk && dataCode == 354 {
				// The relay took DATA despite the refusal: end an empty message.
				_, _ = w.WriteString(".\r\n")
				if err := w.Flush(); err != nil {
					c.broken = true
				} else if _, _, err := text.ReadResponse(250); lostConn(err) {
					c.broken = true
				}
			} else {
				c.broken = true // accepted data without a recipient: out of step
			}
		}
		if chunk {
			// The relay refused the chunk; one that did not read it takes
			// its lines for commands: the RSET in fail tells.
			c.suspect = bytes.Count(raw, lf)
		}
		if mailCode/100 != 2 {
			return Reply{}, c.fail(ctx, replyError(StageMail, mailCode, mailMsg)), false
		}
		return Reply{}, c.fail(ctx, replyError(StageRcpt, rcptCode, rcptMsg)), false
	}
	if chunk {
		if dataCode/100 != 2 {
			return Reply{}, c.fail(ctx, replyError(StageData, dataCode, dataMsg)), false
		}
	} else {
		if dataCode != 354 {
			return Reply{}, c.fail(ctx, replyError(StageData, dataCode, dataMsg)), false
		}
		c.deadline(ctx, p.opts.DataTimeout)
		if err := writeData(text, raw, canonical); err != nil {
			c.broken = true
			cerr := &ConnError{Stage: StageData, Err: err}
			p.connFailure(ctx, cerr)
			return Reply{}, cerr, false
		}
		var err error
		if dataCode, dataMsg, err = text.ReadResponse(0); err != nil {
			// After the final dot the transaction is over either way.
			c.broken = true
			if isTimeout(err) && ctx.Err() == nil {
				err = &timeoutError{what: "reply to the message", after: p.opts.DataTimeout, err: err}
			}
			cerr := classify(StageData, err)
			p.connFailure(ctx, cerr)
			return Reply{}, cerr, false
		}
		if dataCode == 421 {
			c.broken = true
			return Reply{}, replyError(StageData, dataCode, dataMsg), true
		}
		if dataCode/100 != 2 {
			return Reply{}, c.fail(ctx, replyError(StageData, dataCode, dataMsg)), false
		}
	}
	c.sent++
	c.lastUsed = time.Now()
	reply = Reply{Code: dataCode}
	reply.Enhanced, reply.Message = splitEnhanced(dataMsg)
	// The transaction is complete after 250 at the end of the data: the
	// next MAIL FROM starts a new one, so no RSET (saves a round trip).
	return reply, nil, false
}

var lf = []byte{'\n'}

// errClosing marks a 421 reply in transact.
var errClosing = errors.New("421")

// watch cuts the connection's blocked reads and writes short when ctx is
// cancelled. Call the returned function when they are done.
func (c *Conn) watch(ctx context.Context) (stop func() bool) {
	if c.nc == nil || ctx.Done() == nil {
		return func() bool { return true }
	}
	nc := c.nc
	return context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
}

// deadline bounds the connection's next reads and writes by d from now
// (or ctx's deadline, if sooner). Under watch, a cancelled ctx keeps them
// cut short.
func (c *Conn) deadline(ctx context.Context, d time.Duration) {
	if c.nc == nil {
		return
	}
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		t = cd
	}
	_ = c.nc.SetDeadline(t)
	if ctx.Err() != nil {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// replyError is the *SMTPError for a refusal.
func replyError(stage string, code int, msg string) *SMTPError {
	enh, text := splitEnhanced(msg)
	return &SMTPError{Code: code, Enhanced: enh, Message: text, Stage: stage}
}

// outOfStep reports a reply that says the relay took the command for
// something else: a 5.5.x (or 4.5.x) enhanced code (bad syntax, bad
// sequence, unknown command), or 500–504 without one. To RSET, MAIL or
// the data of a transaction whose recipient was accepted, that means the
// relay and the client disagree on where the conversation is.
func outOfStep(code int, msg string) bool {
	if code < 400 || code >= 600 {
		return false
	}
	if len(msg) >= 4 && msg[1] == '.' && msg[2] == '5' && msg[3] == '.' && (msg[0] == '4' || msg[0] == '5') {
		return true
	}
	if code >= 500 && code <= 504 {
		_, _, hasEnhanced := cutEnhanced(firstWord(msg))
		return !hasEnhanced
	}
	return false
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// appendChunkedCommands appends the commands of a one-chunk transaction:
// MAIL FROM, RCPT TO and "BDAT size LAST", each with its CRLF.
func appendChunkedCommands(b []byte, from, rcpt string, size int) []byte {
	b = append(b, "MAIL FROM:<"...)
	b = append(b, from...)
	b = append(b, ">\r\nRCPT TO:<"...)
	b = append(b, rcpt...)
	b = append(b, ">\r\nBDAT "...)
	b = strconv.AppendInt(b, int64(size), 10)
	return append(b, " LAST\r\n"...)
}

// isCanonical reports whether raw is in SMTP canonical form: CRLF line ends
// only, ending in CRLF (Builder output always is).
func isCanonical(raw []byte) bool {
	if !bytes.HasSuffix(raw, crlf) {
		return false
	}
	// Every LF follows a CR, and there are as many CRs as LFs, so every
	// CR is followed by an LF. One IndexByte per line and one Count: the
	// check runs for every message.
	lf := 0
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			break
		}
		if i+j == 0 || raw[i+j-1] != '\r' {
			return false
		}
		lf++
		i += j + 1
	}
	return bytes.Count(raw, cr) == lf
}

var cr = []byte{'\r'}

// writeData sends the message body and the final dot. A canonical message
// with no line starting with '.' is written as is; anything else goes
// through textproto's DotWriter, which dot-stuffs and fixes line ends.
func writeData(text *textproto.Conn, raw []byte, canonical bool) error {
	if canonical && raw[0] != '.' && !bytes.Contains(raw, []byte("\n.")) {
		if _, err := text.W.Write(raw); err != nil {
			return err
		}
		if _, err := text.W.WriteString(".\r\n"); err != nil {
			return err
		}
		return text.W.Flush()
	}
	dw := text.DotWriter()
	if _, err := dw.Write(raw); err != nil {
		return err
	}
	return dw.Close()
}

var crlf = []byte("\r\n")

// lostConn reports an error that is not a relay reply (network, timeout,
// malformed response): the connection is out of step and must be dropped.
func lostConn(err error) bool {
	var te *textproto.Error
	return err != nil && !errors.As(err, &te)
}

// fail is a refusal's outcome: after it, RSET clears the transaction so
// the connection can carry the next message (harmless when none is open,
// and it clears an accepted MAIL FROM after a refused RCPT or data). After
// a refused chunk, the RSET's reply also tells whether the relay read the
// chunk; if it did not (its reply is to the chunk's first line), the
// connection is out of step and is dropped.
func (c *Conn) fail(ctx context.Context, se *SMTPError) error {
	if se.Code == 421 {
		c.broken = true // the relay is closing the connection
		return se
	}
	c.deadline(ctx, c.pool.opts.CommandTimeout)
	_, _ = c.client.Text.W.WriteString("RSET\r\n")
	if err := c.client.Text.W.Flush(); err != nil {
		c.broken = true
		return se
	}
	code, msg, err := c.client.Text.ReadResponse(0)
	switch {
	case err != nil:
		c.broken = true
	case code/100 != 2:
		c.broken = true
		if c.suspect > 0 && outOfStep(code, msg) {
			c.pool.noteUndrained(ctx)
		}
	}
	c.suspect = 0
	return se
}

// classify turns a go-mail/textproto error into *SMTPError or *ConnError.
func classify(stage string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		enh, msg := splitEnhanced(te.Msg)
		return &SMTPError{Code: te.Code, Enhanced: enh, Message: msg, Stage: stage}
	}
	var se *SMTPError
	if errors.As(err, &se) {
		return err
	}
	// Anything else (EOF, reset, timeout, TLS, malformed reply) means the
	// connection cannot be trusted.
	return &ConnError{Stage: stage, Err: err}
}

// splitEnhanced splits "5.1.1 User unknown" into ("5.1.1", "User unknown").
// Multi-line replies keep their lines, each without its enhanced code.
func splitEnhanced(msg string) (string, string) {
	lines := strings.Split(msg, "\n")
	enh := ""
	for i, l := range lines {
		code, rest, ok := cutEnhanced(l)
		if ok {
			if enh == "" {
				enh = code
			}
			lines[i] = rest
		}
	}
	return enh, strings.Join(lines, "\n")
}

func cutEnhanced(l string) (string, string, bool) {
	sp := strings.IndexByte(l, ' ')
	code := l
	rest := ""
	if sp >= 0 {
		code, rest = l[:sp], l[sp+1:]
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return "", l, false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return "", l, false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return "", l, false
			}
		}
	}
	return code, rest, true
}

func checkEnvelope(from, rcpt string) error {
	var ve ValidationError
	checkAddr(&ve, "envelope from", Address{Email: from}, true)
	checkAddr(&ve, "envelope rcpt", Address{Email: rcpt}, true)
	if len(ve.Problems) > 0 {
		return &ve
	}
	return nil
}
