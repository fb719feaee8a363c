package compose_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/tayori-news/tayori/compose"
)

func BenchmarkImportText(b *testing.B) {
	data := readFile(b, samples[1].path)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compose.ImportText("nov", data, compose.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMarkdown(b *testing.B) {
	data := readFile(b, "testdata/aisi-monthly-2025-11.md")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compose.ParseMarkdown("nov", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteMarkdown(b *testing.B) {
	is := mustImport(b, samples[1].path)
	var buf bytes.Buffer
	compose.WriteMarkdown(&buf, is)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := compose.WriteMarkdown(io.Discard, is); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	is := mustImport(b, samples[1].path)
	b.ReportAllocs()
	for b.Loop() {
		compose.Check(is)
	}
}
