package testutil

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the test SMTP server accepted.
type Message struct {
	// From is the envelope sender (MAIL FROM), without angle brackets.
	From string
	// To holds the envelope recipients (RCPT TO) in the order given.
	To []string
	// Raw is the DATA payload exactly as received, after dot-unstuffing,
	// with its CRLF line endings.
	Raw []byte
	// Received is when the server accepted the message (end of DATA).
	Received time.Time
	// Conn is the 1-based number of the connection that carried the message.
	Conn int
	// Remote is the client's address (ip:port) on that connection: with
	// the client's own view of its sockets (/proc/PID/net/tcp) it tells
	// which process sent the message.
	Remote string
	// Size is the length of the DATA payload (len(Raw), or what Raw would
	// have held under WithoutBodies).
	Size int
}

// Fault is a misbehaviour the test SMTP server applies to a recipient.
// The zero Fault does nothing.
type Fault struct {
	// Code is the SMTP reply code to answer with (4xx or 5xx); 0 means accept.
	Code int
	// Enhanced is the RFC 3463 enhanced status code, e.g. "5.1.1"; empty
	// means the generic X.0.0.
	Enhanced string
	// Text is the reply text; empty gives a generic text.
	Text string
	// Drop closes the connection without a reply.
	Drop bool
	// Delay is waited before acting (or before accepting when Code is 0 and
	// Drop is false): a slow server.
	Delay time.Duration
	// AtData applies the fault at the end of DATA instead of at RCPT TO.
	AtData bool
}

// Reply returns a Fault that answers code with the enhanced status code and text.
func Reply(code int, enhanced, text string) Fault {
	return Fault{Code: code, Enhanced: enhanced, Text: text}
}

// Drop returns a Fault that closes the connection without answering.
func Drop() Fault { return Fault{Drop: true} }

// Slow returns a Fault that accepts after waiting d.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// FaultFunc decides a recipient's fault. attempt counts the RCPT TO commands
// the server has seen for this address, starting at 1, so "fail twice, then
// accept" is easy to write. A nil result means no fault.
type FaultFunc func(rcpt string, attempt int) *Fault

// SMTPOption configures StartSMTP.
type SMTPOption func(*smtpConfig)

type smtpConfig struct {
	user, pass  string
	startTLS    bool
	implicitTLS bool
	faults      []FaultFunc
	okText      string
	maxBytes    int64
	certHosts   []string
	chunks      RefusedChunk
	idle        time.Duration
	idle421     bool
	noBodies    bool
}

// WithAuth makes the server offer AUTH PLAIN and refuse MAIL FROM until the
// client has authenticated with user and pass.
func WithAuth(user, pass string) SMTPOption {
	return func(c *smtpConfig) { c.user, c.pass = user, pass }
}

// WithSTARTTLS makes the server offer STARTTLS with a self-signed certificate
// for 127.0.0.1 (see SMTPServer.TLSClientConfig). With WithAuth, AUTH is then
// only offered after STARTTLS.
func WithSTARTTLS() SMTPOption {
	return func(c *smtpConfig) { c.startTLS = true }
}

// WithCertificateFor makes the TLS certificate name hosts (IP addresses
// or DNS names) instead of 127.0.0.1 and localhost: a certificate that is
// trusted but not valid for the host a client dials.
func WithCertificateFor(hosts ...string) SMTPOption {
	return func(c *smtpConfig) { c.certHosts = hosts }
}

// WithImplicitTLS makes the server speak TLS from the first byte (smtps).
func WithImplicitTLS() SMTPOption {
	return func(c *smtpConfig) { c.implicitTLS = true }
}

// WithAcceptText sets the text of the 250 reply to an accepted message; "%d"
// in it is replaced by the message's sequence number. The default
// "Ok: queued as %d" gives replies like "250 2.0.0 Ok: queued as 7".
func WithAcceptText(text string) SMTPOption {
	return func(c *smtpConfig) { c.okText = text }
}

// WithoutBodies makes the server keep each accepted message's envelope,
// time, connection and size but not its bytes (Message.Raw is nil): a long
// run of many messages (the chaos suite) without holding them all in
// memory.
func WithoutBodies() SMTPOption {
	return func(c *smtpConfig) { c.noBodies = true }
}

// FailRcpt applies f to every RCPT TO for addr (compared case-insensitively).
func FailRcpt(addr string, f Fault) SMTPOption {
	return FailFunc(func(rcpt string, _ int) *Fault {
		if strings.EqualFold(rcpt, addr) {
			return &f
		}
		return nil
	})
}

// FailRcptTimes applies f to the first n RCPT TO commands for addr, then
// accepts it.
func FailRcptTimes(addr string, n int, f Fault) SMTPOption {
	return FailFunc(func(rcpt string, attempt int) *Fault {
		if strings.EqualFold(rcpt, addr) && attempt <= n {
			return &f
		}
		return nil
	})
}

// FailFunc adds a fault rule. Rules are asked in order; the first non-nil
// Fault wins.
func FailFunc(fn FaultFunc) SMTPOption {
	return func(c *smtpConfig) { c.faults = append(c.faults, fn) }
}

// FailRandom applies f to each recipient with probability p, drawn from a
// generator seeded with seed, so a run is repeatable for the same order of
// recipients.
func FailRandom(seed uint64, p float64, f Fault) SMTPOption {
	var mu sync.Mutex
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return FailFunc(func(string, int) *Fault {
		mu.Lock()
		hit := rng.Float64() < p
		mu.Unlock()
		if hit {
			return &f
		}
		return nil
	})
}

// SMTPServer is a real SMTP server on loopback for tests. Its methods are safe
// for concurrent use.
type SMTPServer struct {
	tb       testing.TB // nil for a server from ListenSMTP
	cfg      smtpConfig
	srv      *smtp.Server
	ln       *switchListener
	addr     string
	certPool *x509.CertPool
	certDER  []byte
	served   chan struct{} // closed when Serve returns

	conns     atomic.Int64
	open      atomic.Int64
	undrained atomic.Int64
	idleDrops atomic.Int64
	hang      atomic.Pointer[chan struct{}] // non-nil while Hang is in force
	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever msgs grows
	msgs      []Message
	attempts  map[string]int
	seq       int
	live      map[*countedConn]struct{}
}

// StartSMTP starts an SMTP server on 127.0.0.1:0 and closes it when the test
// ends.
func StartSMTP(tb testing.TB, opts ...SMTPOption) *SMTPServer {
	tb.Helper()
	s, err := ListenSMTP("127.0.0.1:0", opts...)
	if err != nil {
		tb.Fatalf("testutil.StartSMTP: %v", err)
	}
	s.tb = tb
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// ListenSMTP starts the same server on addr outside a test (a fault relay
// for a chaos run, say); Close stops it. WaitFor needs a server from
// StartSMTP; the other methods work on both.
func ListenSMTP(addr string, opts ...SMTPOption) (*SMTPServer, error) {
	s := &SMTPServer{changed: make(chan struct{}), attempts: map[string]int{}, served: make(chan struct{})}
	s.cfg.okText = "Ok: queued as %d"
	for _, o := range opts {
		o(&s.cfg)
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "smtp.test.invalid"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxRecipients = 100
	srv.MaxMessageBytes = 32 << 20
	if s.cfg.maxBytes > 0 {
		srv.MaxMessageBytes = s.cfg.maxBytes
	}
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = log.New(io.Discard, "", 0)

	var tlsCfg *tls.Config
	if s.cfg.startTLS || s.cfg.implicitTLS {
		hosts := s.cfg.certHosts
		if len(hosts) == 0 {
			hosts = []string{"127.0.0.1", "localhost"}
		}
		cert, pool, err := selfSignedCert(hosts)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		s.certPool, s.certDER = pool, cert.Certificate[0]
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// AUTH over plain TCP is fine on loopback unless the test asked for TLS.
	srv.AllowInsecureAuth = !s.cfg.startTLS && !s.cfg.implicitTLS
	if s.cfg.startTLS {
		srv.TLSConfig = tlsCfg
	}
	s.srv = srv

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.ln = newSwitchListener(s, ln)
	var served net.Listener = s.ln
	if s.cfg.implicitTLS {
		served = tls.NewListener(served, tlsCfg)
	}
	go func() {
		defer close(s.served)
		_ = srv.Serve(served)
	}()
	return s, nil
}

// Close stops the server: the listener and every connection are closed.
//
// The connections' sockets are closed first and each session is left to
// end on its own goroutine: go-smtp's Server.Close ends sessions from the
// caller's goroutine, which races with a session reading a BDAT chunk
// (Conn.Close sets the chunk's pipe to nil while handleBdat copies into
// it, in v0.25.1 and v0.26.0), a data race the race detector reported in
// TestRelayStopsAnsweringMidStream.
func (s *SMTPServer) Close() error {
	// Close the listener ourselves: Serve may not have registered it yet.
	_ = s.ln.Close()
	s.DropConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		_ = s.srv.Close()
	}
	<-s.served
	return nil
}

// Addr returns the server's host:port.
func (s *SMTPServer) Addr() string { return s.addr }

// Port returns the server's TCP port.
func (s *SMTPServer) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// URL returns a relay URL for the server in the form TAYORI_SMTP_URL takes:
// smtp://127.0.0.1:PORT?tls=none, or with tls=starttls for WithSTARTTLS,
// smtps:// for WithImplicitTLS, and user:pass@ for WithAuth.
func (s *SMTPServer) URL() string {
	scheme, query := "smtp", "?tls=none"
	switch {
	case s.cfg.implicitTLS:
		scheme, query = "smtps", ""
	case s.cfg.startTLS:
		query = "?tls=starttls"
	}
	userinfo := ""
	if s.cfg.user != "" {
		userinfo = escapeUserinfo(s.cfg.user) + ":" + escapeUserinfo(s.cfg.pass) + "@"
	}
	return scheme + "://" + userinfo + s.addr + query
}

func escapeUserinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TLSClientConfig returns a client configuration that trusts the server's
// self-signed certificate (nil without TLS).
func (s *SMTPServer) TLSClientConfig() *tls.Config {
	if s.certPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.certPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// CertificatePEM returns the server's self-signed certificate in PEM form
// (nil without TLS), for a client configured with a CA file.
func (s *SMTPServer) CertificatePEM() []byte {
	if s.certDER == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.certDER})
}

// Connections returns how many connections the server has accepted so far.
func (s *SMTPServer) Connections() int { return int(s.conns.Load()) }

// OpenConnections returns how many connections are open now.
func (s *SMTPServer) OpenConnections() int { return int(s.open.Load()) }

// OpenConnectionIDs returns the numbers (Message.Conn) of the connections
// open now, in no particular order.
func (s *SMTPServer) OpenConnectionIDs() []int {
	conns := s.liveConns()
	ids := make([]int, len(conns))
	for i, c := range conns {
		ids[i] = c.id
	}
	return ids
}

// Attempts returns how many RCPT TO commands the server has seen for addr.
func (s *SMTPServer) Attempts(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[strings.ToLower(addr)]
}

// Messages returns a copy of the messages accepted so far, in order.
func (s *SMTPServer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// MessagesTo returns the accepted messages with rcpt among their recipients.
func (s *SMTPServer) MessagesTo(rcpt string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WaitFor waits until at least n messages have been accepted and returns them
// all. It fails the test (tb.Fatalf, so call it from the test goroutine) if
// they have not arrived within timeout.
func (s *SMTPServer) WaitFor(n int, timeout time.Duration) []Message {
	if s.tb == nil {
		panic("testutil: SMTPServer.WaitFor needs a server from StartSMTP")
	}
	s.tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		if got >= n {
			out := append([]Message(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			s.tb.Fatalf("testutil.SMTPServer.WaitFor: %d of %d messages after %v", got, n, timeout)
			return nil
		}
	}
}

// newSession is called per connection and again after STARTTLS, so
// connections are counted by countingListener, not here.
func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &smtpSession{srv: s, conn: c}
	if cc, ok := unwrapConn(c.Conn()).(*countedConn); ok {
		ss.id = cc.id
		cc.sess.Store(ss)
	}
	return ss, nil
}

func unwrapConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// DropConnections closes every open connection from the server side, as a
// relay does when it restarts or times out idle clients. It returns how many
// it closed.
func (s *SMTPServer) DropConnections() int {
	s.mu.Lock()
	conns := make([]*countedConn, 0, len(s.live))
	for c := range s.live {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}

func (s *SMTPServer) fault(rcpt string) *Fault {
	s.mu.Lock()
	key := strings.ToLower(rcpt)
	s.attempts[key]++
	attempt := s.attempts[key]
	s.mu.Unlock()
	for _, fn := range s.cfg.faults {
		if f := fn(rcpt, attempt); f != nil {
			return f
		}
	}
	return nil
}

func (s *SMTPServer) record(m Message) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return s.seq
}

type smtpSession struct {
	srv       *SMTPServer
	conn      *smtp.Conn
	id        int
	authed    bool
	from      string
	rcpts     []string
	dataFault *Fault
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string {
	if ss.srv.cfg.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if ss.srv.cfg.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return smtp.ErrAuthFailed
		}
		if user != ss.srv.cfg.user || pass != ss.srv.cfg.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.cfg.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	f := ss.srv.fault(to)
	if f != nil && f.AtData {
		if ss.dataFault == nil {
			ss.dataFault = f
		}
		f = nil
	}
	if err := ss.apply(f); err != nil {
		return err
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// apply carries out f; a non-nil error is the reply to give.
func (ss *smtpSession) apply(f *Fault) error {
	if f == nil {
		return nil
	}
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	if f.Drop {
		_ = ss.conn.Conn().Close()
		return errConnDropped
	}
	if f.Code == 0 {
		return nil
	}
	return faultError(f)
}

var errConnDropped = errors.New("testutil: connection dropped by fault injection")

func faultError(f *Fault) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: f.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: f.Text}
	if f.Enhanced != "" {
		parts := strings.Split(f.Enhanced, ".")
		if len(parts) == 3 {
			var ec smtp.EnhancedCode
			ok := true
			for i, p := range parts {
				v, err := strconv.Atoi(p)
				if err != nil {
					ok = false
					break
				}
				ec[i] = v
			}
			if ok {
				e.EnhancedCode = ec
			}
		}
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("injected fault %d", f.Code)
	}
	return e
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.apply(ss.dataFault); err != nil {
		return err
	}
	m := Message{
		From:     ss.from,
		To:       append([]string(nil), ss.rcpts...),
		Raw:      raw,
		Received: time.Now(),
		Conn:     ss.id,
		Remote:   unwrapConn(ss.conn.Conn()).RemoteAddr().String(),
		Size:     len(raw),
	}
	if ss.srv.cfg.noBodies {
		m.Raw = nil
	}
	seq := ss.srv.record(m)
	text := strings.Replace(ss.srv.cfg.okText, "%d", strconv.Itoa(seq), 1)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: text}
}

func (ss *smtpSession) Reset() {
	ss.from, ss.rcpts, ss.dataFault = "", nil, nil
}

func (ss *smtpSession) Logout() error { return nil }

// selfSignedCert makes an ECDSA certificate for hosts (IP addresses or DNS
// names) and a pool that trusts it.
func selfSignedCert(hosts []string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tayori test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// ---------------------------------------------------------------------------
// Checks on raw messages: the deliverability checklist, once, for every
// package's tests.

// MessageWant is what CheckMessage expects of a raw message. Zero fields are
// not compared (their format is still checked where the checklist says so).
type MessageWant struct {
	// FromEmail is the From address; its domain is the authenticated domain
	// (item 7). Required.
	FromEmail string
	// FromName is the decoded From display name (items 6, 7).
	FromName string
	// To is the recipient's address (item 1).
	To string
	// Subject is the decoded Subject (item 6).
	Subject string
	// Domain is the Message-ID right-hand side and the List-Id suffix
	// (items 2, 16); empty means the domain of FromEmail.
	Domain string
	// Now is the injected send clock; Date must lie within ±5 minutes
	// (item 3). Zero means time.Now().
	Now time.Time
	// ListID is the expected List-Id identifier without <> (item 16).
	ListID string
	// FeedbackID is the expected Feedback-ID (item 11).
	FeedbackID string
	// UnsubscribeURL is the expected one-click URL (item 12).
	UnsubscribeURL string
	// AllowHTTPUnsubscribe accepts an http:// one-click URL (local demos).
	AllowHTTPUnsubscribe bool
	// Precedence requires "Precedence: bulk" (item 10).
	Precedence bool
	// Text and HTML are the expected decoded bodies, compared with line ends
	// normalised (item 8).
	Text, HTML string
	// DKIM, when set, requires a signature that verifies against TXT
	// (items 14, 15).
	DKIM *DKIMWant
}

// DKIMWant is the public key a DKIM signature must verify against.
type DKIMWant struct {
	// Domain and Selector locate the key (selector._domainkey.domain).
	Domain, Selector string
	// TXT is the DNS TXT record value, "v=DKIM1; k=rsa; p=...".
	TXT string
}

// CheckedMessage is what CheckMessage found, for further assertions.
type CheckedMessage struct {
	Header    mail.Header
	MessageID string // with <>
	Date      time.Time
	Text      string // decoded text/plain part
	HTML      string // decoded text/html part
	// Unsubscribe lists the URIs in List-Unsubscribe, in order.
	Unsubscribe []string
	// DKIMHeaderKeys is the h= list of the verified signature (lower case).
	DKIMHeaderKeys []string
}

var (
	encodedWordRE = regexp.MustCompile(`=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=`)
	feedbackIDRE  = regexp.MustCompile(`^[^:]*:[^:]*:[^:]*:[A-Za-z0-9]{5,15}$`)
	angleURIRE    = regexp.MustCompile(`<([^>]+)>`)
)

// CheckMessage asserts deliverability checklist items 1–13 and 16 (and 14–15
// when want.DKIM is set) on raw, reporting every failure with tb.Errorf, and
// returns what it parsed. Message-ID uniqueness across copies (item 2) is for
// the caller to check with the returned MessageID.
func CheckMessage(tb testing.TB, raw []byte, want MessageWant) CheckedMessage {
	tb.Helper()
	var out CheckedMessage
	fail := func(item int, format string, args ...any) {
		tb.Helper()
		tb.Errorf("checklist %d: "+format, append([]any{item}, args...)...)
	}
	domain := want.Domain
	if domain == "" {
		domain = domainOf(want.FromEmail)
	}

	// Item 4: CRLF only, no line over 998 octets. Item 5: header lines ≤ 78.
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		fail(4, "message does not end in CRLF")
	}
	inHeader, inDKIM := true, false
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			fail(4, "line %d has %d octets (> 998)", i+1, len(line))
		}
		if bytes.ContainsAny(line, "\r\n") {
			fail(4, "line %d has a bare CR or LF", i+1)
		}
		if inHeader {
			if len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
				inDKIM = bytes.HasPrefix(bytes.ToLower(line), []byte("dkim-signature:"))
			}
			// go-msgauth writes h= as one unfoldable token (it hashes its own
			// formatting, so it cannot be re-folded afterwards): the
			// DKIM-Signature field is exempt from the SHOULD of item 5.
			if len(line) == 0 {
				inHeader = false
			} else if len(line) > 78 && !inDKIM && !unfoldable(line) {
				fail(5, "header line %d has %d octets (> 78): %.40q…", i+1, len(line), line)
			}
		}
	}

	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("CheckMessage: net/mail cannot read the message: %v", err)
	}
	h := msg.Header
	out.Header = h

	// Item 1: exactly one of each.
	for _, k := range []string{"From", "Date", "Message-Id", "Subject", "To", "Mime-Version"} {
		if n := len(h[k]); n != 1 {
			fail(1, "%s appears %d times, want 1", k, n)
		}
	}
	if v := h.Get("Mime-Version"); v != "1.0" {
		fail(1, "MIME-Version %q, want 1.0", v)
	}
	if want.To != "" {
		if a, err := mail.ParseAddress(h.Get("To")); err != nil || !strings.EqualFold(a.Address, want.To) {
			fail(1, "To %q does not parse as %s (%v)", h.Get("To"), want.To, err)
		}
	}

	// Item 2: Message-ID form on the sender's domain.
	out.MessageID = h.Get("Message-Id")
	idRE := regexp.MustCompile(`^<[^<>@\s]+@` + regexp.QuoteMeta(domain) + `>$`)
	if !idRE.MatchString(out.MessageID) {
		fail(2, "Message-ID %q does not match %s", out.MessageID, idRE)
	}

	// Item 3: Date near the send clock.
	now := want.Now
	if now.IsZero() {
		now = time.Now()
	}
	if d, err := mail.ParseDate(h.Get("Date")); err != nil {
		fail(3, "Date %q: %v", h.Get("Date"), err)
	} else {
		out.Date = d
		if diff := d.Sub(now); diff > 5*time.Minute || diff < -5*time.Minute {
			fail(3, "Date %v is %v from the send clock %v", d, diff, now)
		}
	}

	// Items 6, 7: encoded Subject and From name; From on the domain.
	rawHeader := rawHeaderField(raw)
	checkEncoded := func(name, decodedWant string) {
		tb.Helper()
		val := rawHeader(name)
		dec := new(mime.WordDecoder)
		if decodedWant != "" && !isASCII(decodedWant) {
			words := encodedWordRE.FindAllString(val, -1)
			if len(words) == 0 {
				fail(6, "%s has no RFC 2047 encoded-words: %q", name, val)
			}
			for _, w := range words {
				if len(w) > 75 {
					fail(6, "%s encoded-word of %d chars (> 75)", name, len(w))
				}
				s, err := dec.Decode(w)
				if err != nil || !utf8.ValidString(s) {
					fail(6, "%s encoded-word %q does not decode on its own to valid UTF-8 (split character?)", name, w)
				}
			}
		}
	}
	checkEncoded("Subject", want.Subject)
	dec := new(mime.WordDecoder)
	if want.Subject != "" {
		if s, err := dec.DecodeHeader(h.Get("Subject")); err != nil || s != want.Subject {
			fail(6, "Subject decodes to %q (%v), want %q", s, err, want.Subject)
		}
	}
	checkEncoded("From", want.FromName)
	if from, err := mail.ParseAddress(h.Get("From")); err != nil {
		fail(7, "From %q is not a single mailbox: %v", h.Get("From"), err)
	} else {
		if want.FromEmail != "" && !strings.EqualFold(from.Address, want.FromEmail) {
			fail(7, "From address %q, want %q", from.Address, want.FromEmail)
		}
		if want.FromName != "" && from.Name != want.FromName {
			fail(7, "From name decodes to %q, want %q", from.Name, want.FromName)
		}
	}

	// Items 8, 9: multipart/alternative, text then HTML, UTF-8, base64/QP.
	checkBody(tb, msg, raw, want, &out, fail)

	// Item 10.
	if v := h.Get("Auto-Submitted"); v != "auto-generated" {
		fail(10, "Auto-Submitted %q, want auto-generated", v)
	}
	if want.Precedence && h.Get("Precedence") != "bulk" {
		fail(10, "Precedence %q, want bulk", h.Get("Precedence"))
	}

	// Item 11.
	if n := len(h["Feedback-Id"]); n != 1 {
		fail(11, "Feedback-ID appears %d times, want 1", n)
	} else if v := h.Get("Feedback-Id"); !feedbackIDRE.MatchString(v) {
		fail(11, "Feedback-ID %q does not match %s", v, feedbackIDRE)
	} else if want.FeedbackID != "" && v != want.FeedbackID {
		fail(11, "Feedback-ID %q, want %q", v, want.FeedbackID)
	}

	// Items 12, 13.
	lu := h["List-Unsubscribe"]
	if len(lu) != 1 {
		fail(12, "List-Unsubscribe appears %d times, want 1", len(lu))
	} else {
		https := 0
		for _, m := range angleURIRE.FindAllStringSubmatch(lu[0], -1) {
			u := m[1]
			out.Unsubscribe = append(out.Unsubscribe, u)
			switch {
			case strings.HasPrefix(u, "https://"):
				https++
			case strings.HasPrefix(u, "http://") && want.AllowHTTPUnsubscribe:
				https++
			case strings.HasPrefix(u, "mailto:"):
			default:
				fail(12, "List-Unsubscribe URI %q is neither https nor mailto", u)
			}
		}
		if https != 1 {
			fail(12, "List-Unsubscribe has %d https URIs, want 1: %q", https, lu[0])
		}
		if rest := angleURIRE.ReplaceAllString(lu[0], ""); strings.Trim(rest, " ,\t") != "" {
			fail(12, "List-Unsubscribe is not a comma-separated list of <URI>: %q", lu[0])
		}
		if want.UnsubscribeURL != "" && (len(out.Unsubscribe) == 0 || out.Unsubscribe[0] != want.UnsubscribeURL) {
			fail(12, "List-Unsubscribe %q, want first URI %q", lu[0], want.UnsubscribeURL)
		}
	}
	if v := h["List-Unsubscribe-Post"]; len(v) != 1 || strings.TrimSpace(v[0]) != "List-Unsubscribe=One-Click" {
		fail(13, "List-Unsubscribe-Post %q, want exactly List-Unsubscribe=One-Click", v)
	}

	// Item 16.
	listRE := regexp.MustCompile(`<[A-Za-z0-9.-]+\.` + regexp.QuoteMeta(domain) + `>\s*$`)
	if v := h["List-Id"]; len(v) != 1 || !listRE.MatchString(v[0]) {
		fail(16, "List-Id %q does not match %s", v, listRE)
	} else if want.ListID != "" && !strings.HasSuffix(strings.TrimSpace(v[0]), "<"+want.ListID+">") {
		fail(16, "List-Id %q, want <%s>", v[0], want.ListID)
	}

	// Items 14, 15.
	if want.DKIM != nil {
		out.DKIMHeaderKeys = checkDKIM(tb, raw, *want.DKIM, domainOf(h.Get("From")), fail)
	}
	return out
}

func checkBody(tb testing.TB, msg *mail.Message, raw []byte, want MessageWant, out *CheckedMessage, fail func(int, string, ...any)) {
	tb.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		fail(8, "Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
		return
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail(8, "multipart: %v", err)
			return
		}
		pt, pp, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			fail(8, "part Content-Type %q: %v", p.Header.Get("Content-Type"), err)
			return
		}
		types = append(types, pt)
		if !strings.EqualFold(pp["charset"], "UTF-8") {
			fail(8, "part %s charset %q, want UTF-8", pt, pp["charset"])
		}
		body, err := io.ReadAll(p)
		if err != nil {
			fail(8, "part %s: %v", pt, err)
			return
		}
		var decoded []byte
		switch cte := strings.ToLower(p.Header.Get("Content-Transfer-Encoding")); cte {
		case "base64":
			decoded, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(body)))
		case "quoted-printable":
			decoded, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		default:
			fail(9, "part %s Content-Transfer-Encoding %q, want base64 or quoted-printable", pt, cte)
			continue
		}
		if err != nil {
			fail(9, "part %s does not decode: %v", pt, err)
		}
		for i, l := range bytes.Split(body, []byte("\r\n")) {
			if len(l) > 76 {
				fail(9, "part %s encoded line %d has %d chars (> 76)", pt, i+1, len(l))
				break
			}
		}
		if !utf8.Valid(decoded) {
			fail(8, "part %s is not valid UTF-8", pt)
		}
		switch pt {
		case "text/plain":
			out.Text = string(decoded)
		case "text/html":
			out.HTML = string(decoded)
		}
	}
	if len(types) != 2 || types[0] != "text/plain" || types[1] != "text/html" {
		fail(8, "parts %v, want [text/plain text/html]", types)
	}
	norm := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
	if want.Text != "" && norm(out.Text) != norm(want.Text) {
		fail(8, "text part differs from the expected text (%d vs %d bytes)", len(out.Text), len(want.Text))
	}
	if want.HTML != "" && norm(out.HTML) != norm(want.HTML) {
		fail(8, "HTML part differs from the expected HTML (%d vs %d bytes)", len(out.HTML), len(want.HTML))
	}
}

var dkimRequired = []string{"from", "to", "subject", "date", "message-id", "mime-version",
	"content-type", "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id"}

func checkDKIM(tb testing.TB, raw []byte, want DKIMWant, fromDomain string, fail func(int, string, ...any)) []string {
	tb.Helper()
	lookup := func(name string) ([]string, error) {
		if strings.EqualFold(name, want.Selector+"._domainkey."+want.Domain) {
			return []string{want.TXT}, nil
		}
		return nil, fmt.Errorf("no TXT record for %s", name)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		fail(14, "DKIM verify: %v", err)
		return nil
	}
	if len(vs) != 1 {
		fail(14, "%d DKIM signatures, want 1", len(vs))
		if len(vs) == 0 {
			return nil
		}
	}
	v := vs[0]
	if v.Err != nil {
		fail(14, "DKIM signature does not verify: %v", v.Err)
	}
	if d := strings.ToLower(v.Domain); d != fromDomain && !strings.HasSuffix(fromDomain, "."+d) {
		fail(14, "DKIM d=%s is not the From domain %s or a parent", v.Domain, fromDomain)
	}
	keys := make([]string, len(v.HeaderKeys))
	count := map[string]int{}
	for i, k := range v.HeaderKeys {
		keys[i] = strings.ToLower(strings.TrimSpace(k))
		count[keys[i]]++
	}
	for _, k := range dkimRequired {
		if count[k] == 0 {
			fail(14, "DKIM h= lacks %s: %v", k, keys)
		}
	}
	if count["from"] < 2 {
		fail(14, "DKIM h= does not oversign from: %v", keys)
	}
	return keys
}

// rawHeaderField returns a function giving a header field's raw (unfolded,
// undecoded) value from the raw message.
func rawHeaderField(raw []byte) func(name string) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(raw)
	}
	block := string(raw[:end])
	return func(name string) string {
		var val strings.Builder
		in := false
		for _, line := range strings.Split(block, "\r\n") {
			if in && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
				val.WriteString(line)
				continue
			}
			if in {
				break
			}
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.EqualFold(k, name) {
				in = true
				val.WriteString(v)
			}
		}
		return val.String()
	}
}

// unfoldable reports whether a long header line is a continuation line
// holding a single token with no whitespace to fold at (a long URL or
// token): "≤ 78 where possible" cannot be met by folding, and breaking a
// URI inside its angle brackets is worse than a long line.
func unfoldable(line []byte) bool {
	return (line[0] == ' ' || line[0] == '\t') && !bytes.ContainsAny(line[1:], " \t")
}

func domainOf(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
