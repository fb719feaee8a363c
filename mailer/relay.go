package mailer

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// TLSMode is how a connection to the relay is protected.
type TLSMode int

// TLS modes. The zero value is the safe default: STARTTLS required.
const (
	// TLSStartTLS requires STARTTLS; a relay that does not offer it is an error.
	TLSStartTLS TLSMode = iota
	// TLSOpportunistic uses STARTTLS when the relay offers it, plain text otherwise.
	TLSOpportunistic
	// TLSNone never uses TLS (local test servers and sinks only).
	TLSNone
	// TLSImplicit speaks TLS from the first byte (smtps, usually port 465).
	TLSImplicit
)

// String returns the mode's name as written in an SMTP URL's tls parameter.
func (m TLSMode) String() string {
	switch m {
	case TLSStartTLS:
		return "starttls"
	case TLSOpportunistic:
		return "opportunistic"
	case TLSNone:
		return "none"
	case TLSImplicit:
		return "implicit"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Default relay ports.
const (
	DefaultPortSubmission = 587 // smtp:// with STARTTLS
	DefaultPortSMTPS      = 465 // smtps:// or tls=implicit
	DefaultPortPlain      = 25  // smtp:// with tls=none
)

// RelayConfig says how to reach the SMTP relay. Build it with ParseSMTPURL.
type RelayConfig struct {
	// Host is the relay's host name or IP address (no brackets).
	Host string
	// Port is the relay's TCP port.
	Port int
	// Username and Password enable AUTH when Username is not empty.
	Username string
	Password string
	// TLS is the TLS mode; the zero value requires STARTTLS.
	TLS TLSMode
}

// Addr returns host:port.
func (c RelayConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String returns the configuration as an SMTP URL with the password replaced
// by "xxxxx", safe to log and print.
func (c RelayConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: c.Addr()}
	if c.TLS == TLSImplicit {
		u.Scheme = "smtps"
	}
	if c.Username != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.Username, "xxxxx")
		} else {
			u.User = url.User(c.Username)
		}
	}
	if c.TLS != TLSImplicit {
		u.RawQuery = "tls=" + c.TLS.String()
	}
	return u.String()
}

// ParseSMTPURL parses a relay URL:
//
//	smtp://[user[:password]@]host[:port][?tls=starttls|opportunistic|none|implicit]
//	smtps://[user[:password]@]host[:port]
//
// smtp:// requires STARTTLS unless tls says otherwise; smtps:// (or
// tls=implicit) is TLS from the first byte. Default ports: 587 for STARTTLS
// and opportunistic, 465 for implicit TLS, 25 for tls=none. User name and
// password are percent-decoded. A password is refused over tls=none or
// opportunistic unless the host is a loopback address, so credentials never
// cross a network in clear. Errors wrap ErrInvalidSMTPURL, name the part
// that is wrong, and never echo the password.
func ParseSMTPURL(s string) (RelayConfig, error) {
	bad := func(part, format string, args ...any) (RelayConfig, error) {
		return RelayConfig{}, fmt.Errorf("%w: %s: %s", ErrInvalidSMTPURL, part, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return bad("url", "empty")
	}
	if strings.ContainsAny(s, "\r\n\t\x00 ") {
		return bad("url", "contains whitespace or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the input, password included: report only the cause.
		var ue *url.Error
		if e, ok := err.(*url.Error); ok {
			ue = e
			return bad("url", "%v", redactURLErr(ue.Err))
		}
		return bad("url", "cannot be parsed")
	}
	var cfg RelayConfig
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		cfg.TLS = TLSStartTLS
	case "smtps":
		cfg.TLS = TLSImplicit
	case "":
		return bad("scheme", "missing; want smtp:// or smtps://")
	default:
		return bad("scheme", "%q not supported; want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" {
		return bad("url", "want scheme://host, not scheme:opaque")
	}
	if u.Path != "" && u.Path != "/" {
		return bad("path", "must be empty")
	}
	if u.Fragment != "" {
		return bad("fragment", "must be empty")
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query", "%v", err)
	}
	for k, v := range q {
		switch k {
		case "tls":
			if len(v) != 1 {
				return bad("tls", "given %d times", len(v))
			}
			mode, ok := map[string]TLSMode{
				"starttls": TLSStartTLS, "opportunistic": TLSOpportunistic,
				"none": TLSNone, "implicit": TLSImplicit,
			}[strings.ToLower(v[0])]
			if !ok {
				return bad("tls", "%q: want none, starttls, opportunistic or implicit", v[0])
			}
			if cfg.TLS == TLSImplicit && mode != TLSImplicit {
				return bad("tls", "smtps:// is implicit TLS; tls=%s contradicts it", v[0])
			}
			cfg.TLS = mode
		default:
			return bad("query", "unknown parameter %q (only tls is known)", k)
		}
	}

	host := u.Hostname()
	if host == "" {
		return bad("host", "missing")
	}
	if strings.ContainsAny(host, "/?#@%") {
		return bad("host", "%q is not a host name", host)
	}
	if strings.Contains(host, ":") {
		if !strings.HasPrefix(u.Host, "[") {
			// "smtp://::1" reads as host ":" and port "1": IPv6 needs brackets.
			return bad("host", "%q: write an IPv6 address in brackets, e.g. smtp://[::1]:25", u.Host)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return bad("host", "%q is not an IPv6 address", host)
		}
	}
	cfg.Host = host
	switch p := u.Port(); {
	case p != "":
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port", "%q: want 1-65535", p)
		}
		cfg.Port = n
	case strings.HasSuffix(u.Host, ":"):
		return bad("port", "empty after ':'")
	case cfg.TLS == TLSImplicit:
		cfg.Port = DefaultPortSMTPS
	case cfg.TLS == TLSNone:
		cfg.Port = DefaultPortPlain
	default:
		cfg.Port = DefaultPortSubmission
	}

	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" {
			return bad("user", "empty user name before '@'")
		}
		if cfg.Password == "" {
			return bad("password", "missing for user %q", cfg.Username)
		}
		if strings.ContainsAny(cfg.Username+cfg.Password, "\r\n\x00") {
			return bad("userinfo", "contains control characters")
		}
		if (cfg.TLS == TLSNone || cfg.TLS == TLSOpportunistic) && !isLoopback(host) {
			return bad("tls", "a password would cross the network in clear with tls=%s to %s; use starttls or smtps", cfg.TLS, host)
		}
	}
	return cfg, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// redactURLErr reports a url.Parse failure without the input (which may hold
// the password).
func redactURLErr(err error) string {
	switch err.(type) {
	case url.InvalidHostError:
		return "invalid character in host"
	case url.EscapeError:
		return "invalid percent-escape"
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	return msg
}
