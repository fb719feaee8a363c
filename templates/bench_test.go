package templates_test

import (
	"path/filepath"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

func benchIssue(b *testing.B) *compose.Issue {
	b.Helper()
	is, err := compose.Load(filepath.Join("..", "testdata", "aisi-monthly-2025-07.txt"))
	if err != nil {
		b.Fatal(err)
	}
	return is
}

// BenchmarkRender renders the full variant of the July sample (the larger
// one) without the cache. Target: ≤ 5 ms an op (hermes is about 2 ms), so
// that even a few hundred variants of an issue render in about a second.
func BenchmarkRender(b *testing.B) {
	is := benchIssue(b)
	r := newRenderer(b)
	sel, err := templates.SelectAll(is)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Forget(is.Slug)
		if _, err := r.Render(is, sel); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderCached is a cache hit, as a worker calls Render once per
// message: fingerprint of the issue and map lookup. Target: ≤ 10 µs.
func BenchmarkRenderCached(b *testing.B) {
	is := benchIssue(b)
	r := newRenderer(b)
	sel, _ := templates.SelectAll(is)
	if _, err := r.Render(is, sel); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(is, sel); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPersonalize fills one reader's values into the full July
// variant (about 40 KB of HTML and 16 KB of text), appending into reused
// buffers as a delivery worker does. Target: ≤ 20 µs and 0 allocations a
// message.
func BenchmarkPersonalize(b *testing.B) {
	is := benchIssue(b)
	r := newRenderer(b)
	sel, _ := templates.SelectAll(is)
	v, err := r.Render(is, sel)
	if err != nil {
		b.Fatal(err)
	}
	var hb, tb []byte
	b.SetBytes(int64(v.HTMLSize() + v.TextSize()))
	b.ReportAllocs()
	for b.Loop() {
		hb = v.AppendHTML(hb[:0], testPersonal)
		tb = v.AppendText(tb[:0], testPersonal)
	}
}

// BenchmarkPersonalizeNew is Personalize: validation and two new buffers
// a message. Target: ≤ 20 µs.
func BenchmarkPersonalizeNew(b *testing.B) {
	is := benchIssue(b)
	r := newRenderer(b)
	sel, _ := templates.SelectAll(is)
	v, _ := r.Render(is, sel)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := v.Personalize(testPersonal); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSelect selects the items of the July sample for one reader.
// Target: ≤ 2 µs, so a planner can call it for a million readers in
// seconds.
func BenchmarkSelect(b *testing.B) {
	is := benchIssue(b)
	p := audience.Prefs{Regions: []audience.Region{audience.JP, audience.EU}, Topics: []audience.Topic{audience.Policy, audience.Reports}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := templates.Select(is, p); err != nil {
			b.Fatal(err)
		}
	}
}
