package preflight_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
	"github.com/tayori-news/tayori/preflight/dnstest"
)

// zone is example.jp as a DNS server would serve it, with a TXT record too
// long for one UDP answer.
func zone(t *testing.T) *dnstest.Server {
	t.Helper()
	long := `long.example.jp. 300 IN TXT "` + strings.Repeat("a", 255) + `"` + strings.Repeat(` "`+strings.Repeat("b", 255)+`"`, 5)
	return dnstest.Start(t,
		"example.jp. 300 IN SOA ns1.example.jp. hostmaster.example.jp. 2026010101 7200 3600 1209600 300",
		`news.example.jp. 300 IN TXT "v=spf1 ip4:203.0.113.10 " "-all"`,
		`news.example.jp. 300 IN TXT "google-site-verification=abc"`,
		"news.example.jp. 300 IN MX 10 mx.example.jp.",
		"mail.news.example.jp. 300 IN A 203.0.113.10",
		"mail.news.example.jp. 300 IN AAAA 2001:db8::25",
		"10.113.0.203.in-addr.arpa. 300 IN PTR mail.news.example.jp.",
		"5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 300 IN PTR mail.news.example.jp.",
		long,
	)
}

func TestDNSResolver(t *testing.T) {
	ctx := context.Background()
	srv := zone(t)
	r, err := preflight.NewDNSResolver([]string{srv.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}

	txt, err := r.LookupTXT(ctx, "NEWS.example.jp")
	if err != nil || !slices.Contains(txt, "v=spf1 ip4:203.0.113.10 -all") || len(txt) != 2 {
		t.Errorf("TXT = %q, %v; want the SPF record's strings joined, and the other record", txt, err)
	}
	ips, err := r.LookupIPAddr(ctx, "mail.news.example.jp")
	if err != nil || len(ips) != 2 || ips[0].String() != "203.0.113.10" || ips[1].String() != "2001:db8::25" {
		t.Errorf("IPs = %v, %v", ips, err)
	}
	for _, ip := range []string{"203.0.113.10", "2001:db8::25"} {
		if names, err := r.LookupAddr(ctx, ip); err != nil || len(names) != 1 || names[0] != "mail.news.example.jp." {
			t.Errorf("PTR %s = %v, %v", ip, names, err)
		}
	}
	if mx, err := r.LookupMX(ctx, "news.example.jp"); err != nil || len(mx) != 1 || mx[0].Host != "mx.example.jp." || mx[0].Pref != 10 {
		t.Errorf("MX = %v, %v", mx, err)
	}
	if soa, err := r.LookupSOA(ctx, "example.jp"); err != nil || soa.Zone != "example.jp" || soa.Serial != 2026010101 || soa.NS != "ns1.example.jp." {
		t.Errorf("SOA apex = %+v, %v", soa, err)
	}
	if soa, err := r.LookupSOA(ctx, "news.example.jp"); err != nil || soa.Zone != "example.jp" {
		t.Errorf("SOA inside the zone = %+v, %v; want the zone's, from the authority section", soa, err)
	}
	if soa, err := r.LookupSOA(ctx, "example.jp."); err != nil || soa.Zone != "example.jp" {
		t.Errorf("SOA with trailing dot = %+v, %v", soa, err)
	}

	_, tcpBefore := srv.Queries()
	if txt, err := r.LookupTXT(ctx, "long.example.jp"); err != nil || len(txt) != 1 || len(txt[0]) != 6*255 {
		t.Errorf("long TXT: %d records, %v", len(txt), err)
	}
	if _, tcp := srv.Queries(); tcp != tcpBefore+1 {
		t.Errorf("long TXT: %d TCP queries, want the truncated UDP answer retried over TCP once", tcp-tcpBefore)
	}

	for _, q := range []struct {
		what string
		fn   func() error
	}{
		{"TXT NXDOMAIN", func() error { _, err := r.LookupTXT(ctx, "nope.example.jp"); return err }},
		{"TXT NODATA", func() error { _, err := r.LookupTXT(ctx, "mail.news.example.jp"); return err }},
		{"A NODATA", func() error { _, err := r.LookupIPAddr(ctx, "news.example.jp"); return err }},
		{"PTR NXDOMAIN", func() error { _, err := r.LookupAddr(ctx, "198.51.100.1"); return err }},
		{"SOA NXDOMAIN", func() error { _, err := r.LookupSOA(ctx, "nope.news.example.jp"); return err }},
	} {
		var de *net.DNSError
		if err := q.fn(); !errors.As(err, &de) || !de.IsNotFound || de.IsTemporary {
			t.Errorf("%s: %v, want a *net.DNSError with IsNotFound", q.what, err)
		}
	}
	// An empty non-terminal exists: the SOA check passes for it.
	if soa, err := r.LookupSOA(ctx, "news.example.jp"); err != nil || soa.Zone != "example.jp" {
		t.Errorf("SOA: %+v, %v", soa, err)
	}
}

func TestDNSResolverFailures(t *testing.T) {
	ctx := context.Background()
	bad, good := zone(t), zone(t)
	bad.Fail("news.example.jp", dns.RcodeServerFailure)

	r, _ := preflight.NewDNSResolver([]string{bad.Addr()}, time.Second)
	var de *net.DNSError
	_, err := r.LookupTXT(ctx, "news.example.jp")
	if !errors.As(err, &de) || !de.IsTemporary || de.IsNotFound || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("SERVFAIL: %v, want a temporary *net.DNSError", err)
	}

	r, _ = preflight.NewDNSResolver([]string{bad.Addr(), good.Addr()}, time.Second)
	if txt, err := r.LookupTXT(ctx, "news.example.jp"); err != nil || len(txt) != 2 {
		t.Errorf("second server: %q, %v; want its answer after the first failed", txt, err)
	}

	// A server that never answers.
	mute, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	r, _ = preflight.NewDNSResolver([]string{mute.LocalAddr().String()}, 100*time.Millisecond)
	start := time.Now()
	if _, err := r.LookupTXT(ctx, "news.example.jp"); !errors.As(err, &de) || !de.IsTemporary {
		t.Errorf("mute server: %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("mute server: took %s with a 100ms timeout", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.LookupTXT(cctx, "news.example.jp"); !errors.As(err, &de) || !de.IsTemporary {
		t.Errorf("cancelled: %v, want a temporary error", err)
	}

	if _, err := preflight.NewDNSResolver(nil, 0); err == nil {
		t.Error("NewDNSResolver without servers: no error")
	}
	if r, err := preflight.NewDNSResolver([]string{"192.0.2.53", "[2001:db8::53]"}, 0); err != nil ||
		!slices.Equal(r.Servers(), []string{"192.0.2.53:53", "[2001:db8::53]:53"}) {
		t.Errorf("default port: %v, %v", r.Servers(), err)
	}
}

// TestCheckerOverDNS runs the DNS checks through DNSResolver against the
// loopback server, so blitiri.com.ar/go/spf sees real DNS errors (a void
// lookup, a missing include).
func TestCheckerOverDNS(t *testing.T) {
	ctx := context.Background()
	srv := zone(t)
	s := healthy(t)
	dkimTXT := s.r.txt["nl._domainkey.news.example.jp"][0]
	srv.Add(t,
		`bounce.news.example.jp. 300 IN TXT "v=spf1 a:mail.news.example.jp include:missing.example.jp -all"`,
		`nl._domainkey.news.example.jp. 300 IN TXT "`+dkimTXT+`"`,
		`_dmarc.example.jp. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.jp"`,
	)
	r, err := preflight.NewDNSResolver([]string{srv.Addr()}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Skip = []string{preflight.CheckRelayTLS}
	s.cfg.Relay = mailer.RelayConfig{Host: "mail.news.example.jp", Port: 587}
	s.cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("203.0.113.10")}
	c, err := preflight.New(s.cfg, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := c.Run(ctx)
	var lines []string
	for _, res := range rep.Results {
		lines = append(lines, res.String())
	}
	got := strings.Join(lines, "\n")
	t.Log("\n" + got)
	for _, line := range []string{
		"PASS spf news.example.jp:",
		"FAIL spf bounce.news.example.jp: found \"v=spf1 a:mail.news.example.jp include:missing.example.jp -all\", which evaluates to permerror",
		"PASS dkim nl._domainkey.news.example.jp:",
		"PASS dmarc news.example.jp: \"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.jp\" at _dmarc.example.jp (organisational domain",
		"PASS ptr 203.0.113.10: PTR mail.news.example.jp",
		"PASS soa news.example.jp: in zone example.jp",
		"PASS soa bounce.news.example.jp: in zone example.jp",
		"SKIP relay-tls",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("report lacks %q", line)
		}
	}
	want(t, c.SOA(ctx, "nope.news.example.jp"), preflight.Fail, "found no such name (NXDOMAIN)")
}
