package token_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/subscribers/token"
)

var (
	t0 = time.Date(2026, 2, 3, 9, 0, 0, 0, time.UTC)
	k1 = token.Key{ID: "k1", Secret: []byte("first-secret-0123456789abcdef")}
	k2 = token.Key{ID: "k2", Secret: []byte("second-secret-0123456789abcdef")}
)

func ring(tb testing.TB, now *time.Time, keys ...token.Key) *token.Keyring {
	tb.Helper()
	r, err := token.NewKeyring(func() time.Time { return *now }, keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	now := t0
	r := ring(t, &now, k1)
	for _, c := range []token.Claims{
		{Purpose: token.Unsubscribe, Subject: "T258BlmJ4AG7h7fRxxCUHQ", List: "monthly"},
		{Purpose: token.Unsubscribe, Subject: "x", List: ""},
		{Purpose: token.Preferences, Subject: "abc", List: "monthly"},
		{Purpose: token.Confirm, Subject: "abc", List: "monthly", ExpiresAt: t0.Add(48 * time.Hour), Nonce: 7},
	} {
		tok, err := r.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(tok, "+/=") || !strings.HasPrefix(tok, "v1.") || strings.Count(tok, ".") != 2 {
			t.Errorf("token %q is not v1.<b64url>.<b64url>", tok)
		}
		got, err := r.Verify(tok, c.Purpose)
		if err != nil {
			t.Fatalf("Verify(%v): %v", c, err)
		}
		if got.Subject != c.Subject || got.List != c.List || got.Purpose != c.Purpose || got.Nonce != c.Nonce ||
			got.KeyID != "k1" || !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("claims: got %+v, minted %+v", got, c)
		}
	}
}

// Checklist 22: a one-bit tamper anywhere, a wrong purpose or a wrong key
// is rejected, each with its own error; the token reveals no address or
// integer id.
func TestRejects(t *testing.T) {
	now := t0
	r1 := ring(t, &now, k1)
	tok, err := r1.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "pubid-123", List: "monthly"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EveryBitFlip", func(t *testing.T) {
		for i := range len(tok) {
			for bit := range 8 {
				b := []byte(tok)
				b[i] ^= 1 << bit
				_, err := r1.Verify(string(b), token.Unsubscribe)
				if err == nil {
					t.Fatalf("flipping bit %d of byte %d (%q→%q) still verifies", bit, i, tok[i], b[i])
				}
				if !errors.Is(err, token.ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
			}
		}
	})
	cases := []struct {
		name string
		tok  string
		want error
		ring *token.Keyring
		p    token.Purpose
	}{
		{"WrongPurposeConfirm", tok, token.ErrWrongPurpose, r1, token.Confirm},
		{"WrongPurposePrefs", tok, token.ErrWrongPurpose, r1, token.Preferences},
		{"UnknownKey", tok, token.ErrUnknownKey, ring(t, &now, k2), token.Unsubscribe},
		{"SameIDOtherSecret", tok, token.ErrBadSignature, ring(t, &now, token.Key{ID: "k1", Secret: k2.Secret}), token.Unsubscribe},
		{"Empty", "", token.ErrMalformed, r1, token.Unsubscribe},
		{"NoSignature", tok[:strings.LastIndexByte(tok, '.')], token.ErrMalformed, r1, token.Unsubscribe},
		{"V2", "v2" + tok[2:], token.ErrMalformed, r1, token.Unsubscribe},
		{"TooLong", tok + strings.Repeat("A", token.MaxLen), token.ErrMalformed, r1, token.Unsubscribe},
		{"SignatureSwapped", resign(tok, "AAAA"), token.ErrMalformed, r1, token.Unsubscribe},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.ring.Verify(c.tok, c.p)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// Forge: change the purpose inside the payload and keep the signature.
	t.Run("ForgedPurpose", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		p, _ := base64.RawURLEncoding.DecodeString(parts[1])
		p[1] = byte(token.Preferences)
		forged := "v1." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		if _, err := r1.Verify(forged, token.Preferences); !errors.Is(err, token.ErrBadSignature) {
			t.Fatalf("got %v, want ErrBadSignature", err)
		}
	})
}

func resign(tok, sig string) string { return tok[:strings.LastIndexByte(tok, '.')+1] + sig }

// Checklist 23 (token part): unsubscribe tokens never expire and survive a
// key rotation.
func TestRotationAndNoExpiry(t *testing.T) {
	now := t0
	old := ring(t, &now, k1)
	tok, err := old.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "s", List: "monthly"})
	if err != nil {
		t.Fatal(err)
	}
	rotated := ring(t, &now, k2, k1)
	now = t0.Add(10 * 365 * 24 * time.Hour)
	c, err := rotated.Verify(tok, token.Unsubscribe)
	if err != nil {
		t.Fatalf("old-key token after rotation and ten years: %v", err)
	}
	if c.KeyID != "k1" {
		t.Errorf("KeyID = %q, want k1", c.KeyID)
	}
	fresh, _ := rotated.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "s"})
	if c, _ := rotated.Verify(fresh, token.Unsubscribe); c.KeyID != "k2" {
		t.Errorf("new tokens signed by %q, want the newest key k2", c.KeyID)
	}
	if _, err := old.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "s", ExpiresAt: now}); err == nil {
		t.Error("Mint accepted an expiring unsubscribe token")
	}
}

// Checklist 25 (token part): confirm tokens expire.
func TestExpiry(t *testing.T) {
	now := t0
	r := ring(t, &now, k1)
	tok, _ := r.Mint(token.Claims{Purpose: token.Confirm, Subject: "s", ExpiresAt: t0.Add(48 * time.Hour)})
	now = t0.Add(47 * time.Hour)
	if _, err := r.Verify(tok, token.Confirm); err != nil {
		t.Fatalf("at +47h: %v", err)
	}
	now = t0.Add(48 * time.Hour)
	if _, err := r.Verify(tok, token.Confirm); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("at +48h: got %v, want ErrExpired", err)
	}
	now = t0.Add(49 * time.Hour)
	if _, err := r.Verify(tok, token.Confirm); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("at +49h: got %v, want ErrExpired", err)
	}
}

func TestNewKeyringValidation(t *testing.T) {
	_, err := token.NewKeyring(nil,
		token.Key{ID: "", Secret: k1.Secret},
		token.Key{ID: "a.b", Secret: k1.Secret},
		token.Key{ID: "short", Secret: []byte("x")},
		token.Key{ID: "ok", Secret: k1.Secret},
		token.Key{ID: "ok", Secret: k2.Secret},
	)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`key 1: id ""`, `id "a.b"`, `key "short": secret is 1 bytes`, `key id "ok" appears twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := token.NewKeyring(nil); err == nil {
		t.Error("empty keyring accepted")
	}
}

func TestMintRejects(t *testing.T) {
	now := t0
	r := ring(t, &now, k1)
	for _, c := range []token.Claims{
		{Purpose: 0, Subject: "s"},
		{Purpose: 9, Subject: "s"},
		{Purpose: token.Unsubscribe, Subject: ""},
		{Purpose: token.Unsubscribe, Subject: strings.Repeat("s", 65)},
		{Purpose: token.Unsubscribe, Subject: "s", List: strings.Repeat("l", 65)},
	} {
		if _, err := r.Mint(c); err == nil {
			t.Errorf("Mint(%+v) succeeded", c)
		}
	}
}

// FuzzVerify: arbitrary input never panics, and whatever verifies
// re-mints to a token carrying the same claims.
func FuzzVerify(f *testing.F) {
	now := t0
	r := ring(f, &now, k1, k2)
	good, _ := r.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "pub", List: "monthly"})
	conf, _ := r.Mint(token.Claims{Purpose: token.Confirm, Subject: "pub", ExpiresAt: t0.Add(time.Hour), Nonce: 3})
	f.Add(good)                       // valid
	f.Add(conf)                       // valid, other purpose
	f.Add("")                         // empty
	f.Add("v1..")                     // empty parts
	f.Add("v1.AAAA.AAAA")             // short payload
	f.Add(good[:len(good)-1] + "B")   // tampered signature
	f.Add("v1." + good[3:10] + "...") // truncated
	f.Add("v1.\x00\xff.é")            // binary and non-ASCII
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []token.Purpose{token.Confirm, token.Unsubscribe, token.Preferences} {
			c, err := r.Verify(s, p)
			if err != nil {
				if !errors.Is(err, token.ErrInvalid) {
					t.Fatalf("error %v does not wrap ErrInvalid", err)
				}
				continue
			}
			if s != good && s != conf {
				// Only minted tokens verify; a different string that
				// verifies would be a forgery or a malleability bug.
				t.Fatalf("unexpected token verifies: %q → %+v", s, c)
			}
		}
	})
}

// FuzzMint: any claims either fail to mint or round-trip exactly.
func FuzzMint(f *testing.F) {
	f.Add(uint8(2), "pub", "monthly", int64(0), uint64(0))
	f.Add(uint8(1), "pub", "", int64(3600), uint64(9))
	f.Add(uint8(3), "ü.\x00", "a,b", int64(-5), uint64(1<<63))
	now := t0
	r := ring(f, &now, k1)
	f.Fuzz(func(t *testing.T, p uint8, sub, list string, ttl int64, nonce uint64) {
		c := token.Claims{Purpose: token.Purpose(p), Subject: sub, List: list, Nonce: nonce}
		if ttl > 0 {
			c.ExpiresAt = t0.Add(time.Duration(ttl) * time.Second)
		}
		tok, err := r.Mint(c)
		if err != nil {
			return
		}
		if len(tok) > token.MaxLen {
			t.Fatalf("minted %d bytes, above MaxLen", len(tok))
		}
		got, err := r.Verify(tok, c.Purpose)
		if err != nil {
			t.Fatalf("Verify(Mint(%+v)): %v", c, err)
		}
		if got.Subject != sub || got.List != list || got.Nonce != nonce || got.Purpose != c.Purpose {
			t.Fatalf("round trip: %+v → %+v", c, got)
		}
	})
}

// BenchmarkMint: the delivery worker mints two tokens per message. Target
// a few µs.
func BenchmarkMint(b *testing.B) {
	now := t0
	r := ring(b, &now, k1)
	c := token.Claims{Purpose: token.Unsubscribe, Subject: "T258BlmJ4AG7h7fRxxCUHQ", List: "monthly"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures one verification.
func BenchmarkVerify(b *testing.B) {
	now := t0
	r := ring(b, &now, k1)
	tok, _ := r.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: "T258BlmJ4AG7h7fRxxCUHQ", List: "monthly"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Verify(tok, token.Unsubscribe); err != nil {
			b.Fatal(err)
		}
	}
}
