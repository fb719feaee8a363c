package mailer_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/mailer"
)

func TestParseSMTPURL(t *testing.T) {
	ok := []struct {
		in   string
		want mailer.RelayConfig
		str  string
	}{
		{"smtp://relay.example.jp", mailer.RelayConfig{Host: "relay.example.jp", Port: 587, TLS: mailer.TLSStartTLS},
			"smtp://relay.example.jp:587?tls=starttls"},
		{"smtp://user:p%40ss@relay.example.jp:2525?tls=starttls",
			mailer.RelayConfig{Host: "relay.example.jp", Port: 2525, Username: "user", Password: "p@ss", TLS: mailer.TLSStartTLS},
			"smtp://user:xxxxx@relay.example.jp:2525?tls=starttls"},
		{"smtps://u:p@relay.example.jp", mailer.RelayConfig{Host: "relay.example.jp", Port: 465, Username: "u", Password: "p", TLS: mailer.TLSImplicit},
			"smtps://u:xxxxx@relay.example.jp:465"},
		{"smtp://relay.example.jp?tls=implicit", mailer.RelayConfig{Host: "relay.example.jp", Port: 465, TLS: mailer.TLSImplicit},
			"smtps://relay.example.jp:465"},
		{"smtp://127.0.0.1:1025?tls=none", mailer.RelayConfig{Host: "127.0.0.1", Port: 1025, TLS: mailer.TLSNone},
			"smtp://127.0.0.1:1025?tls=none"},
		{"smtp://localhost?tls=none", mailer.RelayConfig{Host: "localhost", Port: 25, TLS: mailer.TLSNone},
			"smtp://localhost:25?tls=none"},
		{"SMTP://u:p@[::1]:25?tls=NONE", mailer.RelayConfig{Host: "::1", Port: 25, Username: "u", Password: "p", TLS: mailer.TLSNone},
			"smtp://u:xxxxx@[::1]:25?tls=none"},
		{"smtp://relay.example.jp/?tls=opportunistic", mailer.RelayConfig{Host: "relay.example.jp", Port: 587, TLS: mailer.TLSOpportunistic},
			"smtp://relay.example.jp:587?tls=opportunistic"},
	}
	for _, tc := range ok {
		got, err := mailer.ParseSMTPURL(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.str {
			t.Errorf("%q: String() = %q, want %q", tc.in, got.String(), tc.str)
		}
	}

	bad := []struct{ in, part string }{
		{"", "url"},
		{"relay.example.jp:25", "scheme"},
		{"http://relay.example.jp", "scheme"},
		{"smtp://", "host"},
		{"smtp://relay.example.jp:0", "port"},
		{"smtp://relay.example.jp:70000", "port"},
		{"smtp://relay.example.jp:abc", "url"},
		{"smtp://relay.example.jp:", "port"},
		{"smtp://relay.example.jp?tls=maybe", "tls"},
		{"smtp://relay.example.jp?tls=none&tls=starttls", "tls"},
		{"smtps://relay.example.jp?tls=starttls", "tls"},
		{"smtp://relay.example.jp?foo=bar", "query"},
		{"smtp://relay.example.jp/path", "path"},
		{"smtp://relay.example.jp#frag", "fragment"},
		{"smtp://user@relay.example.jp", "password"},
		{"smtp://:pw@relay.example.jp", "user"},
		{"smtp://u:secretpw@relay.example.jp?tls=none", "tls"},
		{"smtp://u:secretpw@relay.example.jp?tls=opportunistic", "tls"},
		{"smtp://relay.example.jp\r\n:25", "url"},
		{"smtp://u:secretpw@bad host/", "url"},
	}
	for _, tc := range bad {
		_, err := mailer.ParseSMTPURL(tc.in)
		if !errors.Is(err, mailer.ErrInvalidSMTPURL) {
			t.Errorf("%q: err %v, want ErrInvalidSMTPURL", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.part+":") {
			t.Errorf("%q: error %q does not name %q", tc.in, err, tc.part)
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%q: error leaks the password: %v", tc.in, err)
		}
	}
}

// FuzzParseSMTPURL: no panic; errors wrap ErrInvalidSMTPURL and never
// contain the password; a parsed config round-trips through String (with
// the password redacted) to the same host, port, user and TLS mode.
func FuzzParseSMTPURL(f *testing.F) {
	for _, s := range []string{
		"smtp://relay.example.jp",                       // STARTTLS, default port
		"smtp://user:pass@relay.example.jp:587",         // submission with AUTH
		"smtps://u:p@relay.example.jp",                  // implicit TLS
		"smtp://127.0.0.1:1025?tls=none",                // local test server
		"smtp://u:p@[::1]:25?tls=none",                  // IPv6 loopback
		"smtp://relay.example.jp?tls=opportunistic",     // opportunistic
		"smtp://u:p%3Aw%40rd@relay.example.jp?tls=none", // escaped password, refused off loopback
		"smtp://relay.example.jp:99999",                 // bad port
		"smtp://%zz@relay",                              // bad escape
		"smtp://relay.example.jp?tls=none&x=1",          // unknown parameter
		"smtp:relay",                                    // opaque
		"smtp://::1",                                    // IPv6 without brackets (found by fuzzing)
		"://",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := mailer.ParseSMTPURL(s)
		if err != nil {
			if !errors.Is(err, mailer.ErrInvalidSMTPURL) {
				t.Fatalf("error does not wrap ErrInvalidSMTPURL: %v", err)
			}
			return
		}
		if cfg.Host == "" || cfg.Port < 1 || cfg.Port > 65535 {
			t.Fatalf("accepted %q as %+v", s, cfg)
		}
		if cfg.Password != "" && strings.Contains(cfg.String(), ":"+cfg.Password+"@") && cfg.Password != "xxxxx" {
			t.Fatalf("String() leaks the password: %s", cfg)
		}
		again, err := mailer.ParseSMTPURL(cfg.String())
		if cfg.Password == "" {
			if err != nil {
				t.Fatalf("String() %q of %q does not parse: %v", cfg.String(), s, err)
			}
			if again != cfg {
				t.Fatalf("round trip %q -> %+v -> %q -> %+v", s, cfg, cfg.String(), again)
			}
			return
		}
		if err == nil && (again.Host != cfg.Host || again.Port != cfg.Port || again.Username != cfg.Username ||
			again.TLS != cfg.TLS || again.Password != "xxxxx") {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v", s, cfg, cfg.String(), again)
		}
	})
}

func ExampleParseSMTPURL() {
	cfg, err := mailer.ParseSMTPURL("smtp://tayori:s3cret@smtp.example.jp?tls=starttls")
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Host, cfg.Port, cfg.TLS, cfg.Username)
	fmt.Println(cfg) // the password is redacted
	_, err = mailer.ParseSMTPURL("smtp://tayori:s3cret@smtp.example.jp?tls=none")
	fmt.Println(err)
	// Output:
	// smtp.example.jp 587 starttls tayori
	// smtp://tayori:xxxxx@smtp.example.jp:587?tls=starttls
	// mailer: invalid SMTP URL: tls: a password would cross the network in clear with tls=none to smtp.example.jp; use starttls or smtps
}
