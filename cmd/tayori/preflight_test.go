package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight/dnstest"
)

// preflightZone serves a healthy DNS setup for news.example.jp on loopback:
// SPF on the From and bounce domains, the DKIM key, DMARC, PTR for
// 203.0.113.10 and the example.jp zone's SOA.
func preflightZone(t *testing.T, dkimTXT string) *dnstest.Server {
	t.Helper()
	return dnstest.Start(t,
		"example.jp. 300 IN SOA ns1.example.jp. hostmaster.example.jp. 2026010101 7200 3600 1209600 300",
		`news.example.jp. 300 IN TXT "v=spf1 ip4:203.0.113.10 -all"`,
		`bounce.news.example.jp. 300 IN TXT "v=spf1 ip4:203.0.113.10 -all"`,
		`nl._domainkey.news.example.jp. 300 IN TXT "`+dkimTXT+`"`,
		`_dmarc.news.example.jp. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@news.example.jp"`,
		"10.113.0.203.in-addr.arpa. 300 IN PTR mail.news.example.jp.",
		"mail.news.example.jp. 300 IN A 203.0.113.10",
	)
}

// dkimKeyFile writes a fresh Ed25519 key as PKCS#8 PEM and returns its path
// and the TXT record to publish.
func dkimKeyFile(t *testing.T) (string, string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	txt, err := mailer.DKIMPublicKeyTXT(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return path, txt
}

// startTLSRelayWithCA starts an SMTP server with STARTTLS on 127.0.0.1
// and returns it with a PEM file of its certificate for --relay-ca.
func startTLSRelayWithCA(t *testing.T) (*testutil.SMTPServer, string) {
	t.Helper()
	srv := testutil.StartSMTP(t, testutil.WithSTARTTLS())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func TestPreflightPasses(t *testing.T) {
	keyFile, txt := dkimKeyFile(t)
	zone := preflightZone(t, txt)
	srv, ca := startTLSRelayWithCA(t)
	relay := srv.Addr()
	getenv := testEnv(t, "TAYORI_SMTP_URL", "smtp://"+relay,
		"TAYORI_DKIM_DOMAIN", "news.example.jp", "TAYORI_DKIM_SELECTOR", "nl", "TAYORI_DKIM_KEY_FILE", keyFile)

	stdout, stderr, err := runCLI(t, getenv, "preflight", "--dns-server", zone.Addr(), "--relay-ca", ca,
		"--sending-ip", "203.0.113.10", "--timeout", "5s")
	if err != nil {
		t.Fatalf("preflight: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	want := []string{
		"PASS spf news.example.jp: ", "PASS spf bounce.news.example.jp: ", "PASS dkim nl._domainkey.news.example.jp: ",
		"PASS dmarc news.example.jp: ", "PASS ptr 203.0.113.10: ", "PASS soa news.example.jp: in zone example.jp",
		"PASS soa bounce.news.example.jp: ", "PASS relay-tls " + relay + ": STARTTLS",
		"preflight: 8 passed, 0 failed, 0 skipped",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i+1, lines[i], w)
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("preflight sent %d messages; it must send none", n)
	}
}

func TestPreflightFails(t *testing.T) {
	zone := preflightZone(t, "v=DKIM1; k=ed25519; p=")
	plain := testutil.StartSMTP(t) // no STARTTLS
	getenv := testEnv(t, "TAYORI_SMTP_URL", plain.URL())

	stdout, _, err := runCLI(t, getenv, "preflight", "--dns-server", zone.Addr(), "--timeout", "5s",
		"--bounce-domain", "bounces.example.jp", "--skip", "dmarc")
	if !errors.Is(err, errSilent) || exitCode(err) != 1 {
		t.Fatalf("preflight: error %v, want errSilent (exit 1)\n%s", err, stdout)
	}
	for _, w := range []string{
		// The relay is on loopback and no --sending-ip was given.
		"FAIL spf news.example.jp: found the relay at 127.0.0.1, not a public address",
		"FAIL spf bounces.example.jp: found no v=spf1 record; expected exactly one TXT record starting with v=spf1",
		"SKIP dkim news.example.jp: DKIM signing is not configured",
		"SKIP dmarc -: skipped on request (--skip dmarc)",
		"FAIL ptr 127.0.0.1: found the relay at 127.0.0.1, not a public address",
		"; fix: give them with --sending-ip",
		"PASS soa news.example.jp: in zone example.jp",
		"FAIL soa bounces.example.jp: found no such name (NXDOMAIN)",
		"FAIL relay-tls " + plain.Addr() + ": found no STARTTLS in the relay's EHLO reply",
		"preflight: 1 passed, 5 failed, 2 skipped",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if n := len(plain.Messages()); n != 0 {
		t.Errorf("preflight sent %d messages", n)
	}
}

func TestPreflightIDNFromDomain(t *testing.T) {
	zone := dnstest.Start(t, "example.jp. 300 IN SOA ns1.example.jp. hostmaster.example.jp. 1 7200 3600 1209600 300",
		`xn--zck9awe6d.example.jp. 300 IN TXT "v=spf1 ip4:203.0.113.10 -all"`)
	getenv := testEnv(t, "TAYORI_FROM", "便り <news@ニュース.example.jp>")
	stdout, _, err := runCLI(t, getenv, "preflight", "--dns-server", zone.Addr(), "--sending-ip", "203.0.113.10",
		"--skip", "dkim,dmarc,ptr,relay-tls")
	if !errors.Is(err, errSilent) {
		t.Fatalf("preflight: %v\n%s", err, stdout)
	}
	for _, w := range []string{"PASS spf xn--zck9awe6d.example.jp: ", "PASS soa xn--zck9awe6d.example.jp: ",
		"FAIL soa bounce.xn--zck9awe6d.example.jp: "} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
}

func TestPreflightBadFlags(t *testing.T) {
	getenv := testEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--sending-ip", "mail.example.jp"}, `--sending-ip "mail.example.jp": not an IP address`},
		{[]string{"--skip", "mx"}, `unknown check "mx"`},
		{[]string{"--relay-ca", "/nonexistent/ca.pem"}, "--relay-ca: open /nonexistent/ca.pem"},
		{[]string{"--bounce-domain", "a..b"}, `bounce domain "a..b" is not a domain name`},
	} {
		_, _, err := runCLI(t, getenv, append([]string{"preflight", "--dns-server", "127.0.0.1:1"}, tt.args...)...)
		if err == nil || errors.Is(err, errSilent) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}
