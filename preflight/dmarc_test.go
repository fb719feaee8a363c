package preflight_test

import (
	"context"
	"testing"

	"github.com/tayori-news/tayori/preflight"
)

func TestDMARC(t *testing.T) {
	ctx := context.Background()
	const own, org = "_dmarc.news.example.jp", "_dmarc.example.jp"
	tests := []struct {
		name   string
		change func(s *setup)
		status preflight.Status
		parts  []string
	}{
		{"OK", nil, preflight.Pass, []string{"at " + own + ": p=none", "reports to dmarc@news.example.jp"}},
		{"OKQuarantineWithSizeAndTwoAddresses", func(s *setup) {
			s.r.txt[own] = []string{"v=DMARC1;p=quarantine; rua=mailto:a@example.jp!10m, mailto:b@news.example.jp; pct=100"}
		}, preflight.Pass, []string{"p=quarantine", "a@example.jp!10m, b@news.example.jp"}},
		{"OKOrganisationalDomain", func(s *setup) {
			delete(s.r.txt, own)
			s.r.txt[org] = []string{"v=DMARC1; p=none; sp=reject; rua=mailto:d@example.jp"}
		}, preflight.Pass, []string{"at " + org + " (organisational domain; sp= applies to news.example.jp): sp=reject"}},
		{"OKOrganisationalDomainWithoutSP", func(s *setup) {
			delete(s.r.txt, own)
			s.r.txt[org] = []string{"v=DMARC1; p=reject; rua=mailto:d@example.jp"}
		}, preflight.Pass, []string{"p=reject"}},
		{"OKExternalReportsAuthorised", func(s *setup) {
			s.r.txt[own] = []string{"v=DMARC1; p=none; rua=mailto:x@reports.example"}
			s.r.txt["news.example.jp._report._dmarc.reports.example"] = []string{"v=DMARC1"}
		}, preflight.Pass, []string{"reports to x@reports.example"}},
		{"ErrNoRecord", func(s *setup) { delete(s.r.txt, own) }, preflight.Fail,
			[]string{"no DMARC record at " + own + " nor at " + org, `publish TXT at ` + own + `: "v=DMARC1; p=none; rua=mailto:dmarc-reports@news.example.jp"`}},
		{"ErrOnlyOtherTXT", func(s *setup) { s.r.txt[own] = []string{"v=spf1 -all", "hello; v=DMARC1"} }, preflight.Fail,
			[]string{"no DMARC record"}},
		{"ErrTwoRecords", func(s *setup) {
			s.r.txt[own] = append(s.r.txt[own], "v=DMARC1; p=reject; rua=mailto:dmarc@news.example.jp")
		}, preflight.Fail, []string{"2 DMARC records", "receivers apply none"}},
		{"ErrNoPolicy", func(s *setup) { s.r.txt[own] = []string{"v=DMARC1; rua=mailto:dmarc@news.example.jp"} },
			preflight.Fail, []string{`whose p=""`, "p=none, quarantine or reject"}},
		{"ErrBadPolicy", func(s *setup) { s.r.txt[own] = []string{"v=DMARC1; p=monitor; rua=mailto:dmarc@news.example.jp"} },
			preflight.Fail, []string{`whose p="monitor"`}},
		{"ErrBadInheritedSP", func(s *setup) {
			delete(s.r.txt, own)
			s.r.txt[org] = []string{"v=DMARC1; p=reject; sp=maybe; rua=mailto:d@example.jp"}
		}, preflight.Fail, []string{`whose sp="maybe"`}},
		{"ErrNoRUA", func(s *setup) { s.r.txt[own] = []string{"v=DMARC1; p=reject; ruf=mailto:f@news.example.jp"} },
			preflight.Fail, []string{"no rua=mailto: address", "add rua=mailto:dmarc-reports@news.example.jp"}},
		{"ErrRUANotMailto", func(s *setup) { s.r.txt[own] = []string{"v=DMARC1; p=none; rua=https://r.example/"} },
			preflight.Fail, []string{"no rua=mailto: address"}},
		{"ErrExternalReportsNotAuthorised", func(s *setup) {
			s.r.txt[own] = []string{"v=DMARC1; p=none; rua=mailto:x@reports.example"}
		}, preflight.Fail, []string{"no v=DMARC1 record at news.example.jp._report._dmarc.reports.example", "RFC 7489 §7.1"}},
		{"ErrLookupFails", func(s *setup) { s.r.fail[own] = true }, preflight.Fail, []string{"a failed lookup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy(t)
			if tt.change != nil {
				tt.change(s)
			}
			r := s.checker(t).DMARC(ctx)
			t.Log(r)
			want(t, r, tt.status, tt.parts...)
		})
	}
}
