package dnstest_test

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/tayori-news/tayori/preflight/dnstest"
)

func TestServer(t *testing.T) {
	long := `big.example.jp. 300 IN TXT "` + strings.Repeat("x", 255) + `" "` + strings.Repeat("y", 255) + `" "` + strings.Repeat("z", 255) + `"`
	s := dnstest.Start(t,
		"example.jp. 300 IN SOA ns1.example.jp. hostmaster.example.jp. 1 7200 3600 1209600 300",
		"a.b.example.jp. 300 IN A 192.0.2.1",
		long)
	s.Fail("broken.example.jp", dns.RcodeServerFailure)
	ask := func(net, name string, qtype uint16) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		r, _, err := (&dns.Client{Net: net}).Exchange(q, s.Addr())
		if err != nil {
			t.Fatalf("%s %s: %v", net, name, err)
		}
		return r
	}
	if r := ask("udp", "A.B.example.jp.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("A (case-insensitive): %v", r)
	}
	if r := ask("udp", "a.b.example.jp.", dns.TypeTXT); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("NODATA with the zone's SOA: %v", r)
	}
	if r := ask("udp", "b.example.jp.", dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("empty non-terminal: %v", r)
	}
	if r := ask("udp", "c.example.jp.", dns.TypeA); r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
		t.Errorf("NXDOMAIN with the zone's SOA: %v", r)
	}
	if r := ask("udp", "broken.example.jp.", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("Fail: %v", r)
	}
	if r := ask("udp", "big.example.jp.", dns.TypeTXT); !r.Truncated {
		t.Errorf("a TXT over 512 bytes without EDNS0 is not truncated over UDP")
	}
	if r := ask("tcp", "big.example.jp.", dns.TypeTXT); r.Truncated || len(r.Answer) != 1 {
		t.Errorf("over TCP: %v", r)
	}
	if udp, tcp := s.Queries(); udp != 6 || tcp != 1 {
		t.Errorf("Queries() = %d, %d; want 6, 1", udp, tcp)
	}
}
