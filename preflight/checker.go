package preflight

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/mailer"
)

// Check names, as printed and as accepted by Config.Skip.
const (
	CheckSPF      = "spf"
	CheckDKIM     = "dkim"
	CheckDMARC    = "dmarc"
	CheckPTR      = "ptr"
	CheckSOA      = "soa"
	CheckRelayTLS = "relay-tls"
)

// Checks lists every check in the order Run runs them.
var Checks = []string{CheckSPF, CheckDKIM, CheckDMARC, CheckPTR, CheckSOA, CheckRelayTLS}

// ErrConfig is wrapped by New's errors: the configuration cannot be checked.
var ErrConfig = errors.New("preflight: invalid configuration")

// Config says what to check. Domains are ASCII (A-labels for IDNs).
type Config struct {
	// FromDomain is the domain of the From address. Required.
	FromDomain string
	// BounceDomain is the domain of the envelope sender (MAIL FROM, the
	// Return-Path), which SPF checks. Empty means "bounce." + FromDomain.
	BounceDomain string
	// SPFInclude, when set, is the domain the relay's operator asks
	// senders to include (e.g. "amazonses.com"): the SPF records must
	// include it, directly or through nested includes. Empty means the
	// SPF records must instead give "pass" for every sending address.
	SPFInclude string
	// SendingIPs are the public addresses mail leaves from: each must have
	// forward-confirmed PTR and, when given, pass SPF. Empty means the relay
	// host's addresses, which must then pass SPF only when SPFInclude is
	// empty (a smarthost sends from its SPF domain's addresses, not from
	// the one Tayori connects to).
	SendingIPs []netip.Addr
	// DKIMDomain, DKIMSelector and DKIMPublicKey describe the signing key;
	// a nil DKIMPublicKey means DKIM signing is not configured and the
	// DKIM check is skipped.
	DKIMDomain    string
	DKIMSelector  string
	DKIMPublicKey crypto.PublicKey
	// Relay is the SMTP relay whose TLS is checked (and whose addresses
	// are the default SendingIPs).
	Relay mailer.RelayConfig
	// RootCAs verifies the relay's certificate; nil means the system's roots.
	RootCAs *x509.CertPool
	// HelloName is the name sent in EHLO; empty means "localhost".
	HelloName string
	// Timeout bounds the relay conversation; 0 means 10 seconds.
	Timeout time.Duration
	// Skip lists checks (CheckSPF…) to report as skipped instead of running.
	Skip []string
}

// Checker runs the checks of one configuration. It is safe for concurrent use.
type Checker struct {
	cfg Config
	r   Resolver
	log *slog.Logger
}

// New validates cfg, fills its defaults and returns a Checker that looks
// names up with r. logger may be nil.
func New(cfg Config, r Resolver, logger *slog.Logger) (*Checker, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no resolver", ErrConfig)
	}
	var problems []string
	cfg.FromDomain = normName(cfg.FromDomain)
	if !isDomain(cfg.FromDomain) {
		problems = append(problems, fmt.Sprintf("From domain %q is not a domain name", cfg.FromDomain))
	}
	if cfg.BounceDomain == "" && cfg.FromDomain != "" {
		cfg.BounceDomain = "bounce." + cfg.FromDomain
	}
	cfg.BounceDomain = normName(cfg.BounceDomain)
	if !isDomain(cfg.BounceDomain) {
		problems = append(problems, fmt.Sprintf("bounce domain %q is not a domain name", cfg.BounceDomain))
	}
	cfg.SPFInclude = normName(cfg.SPFInclude)
	if cfg.SPFInclude != "" && !isDomain(cfg.SPFInclude) {
		problems = append(problems, fmt.Sprintf("SPF include %q is not a domain name", cfg.SPFInclude))
	}
	if cfg.DKIMPublicKey != nil {
		cfg.DKIMDomain, cfg.DKIMSelector = normName(cfg.DKIMDomain), strings.ToLower(cfg.DKIMSelector)
		if !isDomain(cfg.DKIMDomain) || cfg.DKIMSelector == "" {
			problems = append(problems, fmt.Sprintf("DKIM domain %q and selector %q must both be set", cfg.DKIMDomain, cfg.DKIMSelector))
		}
	}
	if cfg.Relay.Host == "" || cfg.Relay.Port == 0 {
		problems = append(problems, "relay host and port must be set")
	}
	for _, s := range cfg.Skip {
		if !slices.Contains(Checks, s) {
			problems = append(problems, fmt.Sprintf("unknown check %q to skip (want one of %s)", s, strings.Join(Checks, ", ")))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Checker{cfg: cfg, r: r, log: logger}, nil
}

// Status is the outcome of one check.
type Status string

// Statuses.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Result is the outcome of one check on one subject (a domain, an address
// or the relay).
type Result struct {
	// Check is the check's name (CheckSPF…).
	Check string
	// Subject is what was checked: a domain, an IP address or host:port.
	Subject string
	// Status is Pass, Fail or Skip.
	Status Status
	// Found says what was found (for Skip: why it was skipped).
	Found string
	// Expected and Fix are set when Status is Fail: what a passing setup
	// has, and what to change.
	Expected string
	Fix      string
}

// String formats r as one line: "FAIL spf example.jp: found …; expected …;
// fix: …", or "PASS spf example.jp: …".
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: ", r.Status, r.Check, r.Subject)
	if r.Status != Fail {
		b.WriteString(r.Found)
		return b.String()
	}
	fmt.Fprintf(&b, "found %s; expected %s", r.Found, r.Expected)
	if r.Fix != "" {
		fmt.Fprintf(&b, "; fix: %s", r.Fix)
	}
	return b.String()
}

// Report is the outcome of Run.
type Report struct {
	Results []Result
}

// Count returns how many results have status s.
func (rep Report) Count(s Status) int {
	n := 0
	for _, r := range rep.Results {
		if r.Status == s {
			n++
		}
	}
	return n
}

// OK reports whether no check failed.
func (rep Report) OK() bool { return rep.Count(Fail) == 0 }

// Run runs every check not in Config.Skip, in the order of Checks, and
// returns all results; a check that cannot look something up fails with
// the lookup's error rather than stopping the others.
func (c *Checker) Run(ctx context.Context) Report {
	var rep Report
	add := func(rs ...Result) {
		for _, r := range rs {
			c.log.DebugContext(ctx, "preflight check", "check", r.Check, "subject", r.Subject, "status", string(r.Status))
			rep.Results = append(rep.Results, r)
		}
	}
	for _, name := range Checks {
		if slices.Contains(c.cfg.Skip, name) {
			add(Result{Check: name, Subject: "-", Status: Skip, Found: "skipped on request (--skip " + name + ")"})
			continue
		}
		switch name {
		case CheckSPF:
			add(c.SPF(ctx, c.cfg.FromDomain), c.SPF(ctx, c.cfg.BounceDomain))
		case CheckDKIM:
			add(c.DKIM(ctx))
		case CheckDMARC:
			add(c.DMARC(ctx))
		case CheckPTR:
			add(c.PTR(ctx)...)
		case CheckSOA:
			add(c.SOA(ctx, c.cfg.FromDomain), c.SOA(ctx, c.cfg.BounceDomain))
		case CheckRelayTLS:
			add(c.RelayTLS(ctx))
		}
	}
	return rep
}

// sendingIPs returns Config.SendingIPs, or the relay host's addresses.
// explicit is false for the latter.
func (c *Checker) sendingIPs(ctx context.Context) (ips []netip.Addr, explicit bool, err error) {
	if len(c.cfg.SendingIPs) > 0 {
		return c.cfg.SendingIPs, true, nil
	}
	if ip, err := netip.ParseAddr(c.cfg.Relay.Host); err == nil {
		return []netip.Addr{ip.Unmap()}, false, nil
	}
	addrs, err := c.r.LookupIPAddr(ctx, c.cfg.Relay.Host)
	if err != nil {
		return nil, false, fmt.Errorf("relay host %s: %w", c.cfg.Relay.Host, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ips = append(ips, ip.Unmap())
		}
	}
	if len(ips) == 0 {
		return nil, false, fmt.Errorf("relay host %s has no address", c.cfg.Relay.Host)
	}
	return ips, false, nil
}

// notPublic returns the first address that cannot be a public sending
// address (loopback, private, link-local…).
func notPublic(ips []netip.Addr) (netip.Addr, bool) {
	for _, ip := range ips {
		if !ip.IsGlobalUnicast() || ip.IsPrivate() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// relayNotPublic says that the relay's address ip cannot be where mail
// leaves from.
func (c *Checker) relayNotPublic(ip netip.Addr) string {
	at := "the relay " + c.cfg.Relay.Host + " at " + ip.String()
	if c.cfg.Relay.Host == ip.String() {
		at = "the relay at " + ip.String()
	}
	return at + ", not a public address, so the addresses mail leaves from are unknown"
}

// lookupFailure describes a lookup error for Result.Found.
func lookupFailure(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return "no record at " + de.Name
	}
	return "a failed lookup (" + err.Error() + ")"
}

func normName(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }

// isDomain reports whether s looks like a multi-label ASCII host name.
func isDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func ipStrings(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
