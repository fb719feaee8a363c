package jsonb_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tayori-news/tayori/internal/jsonb"
	"github.com/tayori-news/tayori/internal/jsonw"
	"github.com/tayori-news/tayori/internal/sqlitedb"
)

func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sqlitedb.Open(context.Background(), filepath.Join(tb.TempDir(), "j.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var texts = []string{
	"", "a", "user@example.jp", "利用者 山田太郎", "12345678901", "123456789012",
	`quote " backslash \ slash /`, "tab\tnewline\ncr\rnul\x00del\x7f", "\u2028\u2029",
	strings.Repeat("長", 100), strings.Repeat("x", 255), strings.Repeat("y", 256),
	strings.Repeat("z", 65535), strings.Repeat("w", 65536), "bad \xff\xfe utf-8 \xe3\x81",
}

// TestTextAndIntRoundTrip binds arrays built here and reads every element
// back through SQLite's own ->> and json(): the text must come back byte
// for byte (invalid UTF-8 as U+FFFD, as jsonw writes it), the integers as
// integers, and json() must print the same JSON as jsonw would.
func TestTextAndIntRoundTrip(t *testing.T) {
	db := openDB(t)
	ints := []int64{0, 1, -1, 9, 10, 99999999999, -9223372036854775808, 9223372036854775807}
	var elems []byte
	for _, s := range texts {
		elems = jsonb.AppendText(elems, s)
	}
	for _, v := range ints {
		elems = jsonb.AppendInt(elems, v)
	}
	blob := append(jsonb.AppendArrayHeader(nil, len(elems)), elems...)
	var valid int
	if err := db.QueryRow(`SELECT json_valid(?, 8)`, blob).Scan(&valid); err != nil || valid != 1 {
		t.Fatalf("json_valid = %d, %v", valid, err)
	}
	for i, s := range texts {
		var got string
		if err := db.QueryRow(`SELECT ?1 ->> ?2`, blob, i).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && got != s {
			t.Errorf("text %d: got %q, want it unchanged", i, trunc(got))
		}
		if want := viaJSONW(t, s); got != want {
			t.Errorf("text %d: got %q, jsonw gives %q", i, trunc(got), trunc(want))
		}
	}
	for i, v := range ints {
		var got int64
		var typ string
		if err := db.QueryRow(`SELECT ?1 ->> ?2, typeof(?1 ->> ?2)`, blob, len(texts)+i).Scan(&got, &typ); err != nil {
			t.Fatal(err)
		}
		if got != v || typ != "integer" {
			t.Errorf("int %d: got %d (%s), want %d", i, got, typ, v)
		}
	}
	// json() prints the array as JSON text; it must be what jsonw writes.
	var text string
	if err := db.QueryRow(`SELECT json(?)`, blob).Scan(&text); err != nil {
		t.Fatal(err)
	}
	var fromSQLite, fromJSONW []any
	var want []byte
	want = append(want, '[')
	for i, s := range texts {
		if i > 0 {
			want = append(want, ',')
		}
		want = jsonw.AppendString(want, s)
	}
	want = append(want, ']')
	if err := json.Unmarshal([]byte(text), &fromSQLite); err != nil {
		t.Fatalf("json(): %v", err)
	}
	if err := json.Unmarshal(want, &fromJSONW); err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if fromSQLite[i] != fromJSONW[i] {
			t.Errorf("json() element %d = %q, jsonw %q", i, trunc(fromSQLite[i].(string)), trunc(fromJSONW[i].(string)))
		}
	}
}

// TestArraysOfRows is the importer's shape: an array of row arrays, each
// header written by AppendArrayHeader or BeginArray/EndArray, read by
// jsonb_each, including an array over 64 KiB (a four-byte size) and an
// empty one.
func TestArraysOfRows(t *testing.T) {
	db := openDB(t)
	for _, n := range []int{0, 1, 3, 5000} {
		outer, at := jsonb.BeginArray(nil)
		for i := range n {
			var row []byte
			row = jsonb.AppendText(row, texts[i%len(texts)])
			row = jsonb.AppendInt(row, int64(i))
			id := jsonb.AppendInt(nil, int64(1000+i))
			outer = jsonb.AppendArrayHeader(outer, len(id)+len(row))
			outer = append(append(outer, id...), row...)
		}
		outer = jsonb.EndArray(outer, at)
		rows, err := db.Query(`SELECT key, value ->> 0, value ->> 1, value ->> 2 FROM jsonb_each(?)`, outer)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for rows.Next() {
			var key, id, i int64
			var s string
			if err := rows.Scan(&key, &id, &s, &i); err != nil {
				t.Fatal(err)
			}
			if key != int64(got) || id != int64(1000+got) || i != int64(got) || s != viaJSONW(t, texts[got%len(texts)]) {
				t.Fatalf("n=%d row %d: key %d id %d i %d text %q", n, got, key, id, i, trunc(s))
			}
			got++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if got != n {
			t.Errorf("n=%d: jsonb_each gave %d rows", n, got)
		}
	}
}

// FuzzText checks that any string survives a trip through SQLite as
// jsonw's JSON would bring it back.
func FuzzText(f *testing.F) {
	for _, s := range texts[:9] {
		f.Add(s)
	}
	db := openDB(f)
	f.Fuzz(func(t *testing.T, s string) {
		elem := jsonb.AppendText(nil, s)
		blob := append(jsonb.AppendArrayHeader(nil, len(elem)), elem...)
		var got string
		if err := db.QueryRow(`SELECT ?1 ->> 0`, blob).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := viaJSONW(t, s); got != want {
			t.Fatalf("%q came back as %q, want %q", s, got, want)
		}
	})
}

// viaJSONW is s as it comes back from the JSON text jsonw writes: the
// same bytes, invalid UTF-8 replaced byte by byte.
func viaJSONW(t *testing.T, s string) string {
	t.Helper()
	var v string
	if err := json.Unmarshal(jsonw.AppendString(nil, s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
