package feedback_test

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/subscribers/token"
)

var refs = []feedback.Ref{
	{SendID: 1, SubscriberID: 1},
	{SendID: 7, SubscriberID: 123456},
	{SendID: math.MaxUint32, SubscriberID: math.MaxUint32},
	{SendID: 0, SubscriberID: 42},      // a transactional copy with no send
	{SendID: 1 << 32, SubscriberID: 5}, // long form from here on
	{SendID: 3, SubscriberID: math.MaxInt64},
	{SendID: -1, SubscriberID: -9},
	{SendID: math.MinInt64, SubscriberID: math.MaxInt64},
}

var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestTokenRoundTrip(t *testing.T) {
	tg := fixtureTagger(t)
	for _, r := range refs {
		tok := tg.Token(r)
		if !tokenRe.MatchString(tok) || len(tok) > feedback.MaxTokenLen || len(tok) > 40 {
			t.Errorf("Token(%v) = %q: want at most 40 characters of [A-Za-z0-9_-]", r, tok)
		}
		compact := r.SendID >= 0 && r.SendID <= math.MaxUint32 && r.SubscriberID >= 0 && r.SubscriberID <= math.MaxUint32
		if compact && len(tok) != 27 {
			t.Errorf("Token(%v) is %d characters, want 27", r, len(tok))
		}
		if got, err := tg.Parse(tok); err != nil || got != r {
			t.Errorf("Parse(Token(%v)) = %v, %v", r, got, err)
		}
		// Case does not matter: an MTA may fold the local part.
		if got, err := tg.Parse(strings.ToUpper(tok)); err != nil || got != r {
			t.Errorf("Parse(upper case Token(%v)) = %v, %v", r, got, err)
		}
		if tg.Token(r) != tok {
			t.Errorf("Token(%v) is not deterministic", r)
		}
	}
}

// TestTokenIsNotReadable: the ids do not show, and neighbouring refs give
// unrelated tokens.
func TestTokenIsNotReadable(t *testing.T) {
	tg := fixtureTagger(t)
	a, b := tg.Token(feedback.Ref{SendID: 7, SubscriberID: 1000}), tg.Token(feedback.Ref{SendID: 7, SubscriberID: 1001})
	same := 0
	for i := 1; i < len(a); i++ {
		if a[i] == b[i] {
			same++
		}
	}
	if same > 6 {
		t.Errorf("tokens of neighbouring readers share %d of %d characters: %s %s", same, len(a)-1, a, b)
	}
	if strings.Contains(a, "1000") || strings.Contains(tg.ReturnPath(feedback.Ref{SendID: 7, SubscriberID: 1000}), "1000") {
		t.Errorf("token shows the id: %s", a)
	}
}

// TestTokenForgery: every single-character change, truncation or
// extension of a token is rejected, and another key's tokens do not read.
func TestTokenForgery(t *testing.T) {
	tg := fixtureTagger(t)
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	for _, r := range []feedback.Ref{{SendID: 7, SubscriberID: 1}, {SendID: 1 << 40, SubscriberID: 1}} {
		tok := tg.Token(r)
		for i := 0; i < len(tok); i++ {
			for _, c := range alphabet + "ILOU_-+." {
				if byte(c) == tok[i] || strings.EqualFold(string(c), string(tok[i])) {
					continue
				}
				bad := tok[:i] + string(c) + tok[i+1:]
				if got, err := tg.Parse(bad); !errors.Is(err, feedback.ErrBadToken) {
					t.Fatalf("Parse(%q) (position %d changed) = %v, %v; want ErrBadToken", bad, i, got, err)
				}
			}
		}
		for _, bad := range []string{"", tok[:len(tok)-1], tok + "0", tok[1:], "b+" + tok, tok + "\n", strings.Repeat("0", len(tok))} {
			if _, err := tg.Parse(bad); !errors.Is(err, feedback.ErrBadToken) {
				t.Errorf("Parse(%q) = %v; want ErrBadToken", bad, err)
			}
		}
	}
	other := fixtureTagger(t, token.Key{ID: "fx1", Secret: []byte("another-secret-with-the-same-id-0123")})
	if _, err := other.Parse(tg.Token(feedback.Ref{SendID: 7, SubscriberID: 1})); !errors.Is(err, feedback.ErrBadToken) {
		t.Errorf("a token of another secret under the same key id: %v", err)
	}
}

// TestTokenRotation: after a new key is put first, tokens of the old
// one still read while it stays in the ring; new tokens use the new key.
func TestTokenRotation(t *testing.T) {
	k2 := token.Key{ID: "fx2", Secret: []byte("feedback-fixture-secret-rotated-xyz")}
	old := fixtureTagger(t)
	rotated := fixtureTagger(t, k2, fixtureKey)
	only2 := fixtureTagger(t, k2)
	r := feedback.Ref{SendID: 12, SubscriberID: 34}
	oldTok, newTok := old.Token(r), rotated.Token(r)
	if oldTok == newTok || oldTok[0] == newTok[0] {
		t.Fatalf("the new key should write other tokens with another key character: %s %s", oldTok, newTok)
	}
	for _, tok := range []string{oldTok, newTok} {
		if got, err := rotated.Parse(tok); err != nil || got != r {
			t.Errorf("rotated ring reads %s as %v, %v", tok, got, err)
		}
	}
	if _, err := only2.Parse(oldTok); !errors.Is(err, feedback.ErrBadToken) {
		t.Errorf("after the old key is retired its token must not read: %v", err)
	}
	if _, err := old.Parse(newTok); !errors.Is(err, feedback.ErrBadToken) {
		t.Errorf("the old ring must not read the new key's token: %v", err)
	}
}

// TestReturnPath is checklist 37's form of the envelope sender.
func TestReturnPath(t *testing.T) {
	tg := fixtureTagger(t)
	re := regexp.MustCompile(`^b\+[A-Za-z0-9_-]+@bounce\.news\.example\.go\.jp$`)
	for _, r := range refs {
		rp := tg.ReturnPath(r)
		if !re.MatchString(rp) {
			t.Errorf("ReturnPath(%v) = %q", r, rp)
		}
		for _, form := range []string{rp, "<" + rp + ">", "Bounces <" + rp + ">", strings.ToUpper(rp), " " + rp + " "} {
			if got, err := tg.RefFromAddress(form); err != nil || got != r {
				t.Errorf("RefFromAddress(%q) = %v, %v; want %v", form, got, err, r)
			}
		}
	}
	custom, err := feedback.NewTagger(fixtureRing(t), feedback.TaggerConfig{Domain: "News.Example.JP", BounceLabel: "fb"})
	if err != nil {
		t.Fatal(err)
	}
	if rp := custom.ReturnPath(refs[0]); !strings.HasSuffix(rp, "@fb.news.example.jp") || custom.BounceDomain() != "fb.news.example.jp" {
		t.Errorf("custom bounce label: %s", rp)
	}
	for _, addr := range []string{"newsletter@news.example.go.jp", "b@bounce.news.example.go.jp", "nobody", "", "b+@x", "<>"} {
		if _, err := tg.RefFromAddress(addr); !errors.Is(err, feedback.ErrNoToken) && !errors.Is(err, feedback.ErrBadToken) {
			t.Errorf("RefFromAddress(%q) = %v; want ErrNoToken or ErrBadToken", addr, err)
		}
	}
	if _, err := tg.RefFromAddress("b+" + strings.Repeat("a", 27) + "@bounce.news.example.go.jp"); !errors.Is(err, feedback.ErrBadToken) {
		t.Errorf("a made-up token: %v", err)
	}
	for _, bad := range []feedback.TaggerConfig{{}, {Domain: "bad domain"}, {Domain: "x.jp", BounceLabel: "a@b"}} {
		if _, err := feedback.NewTagger(fixtureRing(t), bad); err == nil {
			t.Errorf("NewTagger(%+v) accepted", bad)
		}
	}
}

// TestMessageID: checklist 2's form, unique per copy (also with no
// reader), short enough for a 78-octet header line, and read back.
func TestMessageID(t *testing.T) {
	tg := fixtureTagger(t)
	re := regexp.MustCompile(`^[^<>@\s]+@news\.example\.go\.jp$`)
	seen := map[string]bool{}
	for i := range 1000 {
		r := feedback.Ref{SendID: 7, SubscriberID: int64(i)}
		if i == 0 {
			r = feedback.Ref{} // a test copy with no reader
		}
		for range 2 { // a copy sent twice gets two ids
			id := tg.MessageID(r)
			if !re.MatchString(id) || seen[id] {
				t.Fatalf("MessageID(%v) = %q: malformed or repeated", r, id)
			}
			seen[id] = true
			if line := "Message-ID: <" + id + ">"; len(line) > 78 {
				t.Errorf("%q is %d octets, over 78", line, len(line))
			}
			got, err := tg.RefFromMessageID("<" + id + ">")
			switch {
			case i == 0 && !errors.Is(err, feedback.ErrNoToken):
				t.Errorf("a test copy's Message-ID %q gives %v, %v; want ErrNoToken", id, got, err)
			case i > 0 && (err != nil || got != r):
				t.Errorf("RefFromMessageID(%q) = %v, %v; want %v", id, got, err, r)
			}
		}
	}
	long := feedback.Ref{SendID: 1 << 40, SubscriberID: 1 << 40}
	if got, err := tg.RefFromMessageID(tg.MessageID(long)); err != nil || got != long {
		t.Errorf("long-form Message-ID: %v, %v", got, err)
	}
	for _, id := range []string{"", "<abc@news.example.go.jp>", "67a0b1c2.050a0220.3c5f1.8e9f.GMR@mx.google.com", "no-at-sign"} {
		if _, err := tg.RefFromMessageID(id); !errors.Is(err, feedback.ErrNoToken) {
			t.Errorf("RefFromMessageID(%q) = %v; want ErrNoToken", id, err)
		}
	}
}

func FuzzTokenRoundTrip(f *testing.F) {
	for _, r := range refs {
		f.Add(r.SendID, r.SubscriberID)
	}
	tg := fixtureTagger(f)
	f.Fuzz(func(t *testing.T, send, sub int64) {
		r := feedback.Ref{SendID: send, SubscriberID: sub}
		tok := tg.Token(r)
		if !tokenRe.MatchString(tok) || len(tok) > 40 {
			t.Fatalf("Token(%v) = %q", r, tok)
		}
		if got, err := tg.Parse(tok); err != nil || got != r {
			t.Fatalf("Parse(Token(%v)) = %v, %v", r, got, err)
		}
		if got, err := tg.RefFromAddress(tg.ReturnPath(r)); err != nil || got != r {
			t.Fatalf("RefFromAddress(ReturnPath(%v)) = %v, %v", r, got, err)
		}
		if r.IsZero() {
			return
		}
		if got, err := tg.RefFromMessageID(tg.MessageID(r)); err != nil || got != r {
			t.Fatalf("RefFromMessageID(MessageID(%v)) = %v, %v", r, got, err)
		}
	})
}

// FuzzParseToken: any string either fails or is the canonical spelling
// (up to case) of the token of what it decodes to.
func FuzzParseToken(f *testing.F) {
	tg := fixtureTagger(f)
	for _, r := range refs {
		tok := tg.Token(r)
		f.Add(tok)
		f.Add(strings.ToUpper(tok))
		f.Add(tok[:len(tok)-1] + "z")
	}
	f.Add("")
	f.Add(strings.Repeat("0", 27))
	f.Add("b+" + strconv.Itoa(12345))
	f.Fuzz(func(t *testing.T, s string) {
		r, err := tg.Parse(s)
		if err != nil {
			if !errors.Is(err, feedback.ErrBadToken) {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		if tok := tg.Token(r); tok != strings.ToLower(s) {
			t.Fatalf("Parse(%q) = %v, whose token is %q", s, r, tok)
		}
		_, _ = tg.RefFromAddress(s)
		_, _ = tg.RefFromMessageID(s)
	})
}
