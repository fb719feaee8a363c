package preflight

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"
)

// spfProbe is an address no sane SPF record authorises (TEST-NET-1, RFC
// 5737). Evaluating it walks the whole record, so it shows a record that
// goes over RFC 7208's lookup limits whatever path a real sender takes, and
// a record that authorises any address.
var spfProbe = netip.MustParseAddr("192.0.2.1")

// maxSPFLookups is RFC 7208 §4.6.4's limit on DNS lookups per evaluation.
const maxSPFLookups = 10

// SPF checks that domain has exactly one SPF record, that it evaluates
// without permerror for any sender, and that it authorises the relay:
// it includes Config.SPFInclude (at any depth) when that is set, and it
// gives "pass" for every sending address when SPFInclude is not set or
// Config.SendingIPs are given. Evaluation, with the lookup limits, is
// blitiri.com.ar/go/spf's.
func (c *Checker) SPF(ctx context.Context, domain string) Result {
	fail := func(found, expected, fix string) Result {
		return Result{Check: CheckSPF, Subject: domain, Status: Fail, Found: found, Expected: expected, Fix: fix}
	}
	txts, err := c.r.LookupTXT(ctx, domain)
	if err != nil && !isNotFound(err) {
		return fail(lookupFailure(err), "one TXT record starting with v=spf1",
			"make sure the domain's name servers answer, then run preflight again")
	}
	recs := spfRecords(txts)
	switch len(recs) {
	case 0:
		return fail("no v=spf1 record", "exactly one TXT record starting with v=spf1 that authorises the relay",
			fmt.Sprintf("publish TXT at %s: %q", domain, c.suggestSPF(ctx)))
	case 1:
	default:
		return fail(fmt.Sprintf("%d v=spf1 records (%s)", len(recs), quoteAll(recs)),
			"exactly one (receivers treat several as permerror)", "merge them into one record")
	}
	rec := recs[0]

	switch res, err := c.evalSPF(ctx, spfProbe, domain); res {
	case spf.PermError:
		return fail(fmt.Sprintf("%q, which evaluates to permerror (%v)", rec, err),
			fmt.Sprintf("a record that evaluates within RFC 7208's limits (%d DNS lookups, 2 void lookups) and whose includes all publish SPF", maxSPFLookups),
			"flatten nested includes, or drop mechanisms that cost lookups (a, mx, ptr, exists, include, redirect)")
	case spf.TempError:
		return fail(fmt.Sprintf("%q, whose evaluation failed (%v)", rec, err), "an evaluation that completes",
			"make sure the name servers of every included domain answer, then run preflight again")
	case spf.Pass:
		return fail(fmt.Sprintf("%q, which authorises %s, a documentation address: it lets about anyone send as %s", rec, spfProbe, domain),
			"a record that lists the relay and ends in -all or ~all", "remove +all (or the too-broad range) from the record")
	}

	var ok []string
	if c.cfg.SPFInclude != "" {
		found, err := c.spfIncludes(ctx, rec, c.cfg.SPFInclude)
		if err != nil {
			return fail(fmt.Sprintf("%q, whose includes could not be read (%v)", rec, err), "include:"+c.cfg.SPFInclude, "run preflight again once DNS answers")
		}
		if !found {
			return fail(fmt.Sprintf("%q, which does not include %s", rec, c.cfg.SPFInclude),
				"include:"+c.cfg.SPFInclude+" in the record (directly or through a nested include)",
				fmt.Sprintf("publish TXT at %s: %q", domain, insertSPFTerms(rec, "include:"+c.cfg.SPFInclude)))
		}
		ok = append(ok, "includes "+c.cfg.SPFInclude)
	}
	// With an include, the relay's own addresses need not pass: a smarthost
	// is reached at one address and sends from those of its SPF domain.
	if explicit := len(c.cfg.SendingIPs) > 0; c.cfg.SPFInclude == "" || explicit {
		ips, _, err := c.sendingIPs(ctx)
		if err != nil {
			return fail(fmt.Sprintf("no sending address: %v", err), "the relay's public addresses",
				"check the host in TAYORI_SMTP_URL, or give the addresses with --sending-ip")
		}
		if ip, bad := notPublic(ips); bad && !explicit {
			return fail(c.relayNotPublic(ip),
				"the public addresses mail leaves from",
				"give them with --sending-ip, or give the relay operator's SPF domain with --spf-include")
		}
		var bad, terms []string
		for _, ip := range ips {
			res, err := c.evalSPF(ctx, ip, domain)
			if res == spf.Pass {
				continue
			}
			msg := fmt.Sprintf("%s for %s", res, ip)
			if err != nil && res != spf.Fail && res != spf.SoftFail && res != spf.Neutral {
				msg += fmt.Sprintf(" (%v)", err)
			}
			bad = append(bad, msg)
			terms = append(terms, ipTerm(ip))
		}
		if len(bad) > 0 {
			return fail(fmt.Sprintf("%q, which gives %s", rec, strings.Join(bad, ", ")),
				"pass for every sending address ("+ipStrings(ips)+")",
				fmt.Sprintf("publish TXT at %s: %q (or include the relay operator's SPF domain)", domain, insertSPFTerms(rec, terms...)))
		}
		ok = append(ok, "passes "+ipStrings(ips))
	}
	return Result{Check: CheckSPF, Subject: domain, Status: Pass,
		Found: fmt.Sprintf("one record %q; %s", rec, strings.Join(ok, "; "))}
}

func (c *Checker) evalSPF(ctx context.Context, ip netip.Addr, domain string) (spf.Result, error) {
	return spf.CheckHostWithSender(net.IP(ip.AsSlice()), domain, "postmaster@"+domain,
		spf.WithContext(ctx), spf.WithResolver(c.r))
}

// suggestSPF returns a record that would pass: the include if configured,
// else the sending addresses.
func (c *Checker) suggestSPF(ctx context.Context) string {
	if c.cfg.SPFInclude != "" {
		return "v=spf1 include:" + c.cfg.SPFInclude + " -all"
	}
	ips, _, err := c.sendingIPs(ctx)
	if _, bad := notPublic(ips); err != nil || bad {
		return "v=spf1 ip4:<sending address> -all"
	}
	terms := make([]string, len(ips))
	for i, ip := range ips {
		terms[i] = ipTerm(ip)
	}
	return "v=spf1 " + strings.Join(terms, " ") + " -all"
}

// spfIncludes reports whether rec reaches include:want, following include
// and redirect terms (not macros) breadth first, within maxSPFLookups.
func (c *Checker) spfIncludes(ctx context.Context, rec, want string) (bool, error) {
	queue := []string{rec}
	seen := map[string]bool{}
	lookups := 0
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		for _, target := range spfTargets(r) {
			if target == want {
				return true, nil
			}
			if seen[target] || strings.Contains(target, "%") || lookups >= maxSPFLookups {
				continue
			}
			seen[target] = true
			lookups++
			txts, err := c.r.LookupTXT(ctx, target)
			if err != nil {
				if isNotFound(err) {
					continue // the probe evaluation reports this as permerror
				}
				return false, fmt.Errorf("%s: %w", target, err)
			}
			if recs := spfRecords(txts); len(recs) == 1 {
				queue = append(queue, recs[0])
			}
		}
	}
	return false, nil
}

// spfTargets returns the domains of rec's include: mechanisms and
// redirect= modifier, lower-cased.
func spfTargets(rec string) []string {
	var out []string
	for _, term := range strings.Fields(rec)[1:] {
		t := strings.ToLower(strings.TrimLeft(term, "+-~?"))
		if d, ok := strings.CutPrefix(t, "include:"); ok {
			out = append(out, normName(d))
		} else if d, ok := strings.CutPrefix(t, "redirect="); ok {
			out = append(out, normName(d))
		}
	}
	return out
}

// spfRecords returns the TXT values that are SPF records (RFC 7208 §4.5).
func spfRecords(txts []string) []string {
	var out []string
	for _, t := range txts {
		l := strings.ToLower(t)
		if l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ") {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out
}

// insertSPFTerms puts terms before rec's "all" mechanism or redirect=
// modifier, or at its end.
func insertSPFTerms(rec string, terms ...string) string {
	fields := strings.Fields(rec)
	at := len(fields)
	for i, f := range fields {
		l := strings.ToLower(strings.TrimLeft(f, "+-~?"))
		if i > 0 && (l == "all" || strings.HasPrefix(l, "redirect=")) {
			at = i
			break
		}
	}
	out := append([]string{}, fields[:at]...)
	out = append(out, terms...)
	return strings.Join(append(out, fields[at:]...), " ")
}

func ipTerm(ip netip.Addr) string {
	if ip.Is4() {
		return "ip4:" + ip.String()
	}
	return "ip6:" + ip.String()
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
