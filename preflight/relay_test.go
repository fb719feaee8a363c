package preflight_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

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
	srv := testutil.StartSMTP(t, testutil.WithSTARTTLS(), testutil.WithCertificateFor("mail.example.jp"))
	s := healthy(t)
	rc, err := mailer.ParseSMTPURL("smtp://localhost:" + strconv.Itoa(srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Relay, s.cfg.RootCAs = rc, srv.TLSClientConfig().RootCAs
	r := s.checker(t).RelayTLS(context.Background())
	t.Log(r)
	want(t, r, preflight.Fail,
		"certificate that does not verify", "valid for mail.example.jp, not localhost")
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("preflight sent %d messages; it must send none", n)
	}
}
