package preflight_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

// TestRealDNS asks the name servers of /etc/resolv.conf about the domain in
// TAYORI_PREFLIGHT_DOMAIN (e.g. a staging From domain) and requires that
// its SOA check passes and that no check fails for want of an answer; the
// other results are logged (run with -v). Without the variable it is
// skipped: CI sets it only where DNS is reachable and the domain is ours.
func TestRealDNS(t *testing.T) {
	domain := os.Getenv("TAYORI_PREFLIGHT_DOMAIN")
	if domain == "" {
		t.Skip("TAYORI_PREFLIGHT_DOMAIN is not set; set it to a domain to check against real DNS")
	}
	r, err := preflight.SystemResolver(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := preflight.New(preflight.Config{
		FromDomain: domain,
		Relay:      mailer.RelayConfig{Host: domain, Port: 25},
		Skip:       []string{preflight.CheckRelayTLS},
	}, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := c.Run(ctx)
	for _, res := range rep.Results {
		t.Log(res)
		if res.Status == preflight.Fail && containsAny(res.Found, "a failed lookup", "whose evaluation failed") {
			t.Errorf("DNS did not answer: %s", res)
		}
	}
	want(t, c.SOA(ctx, domain), preflight.Pass)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
