package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// PTR checks forward-confirmed reverse DNS for each sending address
// (Config.SendingIPs, or the relay host's addresses): the address has a
// PTR, and one of its names resolves back to the address. One result per
// address.
func (c *Checker) PTR(ctx context.Context) []Result {
	ips, explicit, err := c.sendingIPs(ctx)
	if err != nil {
		return []Result{{Check: CheckPTR, Subject: c.cfg.Relay.Host, Status: Fail,
			Found: fmt.Sprintf("no sending address: %v", err), Expected: "the relay's public addresses",
			Fix: "check the host in TAYORI_SMTP_URL, or give the addresses with --sending-ip"}}
	}
	if ip, bad := notPublic(ips); bad && !explicit {
		return []Result{{Check: CheckPTR, Subject: ip.String(), Status: Fail,
			Found:    c.relayNotPublic(ip),
			Expected: "the public addresses mail leaves from, each with forward-confirmed reverse DNS",
			Fix:      "give them with --sending-ip"}}
	}
	out := make([]Result, 0, len(ips))
	for _, ip := range ips {
		out = append(out, c.ptr(ctx, ip))
	}
	return out
}

func (c *Checker) ptr(ctx context.Context, ip netip.Addr) Result {
	fail := func(found string) Result {
		return Result{Check: CheckPTR, Subject: ip.String(), Status: Fail, Found: found,
			Expected: "a PTR naming a host whose A/AAAA record is " + ip.String(),
			Fix: fmt.Sprintf("ask whoever owns the address (relay operator or hosting provider) to set its reverse DNS to a name such as mail.%s, and publish that name with address %s",
				c.cfg.FromDomain, ip)}
	}
	names, err := c.r.LookupAddr(ctx, ip.String())
	if isNotFound(err) || err == nil && len(names) == 0 {
		return fail("no PTR record")
	}
	if err != nil {
		return fail(lookupFailure(err))
	}
	var seen []string
	for _, name := range names {
		host := normName(name)
		addrs, err := c.r.LookupIPAddr(ctx, host)
		if err != nil {
			seen = append(seen, fmt.Sprintf("%s (%s)", host, lookupFailure(err)))
			continue
		}
		var got []string
		for _, a := range addrs {
			if fa, ok := netip.AddrFromSlice(a.IP); ok && fa.Unmap() == ip {
				return Result{Check: CheckPTR, Subject: ip.String(), Status: Pass,
					Found: fmt.Sprintf("PTR %s, which resolves back to %s", host, ip)}
			}
			got = append(got, a.IP.String())
		}
		seen = append(seen, fmt.Sprintf("%s (resolves to %s)", host, strings.Join(got, ", ")))
	}
	return fail("PTR " + strings.Join(seen, ", ") + ", none back to " + ip.String())
}
