package clicks_test

import (
	"testing"

	"github.com/tayori-news/tayori/clicks"
)

// FuzzParse: Parse never panics, and whatever it accepts names a link
// whose token parses back to the same link (round trip).
func FuzzParse(f *testing.F) {
	s := newSigner(f, k1)
	for _, seed := range []string{
		s.Mint(clicks.Ref{SendID: 1, Seq: 0}),       // a good token
		s.Mint(clicks.Ref{SendID: 1 << 40, Seq: 3}), // a long send id
		"",                              // empty
		"AAAA",                          // too short
		"AmsxAQAAAAAAAAAAAAAAAAAAAAA",   // key id length but a zero send id and no valid MAC
		"!!!not-base64!!!",              // not base64url
		"AP8AAAAAAAAAAAAAAAAAAAAAAAA",   // key id length 0
		"_____________________________", // every bit set
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := s.Parse(tok)
		if err != nil {
			return
		}
		if r.SendID <= 0 || r.Seq < 0 {
			t.Fatalf("Parse(%q) = %+v", tok, r)
		}
		back, err := s.Parse(s.Mint(r))
		if err != nil || back != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}
