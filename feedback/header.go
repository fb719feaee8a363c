package feedback

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
)

// field is one header field, its name in lower case and its value
// unfolded and trimmed.
type field struct{ name, value string }

// header is a header block in order. Reports come from every kind of MTA
// and are often damaged or redacted by hand, so parseHeader never fails:
// a line that is not a field or a continuation is skipped.
type header []field

// maxFields bounds one header block (a report's or a DSN group's).
const maxFields = 1000

func parseHeader(b []byte) header {
	var h header
	for len(b) > 0 && len(h) < maxFields {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if n := len(h); n > 0 {
				h[n-1].value = strings.TrimSpace(h[n-1].value + " " + string(bytes.TrimSpace(line)))
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.ToLower(string(bytes.TrimSpace(line[:colon])))
		if name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		h = append(h, field{name: name, value: string(bytes.TrimSpace(line[colon+1:]))})
	}
	return h
}

// get returns the first value of name (lower case), or "".
func (h header) get(name string) string {
	for _, f := range h {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// all returns every value of name (lower case).
func (h header) all(name string) []string {
	var out []string
	for _, f := range h {
		if f.name == name {
			out = append(out, f.value)
		}
	}
	return out
}

// splitHead splits a message or part at its first empty line. Without
// one, the whole input is the header.
func splitHead(b []byte) (head, body []byte) {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil
		}
		line := bytes.TrimRight(b[i:i+j], "\r")
		if len(line) == 0 {
			return b[:i], b[i+j+1:]
		}
		i += j + 1
	}
	return b, nil
}

// splitGroups splits a delivery-status body into its blank-line separated
// groups of fields.
func splitGroups(b []byte) [][]byte {
	var groups [][]byte
	start := -1
	for i := 0; i <= len(b); {
		end := len(b)
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			end = i + j
		}
		blank := len(bytes.TrimSpace(b[i:end])) == 0
		switch {
		case blank && start >= 0:
			groups = append(groups, b[start:i])
			start = -1
		case !blank && start < 0:
			start = i
		}
		i = end + 1
	}
	if start >= 0 {
		groups = append(groups, b[start:])
	}
	return groups
}

var wordDecoder = mime.WordDecoder{}

// decodeWords decodes RFC 2047 encoded-words where it can, and keeps the
// raw text where it cannot.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// typedAddress strips the address type of a DSN or ARF address field
// ("rfc822; user@example.jp", "<user@example.jp>") and returns the bare
// address, or "" when there is none.
func typedAddress(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[i+1:]
	}
	return bareAddress(v)
}

// bareAddress returns the address of v ("Name <a@b>", "<a@b>", "a@b").
func bareAddress(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if a, err := mail.ParseAddress(v); err == nil {
		return a.Address
	}
	// Comments, redaction marks and other damage: take what lies between
	// the angle brackets, or the first word holding an '@'.
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	for _, w := range strings.Fields(v) {
		if strings.Contains(w, "@") {
			return strings.Trim(w, "<>(),;\"")
		}
	}
	return strings.Trim(v, "<>")
}

// addressList returns the addresses of a To-like header value, tolerating
// what net/mail rejects.
func addressList(v string) []string {
	if v == "" {
		return nil
	}
	if as, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.Address
		}
		return out
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		if a := bareAddress(part); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// typedValue strips the type of a DSN field such as Remote-MTA
// ("dns; mx.example.jp") and keeps the rest.
func typedValue(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		return strings.TrimSpace(v[i+1:])
	}
	return strings.TrimSpace(v)
}

// domainOf returns the lower-case domain of an address, or "".
func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.Trim(addr[i+1:], "<> "))
	}
	return ""
}
