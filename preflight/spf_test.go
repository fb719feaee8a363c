package preflight_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/tayori-news/tayori/preflight"
)

func TestSPF(t *testing.T) {
	ctx := context.Background()
	const from = "news.example.jp"
	tests := []struct {
		name   string
		change func(s *setup)
		domain string
		status preflight.Status
		parts  []string
	}{
		{"OK", nil, from, preflight.Pass,
			[]string{`one record "v=spf1 ip4:203.0.113.10 -all"`, "passes 203.0.113.10"}},
		{"OKBounceDomainRange", nil, "bounce." + from, preflight.Pass, []string{"passes 203.0.113.10"}},
		{"OKThroughAAndMX", func(s *setup) {
			s.r.txt[from] = []string{"v=spf1 mx a:smtp.relay.example -all"}
			s.r.mx[from] = []*net.MX{{Host: "mx.example.jp.", Pref: 10}}
			s.r.ip["mx.example.jp"] = []string{"198.51.100.7"}
		}, from, preflight.Pass, []string{"passes 203.0.113.10"}},
		{"OKNestedInclude", func(s *setup) {
			s.cfg.SPFInclude = "spf.relay.example"
			s.r.txt[from] = []string{"v=spf1 include:_spf.example.jp ~all"}
			s.r.txt["_spf.example.jp"] = []string{"v=spf1 ip4:198.51.100.1 include:SPF.relay.example -all"}
			s.r.txt["spf.relay.example"] = []string{"v=spf1 ip4:192.0.2.128/25 -all"}
		}, from, preflight.Pass, []string{"includes spf.relay.example"}},
		{"OKIncludeAndExplicitIP", func(s *setup) {
			s.cfg.SPFInclude = "spf.relay.example"
			s.cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("198.51.100.20")}
			s.r.txt[from] = []string{"v=spf1 include:spf.relay.example -all"}
			s.r.txt["spf.relay.example"] = []string{"v=spf1 ip4:198.51.100.0/24 -all"}
		}, from, preflight.Pass, []string{"includes spf.relay.example", "passes 198.51.100.20"}},
		{"ErrNoRecord", func(s *setup) { delete(s.r.txt, from) }, from, preflight.Fail,
			[]string{"found no v=spf1 record", `"v=spf1 ip4:203.0.113.10 -all"`}},
		{"ErrOnlyOtherTXT", func(s *setup) { s.r.txt[from] = []string{"v=spf10 nope", "hello"} }, from, preflight.Fail,
			[]string{"found no v=spf1 record"}},
		{"ErrTwoRecords", func(s *setup) {
			s.r.txt[from] = []string{"v=spf1 ip4:203.0.113.10 -all", "v=spf1 include:spf.relay.example -all"}
		}, from, preflight.Fail, []string{"2 v=spf1 records", "merge them"}},
		{"ErrNotAuthorised", func(s *setup) { s.r.txt[from] = []string{"v=spf1 ip4:198.51.100.1 -all"} }, from, preflight.Fail,
			[]string{"fail for 203.0.113.10", `"v=spf1 ip4:198.51.100.1 ip4:203.0.113.10 -all"`}},
		{"ErrSoftfail", func(s *setup) { s.r.txt[from] = []string{"v=spf1 ~all"} }, from, preflight.Fail,
			[]string{"softfail for 203.0.113.10"}},
		{"ErrAnyoneMaySend", func(s *setup) { s.r.txt[from] = []string{"v=spf1 ip4:203.0.113.10 +all"} }, from, preflight.Fail,
			[]string{"authorises 192.0.2.1", "remove +all"}},
		{"ErrLookupLimit", func(s *setup) {
			// Eleven includes in a chain: the probe walks all of them.
			s.r.txt[from] = []string{"v=spf1 ip4:203.0.113.10 include:i0.example.jp -all"}
			for i := range 11 {
				s.r.txt[fmt.Sprintf("i%d.example.jp", i)] = []string{fmt.Sprintf("v=spf1 include:i%d.example.jp -all", i+1)}
			}
			s.r.txt["i11.example.jp"] = []string{"v=spf1 -all"}
		}, from, preflight.Fail, []string{"permerror", "lookup limit", "10 DNS lookups"}},
		{"ErrIncludeWithoutRecord", func(s *setup) {
			s.r.txt[from] = []string{"v=spf1 include:gone.example.jp ip4:203.0.113.10 -all"}
		}, from, preflight.Fail, []string{"permerror"}},
		{"ErrMissingInclude", func(s *setup) { s.cfg.SPFInclude = "amazonses.com" }, from, preflight.Fail,
			[]string{"does not include amazonses.com", `"v=spf1 ip4:203.0.113.10 include:amazonses.com -all"`}},
		{"ErrLookupFails", func(s *setup) { s.r.fail[from] = true }, from, preflight.Fail,
			[]string{"a failed lookup", "server misbehaving"}},
		{"ErrLoopbackRelay", func(s *setup) { s.cfg.Relay.Host = "127.0.0.1" }, from, preflight.Fail,
			[]string{"127.0.0.1, not a public address", "--sending-ip"}},
		{"ErrRelayUnresolvable", func(s *setup) { s.cfg.Relay.Host = "nowhere.example" }, from, preflight.Fail,
			[]string{"relay host nowhere.example", "--sending-ip"}},
		{"ErrOneOfTwoIPs", func(s *setup) {
			s.cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8::25")}
		}, from, preflight.Fail, []string{"fail for 2001:db8::25", "ip6:2001:db8::25"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy(t)
			if tt.change != nil {
				tt.change(s)
			}
			r := s.checker(t).SPF(ctx, tt.domain)
			t.Log(r)
			want(t, r, tt.status, tt.parts...)
		})
	}
}
