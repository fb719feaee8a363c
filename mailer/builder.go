package mailer

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// BuilderOptions configures a Builder. Every field is optional.
type BuilderOptions struct {
	// Now is the clock read once per Build for the Date header (send time).
	// Nil means time.Now.
	Now func() time.Time
	// Location is the time zone the Date header is written in. Nil keeps the
	// clock's own location.
	Location *time.Location
	// Domain is the right-hand side of generated Message-IDs. Empty means
	// the From address's domain.
	Domain string
	// MessageID returns a Message-ID without angle brackets for one copy
	// ("left@domain"). Nil means NewMessageID(Domain or From's domain): 128
	// random bits, so every copy gets a new one. Tests inject a fixed one.
	MessageID func(domain string) string
	// Boundary returns the multipart boundary (letters, digits, '_' and '-'
	// only). Nil means a random one per message.
	Boundary func() string
	// AllowInsecureUnsubscribe permits an http:// one-click unsubscribe URL.
	// For local demos on http://127.0.0.1 only: RFC 8058 requires https.
	AllowInsecureUnsubscribe bool
	// GoMailWriter writes through go-mail's Msg.WriteTo instead of the
	// direct writer. Both give identical bytes (tests check it); the direct
	// writer is ~4x faster and allocates one buffer.
	GoMailWriter bool
	// DKIM, when not nil, signs every built message.
	DKIM *DKIMSigner
	// MaxBodyBytes caps each body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
}

// Builder turns Messages into raw RFC 5322 bytes (multipart/alternative,
// UTF-8, base64, CRLF), optionally DKIM-signed. It is safe for concurrent use.
type Builder struct {
	opts BuilderOptions
	// The last encoded From, Subject and List-Id phrase: the same for every
	// copy of a send, so each is encoded once rather than once a copy.
	enc [numCached]atomic.Pointer[encoded]
}

const (
	cachedFrom = iota
	cachedSubject
	cachedListName
	numCached
)

type encoded struct{ a, b, out string }

// cached returns f() for the inputs (a, b), from the slot when they are the
// ones it last saw.
func (b *Builder) cached(slot int, x, y string, f func() string) string {
	if e := b.enc[slot].Load(); e != nil && e.a == x && e.b == y {
		return e.out
	}
	out := f()
	b.enc[slot].Store(&encoded{x, y, out})
	return out
}

// NewBuilder returns a Builder.
func NewBuilder(opts BuilderOptions) (*Builder, error) {
	if opts.Domain != "" && !isDotAtom(opts.Domain) {
		return nil, fmt.Errorf("mailer: BuilderOptions.Domain %q is not a domain", opts.Domain)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &Builder{opts: opts}, nil
}

// Built is a finished message.
type Built struct {
	// Raw is exactly what to send in DATA (signed when DKIM is configured).
	Raw []byte
	// MessageID is the Message-ID without angle brackets.
	MessageID string
	// Date is the time written in the Date header.
	Date time.Time

	canonical bool // Raw came from the Builder: CRLF line ends only
}

// NewMessageID returns "<26 base32 chars>@domain": 128 random bits from the
// runtime's ChaCha8 generator, unique per call.
func NewMessageID(domain string) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var out [26 + 1]byte
	idEncoding.Encode(out[:], b[:])
	return string(out[:26]) + "@" + domain
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func randomBoundary() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var out [20]byte
	idEncoding.Encode(out[:], b[:])
	return "tayori_" + string(out[:])
}

// Build validates m, writes it with go-mail and signs it when DKIM is
// configured. A bad message gives a *ValidationError (errors.Is
// ErrInvalidMessage) listing every problem by field.
func (b *Builder) Build(m *Message) (Built, error) { return b.AppendBuild(nil, m) }

// AppendBuild is Build writing the message into dst's storage when it is
// large enough (Built.Raw then aliases dst), so a sender that sends one
// message after another can reuse one buffer instead of allocating each
// message anew. With DKIM, Raw is a fresh buffer.
func (b *Builder) AppendBuild(dst []byte, m *Message) (Built, error) {
	if m == nil {
		return Built{}, &ValidationError{Problems: []FieldError{{Field: "Message", Problem: "nil"}}}
	}
	if err := m.validate(b.opts.AllowInsecureUnsubscribe, b.opts.MaxBodyBytes); err != nil {
		return Built{}, err
	}
	if b.opts.DKIM != nil {
		// DMARC needs d= to equal the From domain or a parent of it.
		if fd, d := m.From.Domain(), b.opts.DKIM.Domain(); fd != d && !strings.HasSuffix(fd, "."+d) {
			return Built{}, &ValidationError{Problems: []FieldError{{Field: "From",
				Problem: fmt.Sprintf("domain %s is not aligned with DKIM d=%s (DMARC would fail)", fd, d)}}}
		}
	}
	now := time.Now
	if b.opts.Now != nil {
		now = b.opts.Now
	}
	date := now()
	if b.opts.Location != nil {
		date = date.In(b.opts.Location)
	}
	domain := b.opts.Domain
	if domain == "" {
		domain = m.From.Domain()
	}
	var id string
	if m.MessageID != "" || b.opts.MessageID != nil {
		if id = m.MessageID; id == "" {
			id = b.opts.MessageID(domain)
		}
		if err := ValidateHeaderValue("Message-ID", id); err != nil {
			return Built{}, err
		}
		if strings.ContainsAny(id, "<> ") || strings.Count(id, "@") != 1 || len(id) > 250 {
			return Built{}, &ValidationError{Problems: []FieldError{{Field: "Message-ID", Problem: fmt.Sprintf("%q: want left@domain without <>", id)}}}
		}
	} else {
		id = NewMessageID(domain)
	}
	boundary := ""
	if b.opts.Boundary != nil {
		boundary = b.opts.Boundary()
	} else {
		boundary = randomBoundary()
	}
	if !validBoundary(boundary) {
		return Built{}, fmt.Errorf("mailer: boundary %q: want 1-69 letters, digits, '_' or '-'", boundary)
	}

	// Every value is ASCII by now (RFC 2047 words made here), so go-mail
	// neither re-encodes it nor Q-encodes display names; the writer folds at
	// the spaces between words. Address headers are generic fields because
	// go-mail's From/To write net/mail's Q-encoding and fold right after the
	// colon.
	var hb strings.Builder
	fields := make([]field, 0, 16+len(m.Headers))
	add := func(name, value string) { fields = append(fields, field{name, value}) }
	add("From", b.cached(cachedFrom, m.From.Name, m.From.Email, func() string { return formatAddress(&hb, "From", m.From) }))
	add("To", formatAddress(&hb, "To", m.To))
	if m.ReplyTo != (Address{}) {
		add("Reply-To", formatAddress(&hb, "Reply-To", m.ReplyTo))
	}
	add("Subject", b.cached(cachedSubject, m.Subject, "", func() string { return encodeText(&hb, "Subject", m.Subject) }))
	add("Date", date.Format(time.RFC1123Z))
	add("Message-ID", "<"+id+">")
	add("MIME-Version", "1.0")
	if m.ListID != "" {
		v := "<" + m.ListID + ">"
		if m.ListName != "" {
			v = b.cached(cachedListName, m.ListName, "", func() string { return encodePhrase(&hb, "List-Id", m.ListName) }) + " " + v
		}
		add("List-Id", v)
	}
	if m.UnsubscribeURL != "" {
		v := "<" + m.UnsubscribeURL + ">"
		if m.UnsubscribeMailto != "" {
			v += ", <" + m.UnsubscribeMailto + ">"
		}
		add("List-Unsubscribe", v)
		add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	if m.ListHelp != "" {
		add("List-Help", "<"+m.ListHelp+">")
	}
	if m.AnnounceOnly {
		add("List-Post", "NO")
	}
	if m.FeedbackID != "" {
		add("Feedback-ID", m.FeedbackID)
	}
	add("Auto-Submitted", "auto-generated")
	if m.Bulk {
		add("Precedence", "bulk")
	}
	for _, h := range m.Headers {
		add(h.Name, encodeText(&hb, h.Name, h.Value))
	}
	sortFields(fields)

	sp := scratch.Get().(*[]byte)
	defer func() {
		if cap(*sp) <= 1<<20 { // do not keep huge bodies' buffers alive
			scratch.Put(sp)
		}
	}()
	// Parts given as text are canonicalised into scratch; parts given as a
	// Body are encoded from their Layout by the direct writer (go-mail's
	// writer, and the rare values that could change canonical form, take
	// the whole text instead).
	body := (*sp)[:0]
	parts := make([]partSpec, 0, 2)
	addPart := func(ct gomail.ContentType, s string, bd *Body) {
		if bd != nil && !b.opts.GoMailWriter && !bd.needsWhole() {
			parts = append(parts, partSpec{contentType: ct, layout: bd, size: bd.size()})
			return
		}
		if bd != nil {
			s = bd.String()
		}
		start := len(body)
		body = appendCRLF(body, s)
		parts = append(parts, partSpec{contentType: ct, body: body[start:len(body):len(body)], size: len(body) - start})
	}
	addPart(gomail.TypeTextPlain, m.Text, m.TextBody)
	if m.HTML != "" || m.HTMLBody != nil {
		addPart(gomail.TypeTextHTML, m.HTML, m.HTMLBody)
	}
	*sp = body

	size := 160 + len(boundary)*3
	for _, f := range fields {
		size += len(f.name) + len(f.value) + 4 + len(f.value)/70*3
	}
	for _, p := range parts {
		size += 80 + len(boundary) + base64Size(p.size)
	}
	var raw []byte
	buf := dst[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	if b.opts.GoMailWriter {
		var err error
		if raw, err = writeGoMail(buf, fields, parts, boundary); err != nil {
			return Built{}, fmt.Errorf("mailer: write message: %w", err)
		}
	} else {
		raw = writeDirect(buf, fields, parts, boundary)
	}
	if b.opts.DKIM != nil {
		signed, err := b.opts.DKIM.Sign(raw)
		if err != nil {
			return Built{}, err
		}
		raw = signed
	}
	return Built{Raw: raw, MessageID: id, Date: date, canonical: true}, nil
}

func validBoundary(s string) bool {
	if s == "" || len(s) > 69 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// appendCRLF appends s to dst with bare LF and bare CR turned into CRLF
// (RFC 2046 §4.1.1 canonical form for text before base64).
func appendCRLF(dst []byte, s string) []byte {
	dst = slices.Grow(dst, len(s)+len(s)/24+2)
	if strings.IndexByte(s, '\r') < 0 {
		// Fast path: only LF line ends (or none).
		for {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return append(dst, s...)
			}
			dst = append(dst, s[:i]...)
			dst = append(dst, '\r', '\n')
			s = s[i+1:]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
			dst = append(dst, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			dst = append(dst, '\r', '\n')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// bodyWriter is a go-mail writeFunc over bytes we own (no second copy, as
// SetBodyString would make).
func bodyWriter(b []byte) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := w.Write(b)
		return int64(n), err
	}
}

// go-mail's header writer keeps a word on the first line when
// len(word) <= 70-len(name); later lines hold one 75-char word each
// (76 octets with the leading space).
func firstRoom(name string) int {
	r := 70 - len(name)
	if r > maxWord {
		r = maxWord
	}
	return r
}

const (
	maxWord    = 75 // RFC 2047 §2
	wordPrefix = "=?UTF-8?B?"
	wordSuffix = "?="
)

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encodeText encodes an unstructured header value: unchanged when ASCII,
// otherwise B-encoded words, each holding whole characters, the first sized
// to stay on the field-name line.
func encodeText(b *strings.Builder, name, s string) string {
	if isPlainASCII(s) && !hasLongWord(s) && !strings.Contains(s, "=?") {
		return s
	}
	b.Reset()
	appendWords(b, s, firstRoom(name))
	return b.String()
}

// encodePhrase encodes a display name or List-Id phrase: ASCII names are
// quoted when needed (RFC 5322 phrase), others B-encoded.
func encodePhrase(b *strings.Builder, name, s string) string {
	// A plain ASCII phrase shaped like an encoded word ("=?utf-8?q?admin?=")
	// would be decoded by the reader's mail program into something else:
	// it is encoded itself, so it reads as typed.
	if isPlainASCII(s) && !hasLongWord(s) && !strings.Contains(s, "=?") {
		return quotePhrase(s)
	}
	b.Reset()
	appendWords(b, s, firstRoom(name))
	return b.String()
}

// hasLongWord reports a space-free run too long for a 78-octet folded line;
// such values are B-encoded so they can be split (RFC 5322 §2.1.1).
func hasLongWord(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			run = 0
			continue
		}
		run++
		if run > 70 {
			return true
		}
	}
	return false
}

func formatAddress(b *strings.Builder, name string, a Address) string {
	if a.Name == "" {
		return "<" + a.Email + ">"
	}
	return encodePhrase(b, name, a.Name) + " <" + a.Email + ">"
}

func quotePhrase(s string) string {
	atom := s != ""
	for i := 0; i < len(s) && atom; i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' ||
			strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			atom = false
		}
	}
	if atom && !strings.Contains(s, "  ") && s[0] != ' ' && s[len(s)-1] != ' ' {
		return s
	}
	var q strings.Builder
	q.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			q.WriteByte('\\')
		}
		q.WriteByte(s[i])
	}
	q.WriteByte('"')
	return q.String()
}

// appendWords writes s as space-separated "=?UTF-8?B?...?=" words of at most
// maxWord chars (the first at most first chars when first leaves room for at
// least one character), never splitting a UTF-8 sequence.
func appendWords(b *strings.Builder, s string, first int) {
	limit := first
	if limit < len(wordPrefix)+len(wordSuffix)+4 {
		limit = maxWord
	}
	for len(s) > 0 {
		// bytes that fit: base64 length 4*ceil(n/3) <= limit-12
		maxBytes := (limit - len(wordPrefix) - len(wordSuffix)) / 4 * 3
		n := 0
		for n < len(s) {
			_, size := decodeRuneLen(s[n:])
			if n+size > maxBytes {
				break
			}
			n += size
		}
		if n == 0 { // cannot happen with limit >= 16, but never loop forever
			n = len(s)
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(wordPrefix)
		var enc [64]byte
		m := b64Std.EncodedLen(n)
		if m <= len(enc) {
			b64Std.Encode(enc[:m], []byte(s[:n]))
			b.Write(enc[:m])
		} else {
			b.WriteString(b64Std.EncodeToString([]byte(s[:n])))
		}
		b.WriteString(wordSuffix)
		s = s[n:]
		limit = maxWord
	}
}

// decodeRuneLen returns the length of the UTF-8 sequence starting s (1 for
// invalid bytes, which validation has already excluded).
func decodeRuneLen(s string) (rune, int) {
	c := s[0]
	switch {
	case c < 0x80:
		return rune(c), 1
	case c>>5 == 0x6 && len(s) >= 2:
		return 0, 2
	case c>>4 == 0xe && len(s) >= 3:
		return 0, 3
	case c>>3 == 0x1e && len(s) >= 4:
		return 0, 4
	}
	return 0, 1
}

var b64Std = base64.StdEncoding
