// Package jsonw appends JSON strings to byte slices, for the set-based SQL
// statements that pass a batch of rows to SQLite as one JSON array.
package jsonw

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendString appends s as a quoted JSON string. Control characters are
// escaped; invalid UTF-8 (a relay's reply may hold anything) becomes
// U+FFFD, so the output is always valid JSON.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i, w := 0, 0; i < len(s); i += w {
		c := s[i]
		if c < utf8.RuneSelf {
			w = 1
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		b = utf8.AppendRune(b, r) // RuneError for a bad sequence
	}
	return append(b, '"')
}
