package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the DNS the checks need. Names are given without a trailing
// dot. A name that does not exist, or has no record of the type asked
// (NXDOMAIN or NODATA), is a *net.DNSError with IsNotFound set; a lookup
// that could not be answered (timeout, SERVFAIL) is a *net.DNSError with
// IsTemporary set. The method set matches *net.Resolver's (plus LookupSOA),
// and that of blitiri.com.ar/go/spf's DNSResolver, which evaluates SPF on
// it.
type Resolver interface {
	// LookupTXT returns the TXT records at name, each one's strings joined.
	LookupTXT(ctx context.Context, name string) ([]string, error)
	// LookupIPAddr returns the A and AAAA records of host.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	// LookupAddr returns the PTR names of addr, with a trailing dot.
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	// LookupMX returns the MX records at name (SPF's mx mechanism).
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupSOA returns the SOA that answers for name: its own when name
	// is a zone apex, else that of the zone name lies in.
	LookupSOA(ctx context.Context, name string) (SOA, error)
}

// SOA is the start of authority of the zone a name lies in.
type SOA struct {
	// Zone is the zone's apex (the SOA's owner), without a trailing dot.
	Zone string
	// NS is the primary name server (MNAME), with a trailing dot.
	NS string
	// Mbox is the zone administrator's mailbox as a name (RNAME).
	Mbox string
	// Serial is the zone's serial number.
	Serial uint32
}

// DNSResolver is a Resolver that sends queries straight to recursive name
// servers with github.com/miekg/dns: over UDP with EDNS0 (1232 bytes), again
// over TCP when the answer is truncated (long SPF and DKIM records), each
// server in turn when one fails. Build it with NewDNSResolver or
// SystemResolver.
type DNSResolver struct {
	servers []string
	timeout time.Duration
}

// DefaultDNSTimeout is how long DNSResolver waits for one server's answer.
const DefaultDNSTimeout = 5 * time.Second

// NewDNSResolver returns a resolver that asks servers ("host:port", or a
// host, which gets port 53) in order. timeout bounds each query to one
// server; 0 means DefaultDNSTimeout.
func NewDNSResolver(servers []string, timeout time.Duration) (*DNSResolver, error) {
	if len(servers) == 0 {
		return nil, errors.New("preflight: no DNS server given")
	}
	r := &DNSResolver{timeout: timeout}
	if r.timeout <= 0 {
		r.timeout = DefaultDNSTimeout
	}
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		r.servers = append(r.servers, s)
	}
	return r, nil
}

// SystemResolver returns a DNSResolver for the name servers in
// /etc/resolv.conf. Search domains and ndots do not apply: every name the
// checks look up is fully qualified.
func SystemResolver(timeout time.Duration) (*DNSResolver, error) {
	return resolverFromFile("/etc/resolv.conf", timeout)
}

func resolverFromFile(path string, timeout time.Duration) (*DNSResolver, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("preflight: read name servers: %w", err)
	}
	servers := make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		servers[i] = net.JoinHostPort(s, cc.Port)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("preflight: %s lists no nameserver", path)
	}
	return NewDNSResolver(servers, timeout)
}

// Servers returns the name servers asked, as host:port.
func (r *DNSResolver) Servers() []string { return append([]string(nil), r.servers...) }

// LookupTXT implements Resolver.
func (r *DNSResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// LookupIPAddr implements Resolver: it asks for A and AAAA and fails only
// when both fail.
func (r *DNSResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, net.IPAddr{IP: a.A})
			case *dns.AAAA:
				out = append(out, net.IPAddr{IP: a.AAAA})
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	// Prefer the temporary failure: "not found" for A and a timeout for
	// AAAA does not prove the host has no address.
	for _, err := range errs {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsTemporary {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return nil, notFound(host, "")
}

// LookupAddr implements Resolver.
func (r *DNSResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "not an IP address", Name: addr, IsNotFound: true}
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, p.Ptr)
		}
	}
	return out, nil
}

// LookupMX implements Resolver.
func (r *DNSResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range rrs {
		if m, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: m.Mx, Pref: m.Preference})
		}
	}
	return out, nil
}

// LookupSOA implements Resolver. An SOA in the answer is name's own; for a
// name inside a zone the server answers NODATA with the zone's SOA in the
// authority section, which is returned instead.
func (r *DNSResolver) LookupSOA(ctx context.Context, name string) (SOA, error) {
	resp, err := r.exchange(ctx, name, dns.TypeSOA)
	if err != nil {
		return SOA{}, err
	}
	if resp.Rcode == dns.RcodeNameError {
		return SOA{}, notFound(name, "")
	}
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns} {
		for _, rr := range sec {
			if s, ok := rr.(*dns.SOA); ok {
				return SOA{Zone: strings.TrimSuffix(s.Hdr.Name, "."), NS: s.Ns, Mbox: s.Mbox, Serial: s.Serial}, nil
			}
		}
	}
	return SOA{}, notFound(name, "")
}

// query returns the records of type t in the answer to name (following a
// CNAME chain is the recursive server's job: the records of type t in the
// answer are those at the chain's end).
func (r *DNSResolver) query(ctx context.Context, name string, t uint16) ([]dns.RR, error) {
	resp, err := r.exchange(ctx, name, t)
	if err != nil {
		return nil, err
	}
	if resp.Rcode == dns.RcodeNameError {
		return nil, notFound(name, "")
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == t {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, notFound(name, "")
	}
	return out, nil
}

// exchange asks each server in turn until one answers NOERROR or NXDOMAIN.
func (r *DNSResolver) exchange(ctx context.Context, name string, t uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), t)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	var last error
	for _, server := range r.servers {
		resp, err := r.exchangeOne(ctx, q, server)
		if err != nil {
			if ctx.Err() != nil {
				return nil, &net.DNSError{Err: ctx.Err().Error(), Name: name, Server: server, IsTimeout: true, IsTemporary: true}
			}
			last = &net.DNSError{Err: err.Error(), Name: name, Server: server, IsTemporary: true}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return resp, nil
		}
		last = &net.DNSError{Err: "server answered " + dns.RcodeToString[resp.Rcode], Name: name, Server: server, IsTemporary: true}
	}
	return nil, last
}

func (r *DNSResolver) exchangeOne(ctx context.Context, q *dns.Msg, server string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	resp, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		return nil, errors.New("answer truncated even over TCP")
	}
	return resp, nil
}

func notFound(name, server string) error {
	return &net.DNSError{Err: "no such record", Name: name, Server: server, IsNotFound: true}
}

// isNotFound reports whether err says that the name or record does not
// exist (as opposed to a failed lookup).
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
