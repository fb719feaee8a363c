package preflight

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// DMARC checks the DMARC policy that applies to the From domain:
// _dmarc.<from domain>, or, when that name has no record, the
// organisational domain's (RFC 7489 §6.6.3, found with the Public Suffix
// List), whose sp= then applies if present. The policy must be none,
// quarantine or reject, and rua= must name at least one mailto: address;
// an address outside the policy's organisational domain must be
// authorised by a v=DMARC1 record at <policy domain>._report._dmarc.<its
// domain> (RFC 7489 §7.1), or reports are never sent. (DMARCbis's DNS
// tree walk is not implemented.)
func (c *Checker) DMARC(ctx context.Context) Result {
	from := c.cfg.FromDomain
	fail := func(found, expected, fix string) Result {
		return Result{Check: CheckDMARC, Subject: from, Status: Fail, Found: found, Expected: expected, Fix: fix}
	}
	own := "_dmarc." + from
	suggested := "v=DMARC1; p=none; rua=mailto:dmarc-reports@" + from
	expected := "TXT v=DMARC1 with p=none, quarantine or reject and rua=mailto:…"
	at := own
	recs, err := c.dmarcRecords(ctx, at)
	inherited := false
	if err == nil && len(recs) == 0 {
		if org := orgDomain(from); org != from {
			at, inherited = "_dmarc."+org, true
			recs, err = c.dmarcRecords(ctx, at)
		}
	}
	switch {
	case err != nil:
		return fail(lookupFailure(err), expected, "make sure the domain's name servers answer, then run preflight again")
	case len(recs) == 0:
		where := "no DMARC record at " + own
		if inherited {
			where += " nor at " + at
		}
		return fail(where, expected, fmt.Sprintf("publish TXT at %s: %q", own, suggested))
	case len(recs) > 1:
		return fail(fmt.Sprintf("%d DMARC records at %s (%s), so receivers apply none", len(recs), at, quoteAll(recs)),
			"exactly one", "merge them into one record")
	}
	rec := recs[0]
	tags := parseTags(rec)
	tag := "p"
	if inherited && tags["sp"] != "" {
		tag = "sp"
	}
	switch strings.ToLower(tags[tag]) {
	case "none", "quarantine", "reject":
	default:
		return fail(fmt.Sprintf("%q at %s, whose %s=%q", rec, at, tag, tags[tag]),
			tag+"=none, quarantine or reject", fmt.Sprintf("publish TXT at %s: %q", own, suggested))
	}
	var rua []string
	for _, uri := range strings.Split(tags["rua"], ",") {
		uri = strings.TrimSpace(uri)
		if addr, ok := strings.CutPrefix(strings.ToLower(uri), "mailto:"); ok && addr != "" {
			rua = append(rua, uri[len("mailto:"):])
		}
	}
	if len(rua) == 0 {
		return fail(fmt.Sprintf("%q at %s, with no rua=mailto: address, so nobody receives aggregate reports", rec, at),
			"rua=mailto:<address that reads the reports>",
			fmt.Sprintf("add rua=mailto:dmarc-reports@%s to the record at %s", from, at))
	}
	policyDomain := strings.TrimPrefix(at, "_dmarc.")
	for _, uri := range rua {
		addr, _, _ := strings.Cut(uri, "!") // "!10m" is a size limit
		d := addrDomain(addr)
		if d == "" {
			return fail(fmt.Sprintf("rua=mailto:%s, not an address", uri), "rua=mailto:<address>", "correct the rua= tag at "+at)
		}
		if orgDomain(d) == orgDomain(policyDomain) {
			continue
		}
		auth := policyDomain + "._report._dmarc." + d
		recs, err := c.dmarcRecords(ctx, auth)
		if err != nil || len(recs) == 0 {
			found := fmt.Sprintf("rua=mailto:%s, in another organisational domain, and no v=DMARC1 record at %s", addr, auth)
			if err != nil {
				found = fmt.Sprintf("rua=mailto:%s, in another organisational domain, and %s", addr, lookupFailure(err))
			}
			return fail(found, "TXT v=DMARC1 at "+auth+" (RFC 7489 §7.1), or reports are not sent",
				"ask the operator of "+d+" to publish it, or report to an address in "+orgDomain(policyDomain))
		}
	}
	where := at
	if inherited {
		where += " (organisational domain; " + tag + "= applies to " + from + ")"
	}
	return Result{Check: CheckDMARC, Subject: from, Status: Pass,
		Found: fmt.Sprintf("%q at %s: %s=%s, reports to %s", rec, where, tag, strings.ToLower(tags[tag]), strings.Join(rua, ", "))}
}

// dmarcRecords returns the TXT values at name that are DMARC records; a
// name without records gives none and no error.
func (c *Checker) dmarcRecords(ctx context.Context, name string) ([]string, error) {
	txts, err := c.r.LookupTXT(ctx, name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range txts {
		if v, ok := parseTags(t)["v"]; ok && v == "DMARC1" && strings.HasPrefix(strings.TrimSpace(t), "v") {
			out = append(out, strings.TrimSpace(t))
		}
	}
	return out, nil
}

// orgDomain returns the organisational domain of a name (RFC 7489 §3.2):
// the public suffix plus one label, or the name itself when that fails.
func orgDomain(name string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return d
}

func addrDomain(addr string) string {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(a.Address, '@')
	if i < 0 {
		return ""
	}
	return normName(a.Address[i+1:])
}
