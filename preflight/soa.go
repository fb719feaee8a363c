package preflight

import (
	"context"
	"fmt"
)

// SOA checks that domain exists in DNS and that an SOA answers for it: its
// own when it is a zone apex, else its zone's (a name inside a zone gets
// NODATA with the zone's SOA). Yahoo asks that an SOA resolve for every
// sending subdomain; a name that does not exist (NXDOMAIN) fails.
func (c *Checker) SOA(ctx context.Context, domain string) Result {
	soa, err := c.r.LookupSOA(ctx, domain)
	if err != nil {
		found := lookupFailure(err)
		if isNotFound(err) {
			found = "no such name (NXDOMAIN): " + domain + " does not exist in DNS"
		}
		return Result{Check: CheckSOA, Subject: domain, Status: Fail, Found: found,
			Expected: "the name to exist, with an SOA answering for it",
			Fix:      "publish a record at " + domain + " (its SPF TXT record will do) in a zone you serve"}
	}
	if soa.Zone == domain {
		return Result{Check: CheckSOA, Subject: domain, Status: Pass,
			Found: fmt.Sprintf("zone apex, SOA %s serial %d", soa.NS, soa.Serial)}
	}
	return Result{Check: CheckSOA, Subject: domain, Status: Pass,
		Found: fmt.Sprintf("in zone %s, SOA %s serial %d", soa.Zone, soa.NS, soa.Serial)}
}
