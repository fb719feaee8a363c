package preflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/tayori-news/tayori/mailer"
)

// RelayTLS connects to the relay and checks that it protects the
// connection with TLS and a certificate valid for its host name (verified
// against Config.RootCAs or the system's roots): implicit TLS for
// tls=implicit (smtps://), else STARTTLS offered in the EHLO reply. It
// also fails when the relay offers STARTTLS but TAYORI_SMTP_URL's tls=none
// or tls=opportunistic lets Tayori send in clear. It says EHLO and QUIT,
// and never sends mail or credentials; the whole conversation is bounded
// by Config.Timeout.
func (c *Checker) RelayTLS(ctx context.Context) Result {
	rc := c.cfg.Relay
	subject := rc.Addr()
	fail := func(found, expected, fix string) Result {
		return Result{Check: CheckRelayTLS, Subject: subject, Status: Fail, Found: found, Expected: expected, Fix: fix}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", rc.Addr())
	if err != nil {
		return fail(fmt.Sprintf("no connection (%v)", timeoutText(ctx, c.cfg.Timeout, err)), "an SMTP relay listening at "+subject,
			"check the host and port in TAYORI_SMTP_URL, and that the relay accepts connections from this machine")
	}
	defer conn.Close()
	// net/smtp has no context: expire the connection when ctx ends.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tlsCfg := &tls.Config{ServerName: rc.Host, RootCAs: c.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	certFix := "install a certificate for " + rc.Host + " from a public CA on the relay, or name the relay in TAYORI_SMTP_URL by the host its certificate is for"
	if rc.TLS == mailer.TLSImplicit {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			if isCertError(err) {
				return fail("implicit TLS with a certificate that does not verify ("+err.Error()+")",
					"a certificate valid for "+rc.Host, certFix)
			}
			return fail(fmt.Sprintf("no TLS handshake (%v)", timeoutText(ctx, c.cfg.Timeout, err)), "implicit TLS from the first byte (smtps://)",
				"if the relay expects STARTTLS on this port, use smtp://"+subject+" instead of smtps://")
		}
		client, err := smtp.NewClient(tc, rc.Host)
		if err != nil {
			return fail(fmt.Sprintf("no SMTP greeting over TLS (%v)", timeoutText(ctx, c.cfg.Timeout, err)), "a 220 greeting", "check that "+subject+" is an SMTP relay")
		}
		defer client.Close()
		if err := client.Hello(c.cfg.HelloName); err != nil {
			return fail(fmt.Sprintf("EHLO refused (%v)", err), "a 250 reply to EHLO", "check the relay's logs")
		}
		_ = client.Quit()
		return Result{Check: CheckRelayTLS, Subject: subject, Status: Pass, Found: "implicit TLS, " + tlsDesc(tc.ConnectionState())}
	}

	client, err := smtp.NewClient(conn, rc.Host)
	if err != nil {
		fix := "check that " + subject + " is an SMTP relay"
		if rc.Port == mailer.DefaultPortSMTPS {
			fix = "port 465 usually speaks implicit TLS: use smtps://" + subject + " in TAYORI_SMTP_URL"
		}
		return fail(fmt.Sprintf("no SMTP greeting (%v)", timeoutText(ctx, c.cfg.Timeout, err)), "a 220 greeting", fix)
	}
	defer client.Close()
	if err := client.Hello(c.cfg.HelloName); err != nil {
		return fail(fmt.Sprintf("EHLO refused (%v)", err), "a 250 reply to EHLO", "check the relay's logs")
	}
	if ok, _ := client.Extension("STARTTLS"); !ok {
		return fail("no STARTTLS in the relay's EHLO reply", "STARTTLS offered, so mail and credentials cross the network encrypted",
			"enable STARTTLS on the relay, or use its implicit-TLS port with smtps://")
	}
	if err := client.StartTLS(tlsCfg); err != nil {
		if isCertError(err) {
			return fail("STARTTLS with a certificate that does not verify ("+err.Error()+")", "a certificate valid for "+rc.Host, certFix)
		}
		return fail(fmt.Sprintf("STARTTLS offered but failing (%v)", timeoutText(ctx, c.cfg.Timeout, err)), "a completed TLS handshake", "check the relay's TLS configuration and logs")
	}
	state, _ := client.TLSConnectionState()
	_ = client.Quit()
	if rc.TLS == mailer.TLSNone || rc.TLS == mailer.TLSOpportunistic {
		return fail(fmt.Sprintf("STARTTLS offered (%s), but TAYORI_SMTP_URL has tls=%s, so Tayori sends in clear when STARTTLS is missing or stripped", tlsDesc(state), rc.TLS),
			"tls=starttls", "remove tls="+rc.TLS.String()+" from TAYORI_SMTP_URL (STARTTLS is the default), or set tls=starttls")
	}
	return Result{Check: CheckRelayTLS, Subject: subject, Status: Pass, Found: "STARTTLS, " + tlsDesc(state)}
}

func tlsDesc(st tls.ConnectionState) string {
	s := tls.VersionName(st.Version)
	if len(st.PeerCertificates) > 0 {
		cert := st.PeerCertificates[0]
		names := cert.DNSNames
		for _, ip := range cert.IPAddresses {
			names = append(names, ip.String())
		}
		s += fmt.Sprintf(", certificate for %s valid until %s", strings.Join(names, ", "), cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return s
}

func isCertError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve)
}

// timeoutText names the timeout when ctx's deadline caused err.
func timeoutText(ctx context.Context, d time.Duration, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("no answer within %s", d)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
