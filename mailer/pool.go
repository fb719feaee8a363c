package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// DialTimeout bounds connect, greeting, EHLO, STARTTLS and AUTH; 0 means 15s.
	DialTimeout time.Duration
	// SendTimeout bounds one message's MAIL/RCPT/DATA exchange, or, when
	// transactions are pipelined (Conn.Start), the write of a window and
	// the reading of a window's replies (an earlier ctx deadline wins); 0
	// means 2 minutes.
	SendTimeout time.Duration
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
		opts.DialTimeout = 15 * time.Second
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 2 * time.Minute
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

	copts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(opts.DialTimeout),
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
		var d net.Dialer
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
	if len(c.inflight) > 0 {
		// Returned without Wait: the replies will not be read.
		c.abandon(&ConnError{Stage: StageMail, Err: errors.New("connection returned to the pool with transactions outstanding")})
	}
	c.warm = false
	if c.client == nil || c.broken {
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
	// inflight are the transactions Start took whose replies are unread;
	// wbuf holds those of them not yet written.
	inflight []pending
	wbuf     []byte
	// warm is set once a message went through since the connection left
	// the pool: Start pipelines only on a connection known to be alive.
	warm bool
}

func (c *Conn) dial(ctx context.Context) error {
	p := c.pool
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
		}
		c.releaseSlot()
		p.log.DebugContext(ctx, "smtp dial failed", "relay", p.cfg.Addr(), "err", err)
		return classify(StageConnect, err)
	}
	p.dials.Add(1)
	p.open.Add(1)
	c.client, c.nc, c.broken, c.sent = client, nc, false, 0
	c.pipelining, c.chunking = false, false
	_, isTLS := client.TLSConnectionState()
	c.plain = nc != nil && !isTLS
	if !p.opts.NoPipelining {
		c.pipelining, _ = client.Extension("PIPELINING")
	}
	if !p.opts.NoChunking {
		c.chunking, _ = client.Extension("CHUNKING")
	}
	c.lastUsed = time.Now()
	p.log.DebugContext(ctx, "smtp connected", "relay", p.cfg.Addr())
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
	if !c.broken && c.nc != nil {
		_ = c.nc.SetDeadline(time.Now().Add(2 * time.Second))
		_ = c.client.Quit()
	}
	_ = c.client.Close()
	if c.nc != nil {
		_ = c.nc.Close()
	}
	c.client, c.nc = nil, nil
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
// re-dialled on the next Send), a *ValidationError for bad addresses, or the
// error from the Limiter or ctx. Classify it with IsTemporary, IsPermanent,
// IsBadMailbox and IsPolicy.
//
// A reused connection that turns out dead before MAIL FROM was accepted is
// re-dialled once transparently: nothing was sent on it.
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
	if c.client != nil && (c.broken || (p.opts.MaxMessagesPerConn > 0 && c.sent >= p.opts.MaxMessagesPerConn) ||
		time.Since(c.lastUsed) > p.opts.MaxIdleTime) {
		c.close()
	}
	reused := c.client != nil
	if !reused {
		if err := c.dial(ctx); err != nil {
			return Reply{}, err
		}
	}

	reply, stage, err := c.transact(ctx, envelopeFrom, rcpt, raw, reused)
	if err != nil && reused && stage == StageMail && isConnErr(err) {
		// Dead connection discovered before anything was accepted: re-dial once.
		p.log.DebugContext(ctx, "smtp re-dial after dead connection", "relay", p.cfg.Addr(), "err", err)
		c.close()
		if derr := c.dial(ctx); derr != nil {
			return Reply{}, derr
		}
		reply, _, err = c.transact(ctx, envelopeFrom, rcpt, raw, false)
	}
	return reply, err
}

func isConnErr(err error) bool {
	var ce *ConnError
	return errors.As(err, &ce)
}

// transact runs one transaction; stage says where it stopped.
func (c *Conn) transact(ctx context.Context, from, rcpt string, raw []byte, reused bool) (Reply, string, error) {
	p := c.pool
	if c.nc != nil {
		defer c.armDeadline(ctx)()
	}
	if reused && time.Since(c.lastUsed) > p.opts.IdleCheck {
		if err := c.client.Noop(); err != nil {
			return Reply{}, StageMail, c.fail(StageMail, err)
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
	var mailErr, rcptErr, dataErr error

	if chunk && c.pipelining && c.plain && w.Buffered() == 0 {
		// The commands and the message in one writev, without copying
		// the message through the 4 KB write buffer.
		b := appendChunkedCommands(c.cmd[:0], from, rcpt, len(raw))
		c.cmd = b
		bufs := net.Buffers{b, raw}
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return Reply{}, StageMail, c.fail(StageMail, err)
		}
		goto replies
	}
	_, _ = w.WriteString("MAIL FROM:<")
	_, _ = w.WriteString(from)
	_, _ = w.WriteString(">\r\n")
	if !c.pipelining {
		if err := w.Flush(); err != nil {
			return Reply{}, StageMail, c.fail(StageMail, err)
		}
		if _, _, err := text.ReadResponse(250); err != nil {
			return Reply{}, StageMail, c.fail(StageMail, err)
		}
	}
	_, _ = w.WriteString("RCPT TO:<")
	_, _ = w.WriteString(rcpt)
	_, _ = w.WriteString(">\r\n")
	if !c.pipelining {
		if err := w.Flush(); err != nil {
			return Reply{}, StageRcpt, c.fail(StageRcpt, err)
		}
		if _, _, err := text.ReadResponse(25); err != nil {
			return Reply{}, StageRcpt, c.fail(StageRcpt, err)
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
	if err := w.Flush(); err != nil {
		return Reply{}, StageMail, c.fail(StageMail, err)
	}
replies:
	if c.pipelining {
		// Read every reply, even after a refusal, to stay in step.
		if _, _, mailErr = text.ReadResponse(250); lostConn(mailErr) {
			return Reply{}, StageMail, c.fail(StageMail, mailErr)
		}
		if _, _, rcptErr = text.ReadResponse(25); lostConn(rcptErr) {
			return Reply{}, StageRcpt, c.fail(StageRcpt, rcptErr)
		}
	}
	var code int
	var msg string
	if chunk {
		// The relay reads the whole chunk whatever it answers.
		code, msg, dataErr = text.ReadResponse(250)
	} else {
		_, _, dataErr = text.ReadResponse(354)
	}
	if lostConn(dataErr) {
		return Reply{}, StageData, c.fail(StageData, dataErr)
	}
	if mailErr != nil || rcptErr != nil {
		if dataErr == nil && !chunk {
			// The relay took DATA despite the refusal: end an empty message.
			_, _ = w.WriteString(".\r\n")
			if err := w.Flush(); err != nil {
				c.broken = true
			} else if _, _, err := text.ReadResponse(250); lostConn(err) {
				c.broken = true
			}
		}
		if mailErr != nil {
			return Reply{}, StageMail, c.fail(StageMail, mailErr)
		}
		return Reply{}, StageRcpt, c.fail(StageRcpt, rcptErr)
	}
	if dataErr != nil {
		return Reply{}, StageData, c.fail(StageData, dataErr)
	}

	if !chunk {
		if err := writeData(text, raw, canonical); err != nil {
			c.broken = true
			return Reply{}, StageData, &ConnError{Stage: StageData, Err: err}
		}
		var err error
		if code, msg, err = text.ReadResponse(250); err != nil {
			// After the final dot the transaction is over either way.
			return Reply{}, StageData, c.fail(StageData, err)
		}
	}
	c.sent++
	c.lastUsed = time.Now()
	reply := Reply{Code: code}
	reply.Enhanced, reply.Message = splitEnhanced(msg)
	// The transaction is complete after 250 at the end of the data: the
	// next MAIL FROM starts a new one, so no RSET (saves a round trip).
	return reply, StageData, nil
}

// armDeadline bounds the connection's next reads and writes by
// SendTimeout (or ctx's deadline, if sooner) and cuts them short when ctx
// is cancelled. Call the returned function when they are done.
func (c *Conn) armDeadline(ctx context.Context) (disarm func() bool) {
	deadline := time.Now().Add(c.pool.opts.SendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	nc := c.nc
	return context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
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

// fail classifies err; after a refusal mid-transaction it sends RSET so the
// connection can carry the next message, and marks the connection broken
// when that is not possible.
func (c *Conn) fail(stage string, err error) error {
	cerr := classify(stage, err)
	var se *SMTPError
	if !errors.As(cerr, &se) {
		c.broken = true
		return cerr
	}
	if se.Code == 421 {
		c.broken = true // the relay is closing the connection
		return cerr
	}
	// RSET after any refusal: harmless when no transaction is open, and it
	// clears an accepted MAIL FROM after a refused RCPT or DATA.
	if rerr := c.client.Reset(); rerr != nil {
		c.broken = true
	}
	return cerr
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
