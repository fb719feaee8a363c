// Package dnstest runs a DNS server on loopback for tests, in the way
// net/http/httptest runs HTTP servers: records are added as zone-file lines,
// and the server answers over UDP and TCP on one port, like an
// authoritative server that also says it recurses. It truncates UDP
// answers that do not fit (512 bytes, or the client's EDNS0 size), so
// clients' TCP fallback is exercised.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on 127.0.0.1. Its methods are safe for concurrent use.
type Server struct {
	addr string

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	fail    map[string]int      // name → rcode to answer with

	udpQueries, tcpQueries atomic.Int64
}

// Start starts a server answering with the records of the zone-file lines
// rrs (see Add) and stops it when the test ends.
func Start(tb testing.TB, rrs ...string) *Server {
	tb.Helper()
	s := &Server{records: map[string][]dns.RR{}, fail: map[string]int{}}
	s.Add(tb, rrs...)

	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 10 { // the TCP port must be free as well as the UDP one
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("dnstest: listen udp: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		tb.Fatalf("dnstest: listen tcp: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)},
		{Listener: ln, Handler: dns.HandlerFunc(s.serve)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		tb.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return s
}

// Addr returns the server's host:port (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Add adds records written as zone-file lines with absolute names, e.g.
//
//	example.jp. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"
//	example.jp. 300 IN SOA ns1.example.jp. hostmaster.example.jp. 1 7200 3600 1209600 300
//
// A line that does not parse fails the test.
func (s *Server) Add(tb testing.TB, rrs ...string) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range rrs {
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			tb.Fatalf("dnstest: record %q: %v", line, err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
}

// Fail makes the server answer every query for name with rcode (e.g.
// dns.RcodeServerFailure).
func (s *Server) Fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[strings.ToLower(dns.Fqdn(name))] = rcode
}

// Queries returns how many queries arrived over UDP and over TCP.
func (s *Server) Queries() (udp, tcp int) {
	return int(s.udpQueries.Load()), int(s.tcpQueries.Load())
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		s.udpQueries.Add(1)
	} else {
		s.tcpQueries.Add(1)
	}
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if len(req.Question) == 1 {
		s.answer(resp, req.Question[0])
	} else {
		resp.Rcode = dns.RcodeFormatError
	}
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

func (s *Server) answer(resp *dns.Msg, q dns.Question) {
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode, ok := s.fail[name]; ok {
		resp.Rcode = rcode
		return
	}
	for _, rr := range s.records[name] {
		if rr.Header().Rrtype == q.Qtype {
			resp.Answer = append(resp.Answer, dns.Copy(rr))
		}
	}
	if len(resp.Answer) > 0 {
		return
	}
	if !s.exists(name) {
		resp.Rcode = dns.RcodeNameError
	}
	if soa := s.zoneSOA(name); soa != nil {
		resp.Ns = append(resp.Ns, dns.Copy(soa))
	}
}

// exists reports whether name owns records or has descendants that do (an
// empty non-terminal exists too).
func (s *Server) exists(name string) bool {
	if len(s.records[name]) > 0 {
		return true
	}
	for owner := range s.records {
		if strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

// zoneSOA returns the SOA of the closest enclosing zone of name.
func (s *Server) zoneSOA(name string) dns.RR {
	for n := name; n != ""; {
		for _, rr := range s.records[n] {
			if rr.Header().Rrtype == dns.TypeSOA {
				return rr
			}
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	return nil
}
