package preflight_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/preflight"
)

// FuzzRecords feeds arbitrary DNS text to the record parsers (SPF through
// the evaluator, DKIM and DMARC tag lists, DKIM keys): whatever a zone
// publishes, a check ends in PASS or FAIL (never a panic), and a FAIL
// says what it found, what it expected and how to fix it.
func FuzzRecords(f *testing.F) {
	f.Add("v=spf1 ip4:203.0.113.10 -all", "v=DKIM1; k=ed25519; p=AAAA", "v=DMARC1; p=none; rua=mailto:d@news.example.jp")
	f.Add("v=spf1 include:x.example redirect=y.example ?all", "k=rsa; p=MIIBIjANBg==", "v=DMARC1; p=reject; sp=none; rua=mailto:a@other.example,mailto:b@news.example.jp!10m")
	f.Add("v=spf1 a:%{d}.example mx/24 exists:%{i}.x.example ~all", "v=DKIM1; h=sha1; p=", "v=DMARC1;p=quarantine;pct=50")
	f.Add("v=spf1 +all", ";;==;", "v=DMARC1; p=bogus; rua=https://x")
	f.Add("", "p", "p=none")
	f.Fuzz(func(t *testing.T, spf, dkim, dmarc string) {
		s := healthy(t)
		s.r.txt["news.example.jp"] = strings.Split(spf, "\n")
		s.r.txt["nl._domainkey.news.example.jp"] = strings.Split(dkim, "\n")
		s.r.txt["_dmarc.news.example.jp"] = strings.Split(dmarc, "\n")
		c := s.checker(t)
		ctx := context.Background()
		for _, r := range []preflight.Result{c.SPF(ctx, "news.example.jp"), c.DKIM(ctx), c.DMARC(ctx)} {
			switch r.Status {
			case preflight.Pass:
			case preflight.Fail:
				if r.Found == "" || r.Expected == "" || r.Fix == "" {
					t.Errorf("a failure without found, expected and fix: %s", r)
				}
			default:
				t.Errorf("status %q: %s", r.Status, r)
			}
		}
	})
}
