package preflight_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

func TestNewValidates(t *testing.T) {
	s := healthy(t)
	for name, tt := range map[string]struct {
		change func(c *preflight.Config)
		want   string
	}{
		"NoFromDomain":     {func(c *preflight.Config) { c.FromDomain = "" }, "From domain"},
		"BadBounceDomain":  {func(c *preflight.Config) { c.BounceDomain = "not a domain" }, "bounce domain"},
		"BadSPFInclude":    {func(c *preflight.Config) { c.SPFInclude = "spf" }, "SPF include"},
		"DKIMWithoutName":  {func(c *preflight.Config) { c.DKIMSelector = "" }, "DKIM domain"},
		"NoRelay":          {func(c *preflight.Config) { c.Relay = mailer.RelayConfig{} }, "relay host"},
		"UnknownSkip":      {func(c *preflight.Config) { c.Skip = []string{"mx"} }, `unknown check "mx"`},
		"EveryProblemSaid": {func(c *preflight.Config) { c.FromDomain, c.Skip = "x", []string{"mx"} }, `From domain "x" is not a domain name; unknown check "mx"`},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := s.cfg
			tt.change(&cfg)
			_, err := preflight.New(cfg, s.r, nil)
			if !errors.Is(err, preflight.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := preflight.New(s.cfg, nil, nil); !errors.Is(err, preflight.ErrConfig) {
		t.Errorf("New without resolver: %v", err)
	}
}

// TestRun runs every check on the healthy setup with a real STARTTLS relay
// on loopback (whose address is not public, so the sending address is
// given), then breaks DMARC and skips PTR.
func TestRun(t *testing.T) {
	ctx := context.Background()
	relay := testutil.StartSMTP(t, testutil.WithSTARTTLS())
	s := healthy(t)
	rc, err := mailer.ParseSMTPURL("smtp://" + relay.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Relay, s.cfg.RootCAs, s.cfg.Timeout = rc, relay.TLSClientConfig().RootCAs, 5*time.Second
	s.cfg.SendingIPs = []netip.Addr{netip.MustParseAddr("203.0.113.10")}

	rep := s.checker(t).Run(ctx)
	var lines []string
	for _, r := range rep.Results {
		lines = append(lines, r.String())
	}
	got := strings.Join(lines, "\n")
	t.Log("\n" + got)
	if !rep.OK() || rep.Count(preflight.Pass) != 8 || len(rep.Results) != 8 {
		t.Fatalf("want 8 passes:\n%s", got)
	}
	for i, prefix := range []string{
		"PASS spf news.example.jp:", "PASS spf bounce.news.example.jp:", "PASS dkim nl._domainkey.news.example.jp:",
		"PASS dmarc news.example.jp:", "PASS ptr 203.0.113.10:", "PASS soa news.example.jp:",
		"PASS soa bounce.news.example.jp:", "PASS relay-tls " + relay.Addr() + ": STARTTLS",
	} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d: %q, want prefix %q", i+1, lines[i], prefix)
		}
	}

	delete(s.r.txt, "_dmarc.news.example.jp")
	s.cfg.Skip = []string{preflight.CheckPTR, preflight.CheckRelayTLS}
	rep = s.checker(t).Run(ctx)
	if rep.OK() || rep.Count(preflight.Fail) != 1 || rep.Count(preflight.Skip) != 2 || rep.Count(preflight.Pass) != 5 {
		t.Errorf("want 1 failure, 2 skipped, 5 passes: %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Check == preflight.CheckPTR && r.String() != "SKIP ptr -: skipped on request (--skip ptr)" {
			t.Errorf("skipped line: %q", r.String())
		}
	}
}

func TestResultString(t *testing.T) {
	r := preflight.Result{Check: "dmarc", Subject: "example.jp", Status: preflight.Fail, Found: "F", Expected: "E", Fix: "X"}
	if got, want := r.String(), "FAIL dmarc example.jp: found F; expected E; fix: X"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r.Status = preflight.Pass
	if got, want := r.String(), "PASS dmarc example.jp: F"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
