package clicks_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/subscribers/token"
)

var (
	k1 = token.Key{ID: "k1", Secret: []byte("clicks-test-secret-k1-0123456789")}
	k2 = token.Key{ID: "k2", Secret: []byte("clicks-test-secret-k2-0123456789")}
)

func newSigner(tb testing.TB, keys ...token.Key) *clicks.Signer {
	tb.Helper()
	s, err := clicks.NewSignerKeys(keys)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestSignerRoundTrip(t *testing.T) {
	s := newSigner(t, k1)
	for _, r := range []clicks.Ref{{SendID: 1, Seq: 0}, {SendID: 42, Seq: 7}, {SendID: 1 << 40, Seq: 1 << 20}} {
		tok := s.Mint(r)
		if len(tok) > clicks.MaxTokenLen {
			t.Errorf("%+v: token of %d characters", r, len(tok))
		}
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Errorf("%+v: token %q is not URL-safe", r, tok)
		}
		got, err := s.Parse(tok)
		if err != nil || got != r {
			t.Errorf("Parse(Mint(%+v)) = %+v, %v", r, got, err)
		}
		if s.Mint(r) != tok {
			t.Errorf("%+v: two tokens for one link (every reader must get the same)", r)
		}
	}
}

// TestSignerRejects: a one-bit change anywhere, another key, a retired
// key or garbage is ErrBadToken.
func TestSignerRejects(t *testing.T) {
	s := newSigner(t, k1)
	tok := s.Mint(clicks.Ref{SendID: 3, Seq: 2})
	for i := range len(tok) {
		b := []byte(tok)
		for _, c := range []byte{'A', 'B'} {
			if b[i] == c {
				continue
			}
			b[i] = c
			if r, err := s.Parse(string(b)); !errors.Is(err, clicks.ErrBadToken) {
				t.Errorf("tampered at %d: %+v, %v", i, r, err)
			}
			break
		}
	}
	other := newSigner(t, k2)
	if _, err := other.Parse(tok); !errors.Is(err, clicks.ErrBadToken) {
		t.Errorf("a key not in the ring verified: %v", err)
	}
	forged := newSigner(t, token.Key{ID: "k1", Secret: []byte("another-secret-under-the-same-id")})
	if _, err := s.Parse(forged.Mint(clicks.Ref{SendID: 3, Seq: 2})); !errors.Is(err, clicks.ErrBadToken) {
		t.Errorf("a forgery under k1's id verified: %v", err)
	}
	for _, bad := range []string{"", "x", "!!!!", strings.Repeat("A", clicks.MaxTokenLen+1), tok + "A", tok[:len(tok)-1]} {
		if _, err := s.Parse(bad); !errors.Is(err, clicks.ErrBadToken) {
			t.Errorf("Parse(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}

// TestSignerRotation: after a new key is put first, tokens of the old
// one still verify while it stays in the ring.
func TestSignerRotation(t *testing.T) {
	old := newSigner(t, k1).Mint(clicks.Ref{SendID: 9, Seq: 1})
	rotated := newSigner(t, k2, k1)
	if r, err := rotated.Parse(old); err != nil || r != (clicks.Ref{SendID: 9, Seq: 1}) {
		t.Errorf("old token after rotation: %+v, %v", r, err)
	}
	if rotated.Mint(clicks.Ref{SendID: 9, Seq: 1}) == old {
		t.Error("the rotated ring still signs with the old key")
	}
}

func TestNewSignerFromKeyring(t *testing.T) {
	ring, err := token.NewKeyring(time.Now, k1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := clicks.NewSigner(ring)
	if err != nil {
		t.Fatal(err)
	}
	// The derived key is not the link tokens' key itself.
	if _, err := newSigner(t, k1).Parse(s.Mint(clicks.Ref{SendID: 1})); err == nil {
		t.Error("the signer uses the keyring's secret as is, not a derived key")
	}
	if _, err := clicks.NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) accepted")
	}
	if _, err := clicks.NewSignerKeys([]token.Key{{ID: "k", Secret: []byte("short")}}); err == nil {
		t.Error("a short secret accepted")
	}
}
