package preflight_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

// stub is a Resolver answering from maps keyed by lower-case names without
// a trailing dot (IP strings for ptr). A name in fail gives a temporary
// error for every lookup.
type stub struct {
	mu   sync.Mutex
	txt  map[string][]string
	ip   map[string][]string
	ptr  map[string][]string
	mx   map[string][]*net.MX
	soa  map[string]preflight.SOA
	fail map[string]bool
	n    int
}

func newStub() *stub {
	return &stub{txt: map[string][]string{}, ip: map[string][]string{}, ptr: map[string][]string{},
		mx: map[string][]*net.MX{}, soa: map[string]preflight.SOA{}, fail: map[string]bool{}}
}

func (s *stub) begin(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if s.fail[name] {
		return name, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return name, nil
}

func nf(name string) error { return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true} }

func (s *stub) LookupTXT(_ context.Context, name string) ([]string, error) {
	name, err := s.begin(name)
	if err != nil {
		return nil, err
	}
	if v := s.txt[name]; len(v) > 0 {
		return v, nil
	}
	return nil, nf(name)
}

func (s *stub) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	host, err := s.begin(host)
	if err != nil {
		return nil, err
	}
	var out []net.IPAddr
	for _, a := range s.ip[host] {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	if len(out) == 0 {
		return nil, nf(host)
	}
	return out, nil
}

func (s *stub) LookupAddr(_ context.Context, addr string) ([]string, error) {
	addr, err := s.begin(addr)
	if err != nil {
		return nil, err
	}
	if v := s.ptr[addr]; len(v) > 0 {
		return v, nil
	}
	return nil, nf(addr)
}

func (s *stub) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	name, err := s.begin(name)
	if err != nil {
		return nil, err
	}
	if v := s.mx[name]; len(v) > 0 {
		return v, nil
	}
	return nil, nf(name)
}

func (s *stub) LookupSOA(_ context.Context, name string) (preflight.SOA, error) {
	name, err := s.begin(name)
	if err != nil {
		return preflight.SOA{}, err
	}
	if v, ok := s.soa[name]; ok {
		return v, nil
	}
	return preflight.SOA{}, nf(name)
}

// setup is a healthy configuration: From news.example.jp, relay
// smtp.relay.example (203.0.113.10) with forward-confirmed PTR, SPF on
// both domains, an Ed25519 DKIM key at nl._domainkey.news.example.jp,
// DMARC p=none with rua, and both names inside the example.jp zone.
type setup struct {
	cfg preflight.Config
	r   *stub
	key crypto.Signer
}

func healthy(t *testing.T) *setup {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := mailer.DKIMPublicKeyTXT(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	r := newStub()
	r.ip["smtp.relay.example"] = []string{"203.0.113.10"}
	r.txt["news.example.jp"] = []string{"google-site-verification=abc", "v=spf1 ip4:203.0.113.10 -all"}
	r.txt["bounce.news.example.jp"] = []string{"v=spf1 ip4:203.0.113.0/24 -all"}
	r.txt["nl._domainkey.news.example.jp"] = []string{txt}
	r.txt["_dmarc.news.example.jp"] = []string{"v=DMARC1; p=none; rua=mailto:dmarc@news.example.jp"}
	r.ptr["203.0.113.10"] = []string{"mail.news.example.jp."}
	r.ip["mail.news.example.jp"] = []string{"203.0.113.10"}
	soa := preflight.SOA{Zone: "example.jp", NS: "ns1.example.jp.", Serial: 2026010101}
	r.soa["news.example.jp"] = soa
	r.soa["bounce.news.example.jp"] = soa
	return &setup{r: r, key: key, cfg: preflight.Config{
		FromDomain:    "news.example.jp",
		DKIMDomain:    "news.example.jp",
		DKIMSelector:  "nl",
		DKIMPublicKey: key.Public(),
		Relay:         mailer.RelayConfig{Host: "smtp.relay.example", Port: 587, TLS: mailer.TLSStartTLS},
	}}
}

func (s *setup) checker(t *testing.T) *preflight.Checker {
	t.Helper()
	c, err := preflight.New(s.cfg, s.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// want checks a result's status and that its line contains every part.
func want(t *testing.T, r preflight.Result, status preflight.Status, parts ...string) {
	t.Helper()
	line := r.String()
	if r.Status != status {
		t.Errorf("status %s, want %s: %s", r.Status, status, line)
	}
	if status == preflight.Fail && (r.Found == "" || r.Expected == "" || r.Fix == "") {
		t.Errorf("a failure must say what was found, what was expected and the fix: %s", line)
	}
	for _, p := range parts {
		if !strings.Contains(line, p) {
			t.Errorf("result lacks %q:\n%s", p, line)
		}
	}
}
