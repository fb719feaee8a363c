// Package jsonb appends values in SQLite's binary JSON encoding (JSONB,
// https://sqlite.org/jsonb.html, SQLite 3.45 and later), for the
// set-based statements that pass a batch of rows to SQLite as one array.
//
// Bound as a BLOB, JSONB spares SQLite the parse of JSON text: every
// element starts with a header giving its type and payload size, so
// jsonb_each and ->> step over elements without scanning for quotes and
// brackets. At 1,000,000 imported rows that parse was about a sixteenth
// of the database goroutine's time.
//
// Only what the importer needs is here: arrays, integers and text.
package jsonb

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"
)

// Element types (the low four bits of a header's first byte).
const (
	typeInt     = 0x3 // an integer in RFC 8259 form, as ASCII digits
	typeTextRaw = 0xa // UTF-8 text taken as it is, no escapes
	typeArray   = 0xb // a sequence of elements
)

// appendHeader appends the shortest header for an element of type typ
// whose payload is n bytes. Sizes up to 11 fit in the first byte; 12, 13
// and 14 in its high nibble mean that 1, 2 or 4 big-endian bytes follow.
func appendHeader(b []byte, typ byte, n int) []byte {
	switch {
	case n <= 11:
		return append(b, byte(n)<<4|typ)
	case n <= 0xff:
		return append(b, 0xc0|typ, byte(n))
	case n <= 0xffff:
		return append(b, 0xd0|typ, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xe0|typ), uint32(n))
	}
}

// AppendInt appends v as an integer element.
func AppendInt(b []byte, v int64) []byte {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], v, 10)
	return append(appendHeader(b, typeInt, len(digits)), digits...)
}

// AppendText appends s as a text element. Invalid UTF-8 becomes U+FFFD
// byte by byte, as jsonw.AppendString does, so the element is always
// valid; control characters stay as they are (SQLite escapes them if the
// value is ever printed as JSON text).
func AppendText(b []byte, s string) []byte {
	if utf8.ValidString(s) {
		return append(appendHeader(b, typeTextRaw, len(s)), s...)
	}
	valid := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		valid = utf8.AppendRune(valid, r) // RuneError for a bad byte
		i += w
	}
	return append(appendHeader(b, typeTextRaw, len(valid)), valid...)
}

// AppendArrayHeader appends the header of an array whose elements, n
// bytes in all, the caller appends next.
func AppendArrayHeader(b []byte, n int) []byte { return appendHeader(b, typeArray, n) }

// BeginArray starts an array whose size is not known yet: it reserves a
// five-byte header at the end of b and returns b and the header's
// offset, for EndArray once the elements are appended. (SQLite reads a
// header wider than the size needs; jsonb.html allows it.)
func BeginArray(b []byte) ([]byte, int) {
	return append(b, 0xe0|typeArray, 0, 0, 0, 0), len(b)
}

// EndArray writes the size of the array begun at offset at. A payload
// over 4 GiB cannot be encoded and panics: callers batch far below.
func EndArray(b []byte, at int) []byte {
	n := len(b) - at - 5
	if uint64(n) > 0xffffffff {
		panic("jsonb: array over 4 GiB")
	}
	binary.BigEndian.PutUint32(b[at+1:], uint32(n))
	return b
}
