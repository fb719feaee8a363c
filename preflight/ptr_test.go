package preflight_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/tayori-news/tayori/preflight"
)

func TestPTR(t *testing.T) {
	ctx := context.Background()
	type res struct {
		status preflight.Status
		parts  []string
	}
	tests := []struct {
		name   string
		change func(s *setup)
		want   []res
	}{
		{"OK", nil, []res{{preflight.Pass, []string{"203.0.113.10: PTR mail.news.example.jp, which resolves back to 203.0.113.10"}}}},
		{"OKSecondNameConfirms", func(s *setup) {
			s.r.ptr["203.0.113.10"] = []string{"203-0-113-10.isp.example.", "mail.news.example.jp."}
		}, []res{{preflight.Pass, []string{"PTR mail.news.example.jp"}}}},
		{"OKExplicitIPv6", func(s *setup) {
			s.cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("2001:db8::25")}
			s.r.ptr["2001:db8::25"] = []string{"mail6.news.example.jp."}
			s.r.ip["mail6.news.example.jp"] = []string{"2001:db8::25"}
		}, []res{{preflight.Pass, []string{"2001:db8::25: PTR mail6.news.example.jp"}}}},
		{"ErrNoPTR", func(s *setup) { delete(s.r.ptr, "203.0.113.10") },
			[]res{{preflight.Fail, []string{"found no PTR record", "reverse DNS", "mail.news.example.jp"}}}},
		{"ErrNotForwardConfirmed", func(s *setup) { s.r.ip["mail.news.example.jp"] = []string{"203.0.113.99"} },
			[]res{{preflight.Fail, []string{"PTR mail.news.example.jp (resolves to 203.0.113.99), none back to 203.0.113.10"}}}},
		{"ErrPTRNameDoesNotResolve", func(s *setup) { delete(s.r.ip, "mail.news.example.jp") },
			[]res{{preflight.Fail, []string{"mail.news.example.jp (no record at mail.news.example.jp)"}}}},
		{"ErrLookupFails", func(s *setup) { s.r.fail["203.0.113.10"] = true },
			[]res{{preflight.Fail, []string{"a failed lookup"}}}},
		{"ErrLoopbackRelay", func(s *setup) { s.cfg.Relay.Host = "::1" },
			[]res{{preflight.Fail, []string{"the relay at ::1, not a public address", "--sending-ip"}}}},
		{"ErrPrivateRelayAddress", func(s *setup) { s.r.ip["smtp.relay.example"] = []string{"10.1.2.3"} },
			[]res{{preflight.Fail, []string{"the relay smtp.relay.example at 10.1.2.3, not a public address"}}}},
		{"ErrRelayUnresolvable", func(s *setup) { delete(s.r.ip, "smtp.relay.example") },
			[]res{{preflight.Fail, []string{"relay host smtp.relay.example"}}}},
		{"OneOfTwo", func(s *setup) { s.r.ip["smtp.relay.example"] = []string{"203.0.113.10", "203.0.113.11"} },
			[]res{{preflight.Pass, []string{"203.0.113.10"}}, {preflight.Fail, []string{"203.0.113.11: found no PTR record"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy(t)
			if tt.change != nil {
				tt.change(s)
			}
			got := s.checker(t).PTR(ctx)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results, want %d: %v", len(got), len(tt.want), got)
			}
			for i, r := range got {
				t.Log(r)
				want(t, r, tt.want[i].status, tt.want[i].parts...)
			}
		})
	}
}

func TestSOA(t *testing.T) {
	ctx := context.Background()
	s := healthy(t)
	s.r.soa["example.jp"] = preflight.SOA{Zone: "example.jp", NS: "ns1.example.jp.", Serial: 7}
	s.r.fail["broken.example.jp"] = true
	c := s.checker(t)
	want(t, c.SOA(ctx, "example.jp"), preflight.Pass, "example.jp: zone apex, SOA ns1.example.jp. serial 7")
	want(t, c.SOA(ctx, "news.example.jp"), preflight.Pass, "news.example.jp: in zone example.jp, SOA ns1.example.jp.")
	want(t, c.SOA(ctx, "gone.example.jp"), preflight.Fail, "NXDOMAIN", "gone.example.jp does not exist", "publish a record at gone.example.jp")
	want(t, c.SOA(ctx, "broken.example.jp"), preflight.Fail, "a failed lookup")
}
