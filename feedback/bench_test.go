package feedback_test

import (
	"bytes"
	"testing"

	"github.com/tayori-news/tayori/feedback"
)

// The codec runs once or twice per copy sent: target ≤ 1 µs each way.
func BenchmarkToken(b *testing.B) {
	tg := fixtureTagger(b)
	r := feedback.Ref{SendID: 12, SubscriberID: 345678}
	b.ReportAllocs()
	for b.Loop() {
		_ = tg.Token(r)
	}
}

func BenchmarkParseToken(b *testing.B) {
	tg := fixtureTagger(b)
	tok := tg.Token(feedback.Ref{SendID: 12, SubscriberID: 345678})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tg.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReturnPath(b *testing.B) {
	tg := fixtureTagger(b)
	r := feedback.Ref{SendID: 12, SubscriberID: 345678}
	b.ReportAllocs()
	for b.Loop() {
		_ = tg.ReturnPath(r)
	}
}

func BenchmarkMessageID(b *testing.B) {
	tg := fixtureTagger(b)
	r := feedback.Ref{SendID: 12, SubscriberID: 345678}
	b.ReportAllocs()
	for b.Loop() {
		_ = tg.MessageID(r)
	}
}

func BenchmarkRefFromAddress(b *testing.B) {
	tg := fixtureTagger(b)
	rp := tg.ReturnPath(feedback.Ref{SendID: 12, SubscriberID: 345678})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tg.RefFromAddress(rp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseReport(b *testing.B) {
	raw := readFile(b, "testdata/gmail-5.1.1.eml")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := feedback.Parse(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}
