package subscribers

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits on addresses (RFC 5321 §4.5.3.1). MaxEmailInput bounds what
// NormalizeEmail looks at before trimming, so oversized input is refused
// cheaply.
const (
	MaxEmailLen   = 254
	MaxLocalLen   = 64
	MaxDomainLen  = 253
	MaxEmailInput = 1024
)

var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// NormalizeEmail returns the canonical form of an address: surrounding
// white space trimmed, the domain lower-cased and converted to ASCII
// (IDN domains become punycode, "例え.jp" → "xn--r8jz45g.jp"), the local
// part kept exactly as given. It accepts only what a bulk sender without
// SMTPUTF8 can deliver: a dot-atom ASCII local part of at most 64 octets, a
// domain name of at least two labels, 254 octets in all. A rejected address
// gives a *FieldError for field "email" (wrapping ErrInvalid) whose reason
// names the problem without repeating the address.
func NormalizeEmail(s string) (string, error) {
	if len(s) > MaxEmailInput {
		return "", emailErr("longer than %d bytes", MaxEmailInput)
	}
	if !utf8.ValidString(s) {
		return "", emailErr("not valid UTF-8")
	}
	s = strings.TrimFunc(s, unicode.IsSpace)
	if s == "" {
		return "", emailErr("empty")
	}
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n':
			return "", emailErr("contains a line break (CR or LF)")
		case unicode.IsControl(r):
			return "", emailErr("contains a control character")
		case unicode.IsSpace(r):
			return "", emailErr("contains white space")
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", emailErr("missing @")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return "", err
	}
	if domain == "" {
		return "", emailErr("missing domain after @")
	}
	if strings.HasPrefix(domain, "[") {
		return "", emailErr("address literals ([…]) are not accepted")
	}
	if strings.HasSuffix(domain, ".") {
		return "", emailErr("domain ends with a dot")
	}
	ascii, err := idnaProfile.ToASCII(strings.ToLower(domain))
	if err != nil {
		return "", emailErr("domain is not a valid (internationalised) domain name")
	}
	ascii = strings.ToLower(ascii)
	if err := checkDomain(ascii); err != nil {
		return "", err
	}
	out := local + "@" + ascii
	if len(out) > MaxEmailLen {
		return "", emailErr("longer than %d octets", MaxEmailLen)
	}
	return out, nil
}

func emailErr(format string, args ...any) *FieldError {
	return fieldErr("email", format, args...)
}

// atext (RFC 5322 §3.2.3) besides letters and digits.
const atextSpecials = "!#$%&'*+-/=?^_`{|}~"

func checkLocal(local string) error {
	switch {
	case local == "":
		return emailErr("missing local part before @")
	case len(local) > MaxLocalLen:
		return emailErr("local part longer than %d octets", MaxLocalLen)
	case strings.HasPrefix(local, `"`):
		return emailErr("quoted local parts are not accepted")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return emailErr("local part has a leading, trailing or double dot")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= utf8.RuneSelf:
			return emailErr("non-ASCII local part (needs SMTPUTF8, which Tayori does not use)")
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.':
		case strings.IndexByte(atextSpecials, c) >= 0:
		default:
			return emailErr("local part contains %q", c)
		}
	}
	return nil
}

func checkDomain(d string) error {
	if len(d) > MaxDomainLen {
		return emailErr("domain longer than %d octets", MaxDomainLen)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return emailErr("domain needs at least two labels (like example.jp)")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return emailErr("domain label empty or longer than 63 octets")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return emailErr("domain label starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return emailErr("domain contains %q", c)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return emailErr("domain's last label is numeric")
	}
	return nil
}

// emailKey is the key addresses are unique by: the normalised address
// lower-cased whole. Delivery keeps the local part's case, but two
// subscribers differing only in it would be one mailbox at every real
// provider.
func emailKey(normalised string) string { return strings.ToLower(normalised) }
