package mailer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// A Layout is a body part that is the same in every copy of a send except
// for a few slots: Fixed[0] value[0] Fixed[1] … value[n-1] Fixed[n]. The
// fixed text (the newsletter itself) is validated and put in canonical CRLF
// form once, when the Layout is made, and its base64 lines are computed
// once per line alignment and kept, so a copy built from a [Body] costs the
// encoding of its few values and a copy of ready-made lines, where a copy
// from [Message.Text] costs validating, canonicalising and encoding the
// whole part.
//
// The bytes on the wire are identical either way (tests check it). A Layout
// is immutable apart from its encoding cache and safe for concurrent use.
type Layout struct {
	fixed []fixedText
	size  int           // bytes of canonical fixed text
	used  *atomic.Int64 // bytes of encoded lines kept; given back when l is collected
}

type fixedText struct {
	s string // as given
	b []byte // canonical CRLF form
	// lines[j] holds the base64 lines (CRLF-terminated) of b[j:j+57k],
	// the whole lines a copy can take from b when j bytes of b completed
	// the previous line; filled on first use.
	lines [b64LineIn]atomic.Pointer[[]byte]
}

// layoutCacheBudget bounds the memory all Layouts of a process spend on
// encoded lines. Past it, copies are encoded as they are built: slower,
// never wrong. Each alignment of a piece is encoded at most once, and a
// send sees few alignments (the one personal value of varying length, the
// reader's name, shifts what follows it), so a month's sends stay far below.
const layoutCacheBudget = 64 << 20

var layoutCacheUsed atomic.Int64

// minCachedPiece: pieces shorter than this are encoded per copy; caching
// them saves little.
const minCachedPiece = 4 * b64LineIn

// NewLayout returns the Layout of a body part whose fixed text is fixed
// (len(fixed)-1 slots). The text must be valid UTF-8; line ends are
// canonicalised to CRLF as for [Message.Text].
func NewLayout(fixed ...string) (*Layout, error) {
	if len(fixed) == 0 {
		return nil, errors.New("mailer: NewLayout: no fixed text")
	}
	l := &Layout{fixed: make([]fixedText, len(fixed)), used: new(atomic.Int64)}
	runtime.AddCleanup(l, func(used *atomic.Int64) { layoutCacheUsed.Add(-used.Load()) }, l.used)
	for i, s := range fixed {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("mailer: layout piece %d is not valid UTF-8: %w", i, ErrInvalidMessage)
		}
		l.fixed[i] = fixedText{s: s, b: appendCRLF(nil, s)}
		l.size += len(l.fixed[i].b)
	}
	return l, nil
}

// Slots returns the number of per-copy values the Layout takes.
func (l *Layout) Slots() int { return len(l.fixed) - 1 }

// Body is one copy's body part: a Layout and the values for its slots.
type Body struct {
	Layout *Layout
	// Values fill the slots in order; len(Values) must equal Layout.Slots().
	// They must be valid UTF-8. A value containing CR or LF makes the
	// Builder fall back to the whole-text path (same bytes, slower).
	Values [][]byte
}

// size returns the length of the part before canonicalisation of values.
func (b *Body) size() int {
	n := b.Layout.size
	for _, v := range b.Values {
		n += len(v)
	}
	return n
}

// problem describes what is wrong with b, or "".
func (b *Body) problem() string {
	if b.Layout == nil {
		return "Body without a Layout"
	}
	if len(b.Values) != b.Layout.Slots() {
		return fmt.Sprintf("%d values for %d slots", len(b.Values), b.Layout.Slots())
	}
	for i, v := range b.Values {
		if !utf8.Valid(v) {
			return fmt.Sprintf("value %d is not valid UTF-8", i)
		}
	}
	return ""
}

// needsWhole reports whether canonicalising b piece by piece could differ
// from canonicalising the whole part: a CR at the end of one piece and an
// LF at the start of the next are one line break, not two. That needs a
// value holding CR or LF, or an empty value between a piece ending in CR
// and one starting with LF.
func (b *Body) needsWhole() bool {
	for i, v := range b.Values {
		if len(v) == 0 && strings.HasSuffix(b.Layout.fixed[i].s, "\r") && strings.HasPrefix(b.Layout.fixed[i+1].s, "\n") {
			return true
		}
		for _, c := range v {
			if c == '\r' || c == '\n' {
				return true
			}
		}
	}
	return false
}

// String returns the whole part as given (before canonicalisation), the
// Text or HTML the Body stands for.
func (b *Body) String() string {
	var s strings.Builder
	s.Grow(b.size())
	for i := range b.Layout.fixed {
		if i > 0 {
			s.Write(b.Values[i-1])
		}
		s.WriteString(b.Layout.fixed[i].s)
	}
	return s.String()
}

// appendBase64Body appends the base64 lines of b's canonical bytes, the
// same lines appendBase64Lines writes for the whole part: 57 input bytes a
// line, the last line shorter. Values and the ends of pieces go through a
// one-line carry; whole lines inside a piece come from its cache.
func appendBase64Body(buf []byte, b *Body) []byte {
	var carry [b64LineIn]byte
	n := 0
	put := func(p []byte) {
		if n > 0 {
			k := copy(carry[n:], p)
			n += k
			p = p[k:]
			if n < b64LineIn {
				return
			}
			buf = appendBase64Lines(buf, carry[:])
			n = 0
		}
		whole := len(p) / b64LineIn * b64LineIn
		buf = appendBase64Lines(buf, p[:whole])
		n = copy(carry[:], p[whole:])
	}
	for i := range b.Layout.fixed {
		if i > 0 {
			put(b.Values[i-1])
		}
		f := &b.Layout.fixed[i]
		j := (b64LineIn - n) % b64LineIn // bytes of f that complete the current line
		if len(f.b)-j < minCachedPiece {
			put(f.b)
			continue
		}
		put(f.b[:j])
		whole := (len(f.b) - j) / b64LineIn * b64LineIn
		if lines := f.cached(b.Layout.used, j, whole); lines != nil {
			buf = append(buf, lines...)
		} else {
			buf = appendBase64Lines(buf, f.b[j:j+whole])
		}
		put(f.b[j+whole:])
	}
	if n > 0 {
		buf = appendBase64Lines(buf, carry[:n])
	}
	return buf
}

// cached returns the encoded lines of f.b[j:j+whole], computing and keeping
// them when the budget allows, or nil.
func (f *fixedText) cached(used *atomic.Int64, j, whole int) []byte {
	if p := f.lines[j].Load(); p != nil {
		return *p
	}
	size := int64(base64Size(whole))
	if layoutCacheUsed.Add(size) > layoutCacheBudget {
		layoutCacheUsed.Add(-size)
		return nil
	}
	lines := appendBase64Lines(make([]byte, 0, size), f.b[j:j+whole])
	if !f.lines[j].CompareAndSwap(nil, &lines) {
		layoutCacheUsed.Add(-size) // another copy got there first
		return *f.lines[j].Load()
	}
	used.Add(size)
	return lines
}
