package mailer

import (
	"slices"
	"strings"
	"sync"

	gomail "github.com/wneessen/go-mail"
)

// Two writers produce the same bytes from the same header list and bodies:
//
//   - writeGoMail uses go-mail's Msg (mail.NewMsg with EncodingB64 and no
//     User-Agent). It is the reference.
//   - writeDirect appends the identical bytes straight into one buffer. It
//     exists for speed: go-mail's writer costs ~40 µs and ~46 KB of garbage
//     for a 5 KB message (buffers grown per part, fmt, sorting, splitting),
//     which is most of the per-message CPU budget of a bulk send.
//
// TestWritersAgree and FuzzWritersAgree check byte equality, so any change in
// go-mail's output format shows up as a failing test, not as silent drift.

// field is one header field with its unfolded ASCII value.
type field struct{ name, value string }

// partSpec is one body part: content type and canonical CRLF bytes, or a
// Body the direct writer encodes from its Layout.
type partSpec struct {
	contentType gomail.ContentType
	body        []byte
	layout      *Body
	size        int // bytes before base64 (at most, for a layout)
}

// appendPart appends p's base64 lines.
func appendPart(buf []byte, p partSpec) []byte {
	if p.layout != nil {
		return appendBase64Body(buf, p.layout)
	}
	return appendBase64Lines(buf, p.body)
}

func writeGoMail(buf []byte, fields []field, parts []partSpec, boundary string) ([]byte, error) {
	msg := gomail.NewMsg(
		gomail.WithEncoding(gomail.EncodingB64),
		gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithNoDefaultUserAgent(),
		gomail.WithBoundary(boundary),
	)
	for _, f := range fields {
		msg.SetGenHeader(gomail.Header(f.name), f.value)
	}
	for i, p := range parts {
		if i == 0 {
			msg.SetBodyWriter(p.contentType, bodyWriter(p.body))
		} else {
			msg.AddAlternativeWriter(p.contentType, bodyWriter(p.body))
		}
	}
	w := appendWriter{buf: buf}
	if _, err := msg.WriteTo(&w); err != nil {
		return nil, err
	}
	return w.buf, nil
}

type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// sortFields sorts by name in byte order, as go-mail's writeGenHeader does.
func sortFields(fields []field) {
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
}

// writeDirect appends the message to buf. fields must be sorted and include
// MIME-Version, which go-mail adds to its generic headers.
func writeDirect(buf []byte, fields []field, parts []partSpec, boundary string) []byte {
	for _, f := range fields {
		buf = appendFolded(buf, f.name, f.value)
	}
	if len(parts) == 1 {
		p := parts[0]
		buf = appendFolded(buf, "Content-Transfer-Encoding", "base64")
		buf = appendFolded(buf, "Content-Type", string(p.contentType)+"; charset=UTF-8")
		buf = append(buf, "\r\n"...)
		return appendPart(buf, p)
	}
	buf = append(buf, "Content-Type: multipart/alternative;\r\n boundary="...)
	buf = append(buf, boundary...)
	buf = append(buf, "\r\n\r\n"...)
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, "\r\n"...)
		}
		buf = append(buf, "--"...)
		buf = append(buf, boundary...)
		buf = append(buf, "\r\nContent-Transfer-Encoding: base64\r\nContent-Type: "...)
		buf = append(buf, p.contentType...)
		buf = append(buf, "; charset=UTF-8\r\n\r\n"...)
		buf = appendPart(buf, p)
	}
	buf = append(buf, "\r\n--"...)
	buf = append(buf, boundary...)
	buf = append(buf, "--\r\n"...)
	return buf
}

// appendFolded writes "name: value\r\n" folded exactly as go-mail's
// msgWriter.writeHeader does: split at spaces; a word goes to a new line
// (CRLF + space) when it would leave one column or less of a 76-column line;
// the space before a fold is dropped.
func appendFolded(buf []byte, name, value string) []byte {
	const maxLen = gomail.MaxHeaderLength
	room := maxLen - 2 - len(name) - 2
	buf = append(buf, name...)
	buf = append(buf, ':', ' ')
	for {
		sp := strings.IndexByte(value, ' ')
		word := value
		if sp >= 0 {
			word = value[:sp]
		}
		if room-len(word) <= 1 {
			if n := len(buf); buf[n-1] == ' ' {
				buf = buf[:n-1]
			}
			buf = append(buf, '\r', '\n', ' ')
			room = maxLen - 3
		}
		buf = append(buf, word...)
		room -= len(word)
		if sp < 0 {
			break
		}
		buf = append(buf, ' ')
		room--
		value = value[sp+1:]
	}
	return append(buf, '\r', '\n')
}

const b64LineIn = gomail.MaxBodyLength / 4 * 3 // 57 input bytes per 76-char line

// appendBase64Lines appends base64 of body in 76-char lines, each ending in
// CRLF (go-mail's base64LineBreaker).
func appendBase64Lines(buf, body []byte) []byte {
	for len(body) > 0 {
		n := min(len(body), b64LineIn)
		m := b64Std.EncodedLen(n)
		buf = slices.Grow(buf, m+2)
		l := len(buf)
		buf = buf[:l+m]
		b64Std.Encode(buf[l:], body[:n])
		buf = append(buf, '\r', '\n')
		body = body[n:]
	}
	return buf
}

// base64Size is the exact size appendBase64Lines adds for n input bytes.
func base64Size(n int) int {
	if n == 0 {
		return 0
	}
	enc := b64Std.EncodedLen(n)
	lines := (enc + gomail.MaxBodyLength - 1) / gomail.MaxBodyLength
	return enc + 2*lines
}

// scratch holds canonicalised bodies between canonicalisation and encoding.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}
