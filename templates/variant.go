package templates

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrInvalidPersonal is returned by [Variant.Personalize] when a reader's
// links are not absolute http or https URLs.
var ErrInvalidPersonal = errors.New("templates: invalid personal values")

// Personal holds the parts of a message that differ from reader to reader.
type Personal struct {
	// Name is the reader's name as they gave it, e.g. "山田 太郎". The
	// greeting reads "山田 太郎 様"; an empty Name greets "購読者の皆様".
	// Names longer than 120 bytes are cut at a character boundary.
	Name string
	// UnsubscribeURL is the reader's signed one-click unsubscribe page (the
	// same endpoint as the List-Unsubscribe header). Required.
	UnsubscribeURL string
	// PreferencesURL is the reader's signed page for changing the regions
	// and topics they receive. Required.
	PreferencesURL string
}

// Check reports whether p can be filled into a message: both URLs must be
// absolute http or https URLs without spaces or control characters.
func (p Personal) Check() error {
	var errs []error
	for _, f := range [...]struct{ name, v string }{{"unsubscribe URL", p.UnsubscribeURL}, {"preferences URL", p.PreferencesURL}} {
		if err := checkLink(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrInvalidPersonal, f.name, err))
		}
	}
	return errors.Join(errs...)
}

func checkLink(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return fmt.Errorf("%q contains a space or control character", s)
		}
	}
	if plainLink(s) {
		return nil // checked for every copy: no url.Parse for the usual link
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// plainLink reports an https or http URL with a host of letters, digits,
// dots and hyphens (and an optional port), followed by nothing or a path of
// URL-safe characters: what Tayori's own signed links look like, and
// certainly what url.Parse accepts as an absolute http(s) URL.
func plainLink(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	host, path, _ := strings.Cut(rest, "/")
	if host == "" || host[0] == '.' || host[0] == '-' || host[0] == ':' {
		return false
	}
	colon := false
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
			if colon && !(c >= '0' && c <= '9') {
				return false
			}
		case c == ':' && !colon && i < len(host)-1:
			colon = true
		default:
			return false
		}
	}
	for i := 0; i < len(path); i++ {
		if !pathSafe[path[i]] {
			return false
		}
	}
	return true
}

// pathSafe marks the bytes plainLink accepts in a path: unreserved
// characters (RFC 3986) and '/'.
var pathSafe = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", byte(c)) >= 0
	}
	return t
}()

// field is a per-reader value a placeholder stands for.
type field uint8

const (
	fieldName field = iota
	fieldUnsubscribe
	fieldPreferences
	numFields
)

// The placeholders the theme and the text writer put where per-reader values
// go. They consist of ASCII letters, digits and hyphens only, so that they
// pass through html/template (in text and in href attributes) unchanged, and
// editor text that contains the common prefix is rejected by Render.
const placeholderPrefix = "TAYORI-PH-9f3c2a-"

var placeholders = [numFields]string{
	fieldName:        placeholderPrefix + "NAME",
	fieldUnsubscribe: placeholderPrefix + "UNSUBSCRIBE",
	fieldPreferences: placeholderPrefix + "PREFERENCES",
}

// segments is a rendered part split at placeholders: lits[0] f[0] lits[1]
// f[1] … lits[n]. size is the total length of the literal text.
type segments struct {
	lits   []string
	fields []field
	size   int
}

// split cuts s at every placeholder. It fails if a placeholder is missing,
// which would mean a reader's copy without its unsubscribe link.
func split(s string, want ...field) (segments, error) {
	var sg segments
	seen := [numFields]int{}
	for {
		i := strings.Index(s, placeholderPrefix)
		if i < 0 {
			break
		}
		rest := s[i:]
		f := numFields
		for k, ph := range placeholders {
			if strings.HasPrefix(rest, ph) {
				f = field(k)
				break
			}
		}
		if f == numFields {
			return segments{}, fmt.Errorf("templates: unknown placeholder at byte %d", i)
		}
		sg.lits = append(sg.lits, s[:i])
		sg.fields = append(sg.fields, f)
		sg.size += i
		seen[f]++
		s = s[i+len(placeholders[f]):]
	}
	sg.lits = append(sg.lits, s)
	sg.size += len(s)
	for _, f := range want {
		if seen[f] == 0 {
			return segments{}, fmt.Errorf("templates: rendered part lacks placeholder %s", placeholders[f])
		}
	}
	return sg, nil
}

// Variant is one rendered copy of an issue for a set of readers: the HTML
// and plain-text parts with placeholders for each reader's name and links.
// A Variant is immutable and safe for concurrent use.
type Variant struct {
	// Slug is the slug.
	Slug string
	// Key is the [Selection.Key] of the items this variant holds.
	Key string
	// Subject is the subject line: the title.
	Subject string
	// Items is the number of items included.
	Items int
	// Sections is the number of sections included (sections left without
	// items are dropped).
	Sections int

	html segments
	text segments
}

// HTMLSize returns the size in bytes of the HTML part without the personal
// values, for buffer sizing and size checks.
func (v *Variant) HTMLSize() int { return v.html.size }

// TextSize returns the size in bytes of the text part without the personal
// values.
func (v *Variant) TextSize() int { return v.text.size }

// AppendHTML appends the HTML part for the reader p to dst and returns the
// extended buffer. Personal values are HTML-escaped. It does not validate
// p: call [Personal.Check] first, or use [Variant.Personalize].
func (v *Variant) AppendHTML(dst []byte, p Personal) []byte {
	return v.html.appendTo(dst, &p, true)
}

// AppendText appends the plain-text part for the reader p to dst and
// returns the extended buffer. Control characters in the name are replaced
// by spaces. It does not validate p.
func (v *Variant) AppendText(dst []byte, p Personal) []byte {
	return v.text.appendTo(dst, &p, false)
}

// Personalize validates p and returns the reader's HTML and text parts in
// newly allocated memory. A delivery worker that sends many messages does
// better to reuse buffers with [Variant.AppendHTML] and [Variant.AppendText],
// which allocate nothing.
func (v *Variant) Personalize(p Personal) (html, text []byte, err error) {
	if err := p.Check(); err != nil {
		return nil, nil, err
	}
	// One allocation for both parts; each has room for its worst case
	// (every personal byte escaped to at most six), so neither grows.
	hn := v.html.size + personalSize(&p, len(v.html.fields))*6
	tn := v.text.size + personalSize(&p, len(v.text.fields))
	buf := make([]byte, 0, hn+tn)
	html = v.AppendHTML(buf[:0:hn], p)
	text = v.AppendText(buf[hn:hn:hn+tn], p)
	return html, text, nil
}

func personalSize(p *Personal, n int) int {
	m := max(min(len(p.Name), maxNameBytes)+len(greetingSuffix), len(anonymousGreeting), len(p.UnsubscribeURL), len(p.PreferencesURL))
	return n * m
}

const (
	greetingSuffix    = " 様"
	anonymousGreeting = "購読者の皆様"
)

func (sg *segments) appendTo(dst []byte, p *Personal, html bool) []byte {
	for i, lit := range sg.lits {
		dst = append(dst, lit...)
		if i == len(sg.fields) {
			break
		}
		dst = sg.appendSlot(dst, i, p, html)
	}
	return dst
}

// appendSlot appends the value of slot i (between lits[i] and lits[i+1]).
func (sg *segments) appendSlot(dst []byte, i int, p *Personal, html bool) []byte {
	switch sg.fields[i] {
	case fieldName:
		name := truncateName(p.Name)
		if strings.TrimSpace(name) == "" {
			return append(dst, anonymousGreeting...)
		}
		if html {
			dst = appendHTMLEscaped(dst, name)
		} else {
			dst = appendTextName(dst, name)
		}
		return append(dst, greetingSuffix...)
	case fieldUnsubscribe:
		return appendValue(dst, p.UnsubscribeURL, html)
	case fieldPreferences:
		return appendValue(dst, p.PreferencesURL, html)
	}
	return dst
}

// TextFixed returns the plain-text part cut at its per-reader slots: the
// part for reader p is TextFixed()[0], slot 0's value, TextFixed()[1], …,
// TextFixed()[n], where [Variant.AppendTextSlot] writes slot i's value.
// It lets a mail builder prepare the fixed text once for all readers.
func (v *Variant) TextFixed() []string { return slices.Clone(v.text.lits) }

// HTMLFixed is [Variant.TextFixed] for the HTML part.
func (v *Variant) HTMLFixed() []string { return slices.Clone(v.html.lits) }

// AppendTextSlot appends the value of the text part's slot i for p (see
// [Variant.TextFixed]). It does not validate p.
func (v *Variant) AppendTextSlot(dst []byte, i int, p Personal) []byte {
	return v.text.appendSlot(dst, i, &p, false)
}

// AppendHTMLSlot appends the value of the HTML part's slot i for p,
// HTML-escaped (see [Variant.HTMLFixed]). It does not validate p.
func (v *Variant) AppendHTMLSlot(dst []byte, i int, p Personal) []byte {
	return v.html.appendSlot(dst, i, &p, true)
}

// maxNameBytes bounds the name in the greeting: longer names are cut at
// a character boundary, so that a bogus name cannot bloat every part.
const maxNameBytes = 120

func truncateName(s string) string {
	if len(s) <= maxNameBytes {
		return s
	}
	i := maxNameBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func appendValue(dst []byte, s string, html bool) []byte {
	if html {
		return appendHTMLEscaped(dst, s)
	}
	return append(dst, s...)
}

// appendHTMLEscaped escapes s for HTML text and quoted attribute values.
func appendHTMLEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// appendTextName appends a name to the text part, turning control
// characters (a line break would break the layout) into spaces and
// dropping invalid UTF-8.
func appendTextName(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
		case r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029':
			dst = append(dst, ' ')
		default:
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}
