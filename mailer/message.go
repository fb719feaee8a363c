package mailer

import (
	"net/textproto"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Address is a mailbox with an optional display name (any Unicode; it is
// RFC 2047-encoded when it is not plain ASCII).
type Address struct {
	// Name is the display name, e.g. "AI政策動向"; may be empty.
	Name string
	// Email is the addr-spec, e.g. "newsletter@news.example.go.jp". Only
	// ASCII addresses are accepted (no SMTPUTF8).
	Email string
}

// Domain returns the part of Email after the last '@', lower-cased.
func (a Address) Domain() string {
	i := strings.LastIndexByte(a.Email, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(a.Email[i+1:])
}

// Header is one extra header field.
type Header struct {
	// Name is the field name, e.g. "X-Tayori-Issue".
	Name string
	// Value is the unfolded value; non-ASCII is RFC 2047-encoded.
	Value string
}

// Message is one copy of a message for one recipient. Build it into bytes
// with a Builder. Header values must not contain CR, LF or other control
// characters: the Builder refuses them (header injection) with an error naming
// the field.
type Message struct {
	// From is the author; required. Its domain is the default Message-ID
	// domain.
	From Address
	// To is the one recipient; required.
	To Address
	// ReplyTo is optional (zero Address means none).
	ReplyTo Address
	// Subject is required; any Unicode.
	Subject string

	// ListID is the list identifier without angle brackets, e.g.
	// "ai-policy-monthly.news.example.go.jp" (RFC 2919); optional.
	ListID string
	// ListName is the optional phrase before the List-Id, e.g. "AI政策動向".
	ListName string
	// UnsubscribeURL is the one-click unsubscribe URL (RFC 8058). It must be
	// https unless the Builder allows insecure URLs. When set, the message
	// carries List-Unsubscribe and List-Unsubscribe-Post: List-Unsubscribe=One-Click.
	UnsubscribeURL string
	// UnsubscribeMailto is an optional second unsubscribe URI, "mailto:...".
	UnsubscribeMailto string
	// ListHelp is an optional help URL (List-Help).
	ListHelp string
	// AnnounceOnly adds "List-Post: NO" (a list readers cannot post to).
	AnnounceOnly bool
	// FeedbackID is the Feedback-ID value (a:b:c:SenderId); must hold no
	// per-recipient value. Optional.
	FeedbackID string
	// MessageID is this copy's Message-ID without angle brackets
	// ("left@domain"), for a sender that names each copy (to tie a later
	// bounce or complaint to it). Empty: BuilderOptions.MessageID, or 128
	// random bits on the From domain.
	MessageID string
	// Bulk adds "Precedence: bulk".
	Bulk bool
	// Headers are extra header fields. Names must be valid field names and
	// must not be ones the Builder writes itself.
	Headers []Header

	// Text is the text/plain body (required). Line ends are canonicalised to
	// CRLF before base64 encoding (RFC 2046 §4.1.1); the bytes are otherwise
	// unchanged.
	Text string
	// HTML is the text/html body; when empty the message is text/plain only.
	HTML string

	// TextBody, instead of Text, gives the text/plain part as fixed text
	// shared by many copies (a Layout) and this copy's values: the same
	// bytes on the wire, built without re-encoding the fixed text for each
	// copy. Set Text or TextBody, not both.
	TextBody *Body
	// HTMLBody, instead of HTML, gives the text/html part as a Layout and
	// this copy's values.
	HTMLBody *Body
}

// Limits on message input.
const (
	// MaxHeaderValueBytes caps any one header value (before encoding).
	MaxHeaderValueBytes = 2000
	// DefaultMaxBodyBytes caps each body when BuilderOptions.MaxBodyBytes is 0.
	DefaultMaxBodyBytes = 10 << 20
)

// managedHeaders are written by the Builder; Message.Headers may not set them.
var managedHeaders = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Reply-To": true, "Sender": true,
	"Subject": true, "Date": true, "Message-Id": true, "Mime-Version": true,
	"Content-Type": true, "Content-Transfer-Encoding": true, "Return-Path": true,
	"List-Id": true, "List-Unsubscribe": true, "List-Unsubscribe-Post": true,
	"List-Help": true, "List-Post": true, "Feedback-Id": true, "Auto-Submitted": true,
	"Precedence": true, "Dkim-Signature": true,
}

// validate checks m and returns a *ValidationError listing every problem, or nil.
func (m *Message) validate(allowInsecureUnsub bool, maxBody int) error {
	var ve ValidationError
	checkAddr(&ve, "From", m.From, true)
	checkAddr(&ve, "To", m.To, true)
	if m.ReplyTo != (Address{}) {
		checkAddr(&ve, "Reply-To", m.ReplyTo, true)
	}
	if m.Subject == "" {
		ve.add("Subject", "missing")
	}
	checkValue(&ve, "Subject", m.Subject)
	if m.ListID != "" {
		checkValue(&ve, "List-Id", m.ListID)
		if !isDotAtom(m.ListID) || !strings.Contains(m.ListID, ".") || len(m.ListID) > 255 {
			ve.add("List-Id", "%q is not a dot-atom list identifier like label.example.jp (without <>)", m.ListID)
		}
	}
	checkValue(&ve, "List-Id name", m.ListName)
	if m.ListName != "" && m.ListID == "" {
		ve.add("List-Id name", "given without ListID")
	}
	if m.UnsubscribeURL != "" {
		checkValue(&ve, "List-Unsubscribe", m.UnsubscribeURL)
		checkURI(&ve, "List-Unsubscribe", m.UnsubscribeURL)
		switch {
		case hasPrefixFold(m.UnsubscribeURL, "https://"):
		case hasPrefixFold(m.UnsubscribeURL, "http://") && allowInsecureUnsub:
		default:
			ve.add("List-Unsubscribe", "one-click URL must be https:// (RFC 8058)")
		}
	}
	if m.UnsubscribeMailto != "" {
		checkValue(&ve, "List-Unsubscribe mailto", m.UnsubscribeMailto)
		checkURI(&ve, "List-Unsubscribe mailto", m.UnsubscribeMailto)
		if !hasPrefixFold(m.UnsubscribeMailto, "mailto:") {
			ve.add("List-Unsubscribe mailto", "must start with mailto:")
		}
		if m.UnsubscribeURL == "" {
			ve.add("List-Unsubscribe mailto", "given without the https one-click URL")
		}
	}
	if m.ListHelp != "" {
		checkValue(&ve, "List-Help", m.ListHelp)
		checkURI(&ve, "List-Help", m.ListHelp)
	}
	if m.FeedbackID != "" {
		checkValue(&ve, "Feedback-ID", m.FeedbackID)
		if strings.Count(m.FeedbackID, ":") != 3 || !isASCIIToken(m.FeedbackID) || len(m.FeedbackID) > 200 {
			ve.add("Feedback-ID", "%q: want four colon-separated ASCII fields a:b:c:SenderId", m.FeedbackID)
		}
	}
	seen := make(map[string]bool, len(m.Headers))
	for i, h := range m.Headers {
		field := "Header[" + strconv.Itoa(i) + "]"
		if !isFieldName(h.Name) {
			ve.add(field, "invalid field name %q", h.Name)
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(h.Name)
		field = h.Name
		if managedHeaders[canon] {
			ve.add(field, "is written by the mailer and cannot be set as an extra header")
		}
		if seen[canon] {
			ve.add(field, "given twice")
		}
		seen[canon] = true
		checkValue(&ve, field, h.Value)
	}
	checkBody(&ve, "Text", m.Text, m.TextBody, maxBody)
	checkBody(&ve, "HTML", m.HTML, m.HTMLBody, maxBody)
	if m.Text == "" && (m.TextBody == nil || m.TextBody.Layout == nil || m.TextBody.size() == 0) {
		ve.add("Text", "missing: a text/plain part is required")
	}
	if len(ve.Problems) > 0 {
		return &ve
	}
	return nil
}

// checkBody checks one body part, given as text s or as body b.
func checkBody(ve *ValidationError, field, s string, b *Body, maxBody int) {
	if b != nil {
		if s != "" {
			ve.add(field, "given both as a string and as a Body")
		}
		if p := b.problem(); p != "" {
			ve.add(field+"Body", "%s", p)
			return
		}
		if n := b.size(); n > maxBody {
			ve.add(field, "%d bytes exceeds the limit of %d", n, maxBody)
		}
		return // the Layout's fixed text was checked when it was made
	}
	if len(s) > maxBody {
		ve.add(field, "%d bytes exceeds the limit of %d", len(s), maxBody)
	}
	if !utf8.ValidString(s) {
		ve.add(field, "not valid UTF-8")
	}
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case, without the copy
// strings.ToLower makes of a value with capitals (a token in a URL).
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// ValidateHeaderValue reports whether v may be used as the value of header
// field: valid UTF-8, at most MaxHeaderValueBytes, and free of CR, LF and other
// control characters (tab excepted). The error is a *ValidationError naming
// field.
func ValidateHeaderValue(field, v string) error {
	var ve ValidationError
	checkValue(&ve, field, v)
	if len(ve.Problems) > 0 {
		return &ve
	}
	return nil
}

func checkValue(ve *ValidationError, field, v string) {
	if len(v) > MaxHeaderValueBytes {
		ve.add(field, "%d bytes exceeds the limit of %d", len(v), MaxHeaderValueBytes)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			ve.add(field, "contains CR or LF at byte %d (header injection)", i)
			return
		}
		if (c < 0x20 && c != '\t') || c == 0x7f {
			ve.add(field, "contains control character 0x%02x at byte %d", c, i)
			return
		}
	}
	if !utf8.ValidString(v) {
		ve.add(field, "not valid UTF-8")
	}
}

func checkAddr(ve *ValidationError, field string, a Address, required bool) {
	if a.Email == "" {
		if required {
			ve.add(field, "address missing")
		}
		return
	}
	n := len(ve.Problems)
	checkValue(ve, field+" name", a.Name)
	checkValue(ve, field, a.Email)
	if len(ve.Problems) > n {
		return
	}
	for i := 0; i < len(a.Email); i++ {
		if a.Email[i] >= 0x80 {
			ve.add(field, "non-ASCII address needs SMTPUTF8, which is not supported")
			return
		}
	}
	if problem := addrSpecProblem(a.Email); problem != "" {
		ve.add(field, "%q %s", a.Email, problem)
	}
}

// addrSpecProblem checks a plain RFC 5321 mailbox: dot-atom local part
// (quoted local parts are refused) at a host name. It returns "" when the
// address is fine. No allocation: it runs for every message.
func addrSpecProblem(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "is not an address (want local@domain)"
	}
	local, dom := s[:at], s[at+1:]
	if len(local) > 64 || len(s) > 254 {
		return "is too long (local part ≤ 64, whole ≤ 254 octets)"
	}
	if !isDotAtom(local) {
		return "has an invalid local part (want a dot-atom; no spaces, <>, commas or quotes)"
	}
	if strings.EqualFold(dom, "localhost") {
		return ""
	}
	if len(dom) > 253 || !strings.Contains(dom, ".") {
		return "has an invalid domain (want a host name like example.jp)"
	}
	for label := range strings.SplitSeq(dom, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "has an invalid domain (want a host name like example.jp)"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "has an invalid domain (want a host name like example.jp)"
			}
		}
	}
	return ""
}

// MaxURIBytes caps list header URIs so their unfoldable line stays under
// the 998-octet limit.
const MaxURIBytes = 900

func checkURI(ve *ValidationError, field, v string) {
	if len(v) > MaxURIBytes {
		ve.add(field, "URI of %d bytes exceeds %d", len(v), MaxURIBytes)
	}
	if strings.ContainsAny(v, " <>,\"\t") {
		ve.add(field, "URI must not contain spaces, '<', '>', ',' or '\"'")
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			ve.add(field, "URI must be ASCII (percent-encode it)")
			return
		}
	}
}

// isFieldName: RFC 5322 ftext, printable ASCII except ':'.
func isFieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' {
			continue
		}
		if strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) < 0 {
			return false
		}
	}
	return true
}

func isASCIIToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
