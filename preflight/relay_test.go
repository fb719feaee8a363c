package preflight_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

// relayChecker returns a Checker for the relay URL whose certificate is
// checked against roots (the test server's when trust is true).
func relayChecker(t *testing.T, url string, srv *testutil.SMTPServer, trust bool, timeout time.Duration) *preflight.Checker {
	t.Helper()
	rc, err := mailer.ParseSMTPURL(url)
	if err != nil {
		t.Fatal(err)
	}
	s := healthy(t)
	s.cfg.Relay = rc
	s.cfg.Timeout = timeout
	if trust && srv != nil {
		s.cfg.RootCAs = srv.TLSClientConfig().RootCAs
	}
	return s.checker(t)
}

func TestRelayTLS(t *testing.T) {
	ctx := context.Background()
	starttls := testutil.StartSMTP(t, testutil.WithSTARTTLS())
	implicit := testutil.StartSMTP(t, testutil.WithImplicitTLS())
	plain := testutil.StartSMTP(t)
	// A server that accepts connections and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name   string
		url    string
		srv    *testutil.SMTPServer
		trust  bool
		status preflight.Status
		parts  []string
	}{
		{"OKStartTLS", "smtp://" + starttls.Addr(), starttls, true, preflight.Pass,
			[]string{"STARTTLS, TLS 1.3, certificate for localhost, 127.0.0.1 valid until"}},
		{"OKImplicit", implicit.URL(), implicit, true, preflight.Pass, []string{"implicit TLS, TLS 1.3"}},
		{"ErrNoSTARTTLS", "smtp://" + plain.Addr(), plain, false, preflight.Fail,
			[]string{"no STARTTLS in the relay's EHLO reply", "enable STARTTLS"}},
		{"ErrUntrustedCertificate", "smtp://" + starttls.Addr(), starttls, false, preflight.Fail,
			[]string{"certificate that does not verify", "unknown authority", "install a certificate for 127.0.0.1"}},
		{"ErrImplicitCertificate", implicit.URL(), implicit, false, preflight.Fail,
			[]string{"implicit TLS with a certificate that does not verify"}},
		{"ErrTLSNoneWouldSendInClear", "smtp://" + starttls.Addr() + "?tls=none", starttls, true, preflight.Fail,
			[]string{"STARTTLS offered (TLS 1.3", "tls=none, so Tayori sends in clear", "remove tls=none"}},
		{"ErrOpportunistic", "smtp://" + starttls.Addr() + "?tls=opportunistic", starttls, true, preflight.Fail,
			[]string{"tls=opportunistic"}},
		{"ErrImplicitAgainstPlainServer", "smtps://" + plain.Addr(), plain, false, preflight.Fail,
			[]string{"no TLS handshake", "use smtp://"}},
		{"ErrSilentServer", "smtp://" + silent.Addr().String(), nil, false, preflight.Fail,
			[]string{"no SMTP greeting (no answer within 300ms)"}},
		{"ErrNoListener", "smtp://" + closedAddr, nil, false, preflight.Fail,
			[]string{"no connection", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := relayChecker(t, tt.url, tt.srv, tt.trust, 300*time.Millisecond).RelayTLS(ctx)
			t.Log(r)
			want(t, r, tt.status, tt.parts...)
		})
	}
	if n := len(starttls.Messages()) + len(implicit.Messages()) + len(plain.Messages()); n != 0 {
		t.Errorf("preflight sent %d messages; it must send none", n)
	}
}

// TestRelayTLSCertificateForOtherName uses a certificate that names
// mail.example.jp only, trusted, served at localhost: valid, but not for
// the host Tayori connects to.
func TestRelayTLSCertificateForOtherName(t *testing.T) {
	cert, pool := certFor(t, "mail.example.jp")
	addr := startTLSRelay(t, cert)
	s := healthy(t)
	_, port, _ := net.SplitHostPort(addr)
	rc, err := mailer.ParseSMTPURL("smtp://localhost:" + port)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Relay, s.cfg.RootCAs = rc, pool
	r := s.checker(t).RelayTLS(context.Background())
	t.Log(r)
	want(t, r, preflight.Fail,
		"certificate that does not verify", "valid for mail.example.jp, not localhost")
}

// certFor returns a self-signed certificate for the DNS names and a pool
// that trusts it.
func certFor(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startTLSRelay serves SMTP with STARTTLS and cert on 127.0.0.1 until the
// test ends, refusing every message.
func startTLSRelay(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return refuser{}, nil }))
	srv.Domain = "relay.test.invalid"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	return testutil.ServeSMTP(t, srv)
}

// TestRelayTLSClosedWithoutGreeting: a server that hangs up at once. (The
// hint for port 465, "use smtps://", needs a listener on port 465 and is
// not tested.)
func TestRelayTLSClosedWithoutGreeting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close() // no greeting
		}
	}()
	r := relayChecker(t, "smtp://"+ln.Addr().String(), nil, false, time.Second).RelayTLS(context.Background())
	want(t, r, preflight.Fail, "no SMTP greeting", "check that "+ln.Addr().String()+" is an SMTP relay")
}

// refuser is an SMTP session that refuses every message.
type refuser struct{}

func (refuser) Mail(string, *smtp.MailOptions) error { return errors.New("no mail here") }
func (refuser) Rcpt(string, *smtp.RcptOptions) error { return errors.New("no mail here") }
func (refuser) Data(io.Reader) error                 { return errors.New("no mail here") }
func (refuser) Reset()                               {}
func (refuser) Logout() error                        { return nil }
