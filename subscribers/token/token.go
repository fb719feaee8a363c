package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// Purpose is what a token may be used for. A token minted for one purpose
// is rejected for every other with [ErrWrongPurpose].
type Purpose uint8

// The purposes of Tayori's links.
const (
	Confirm     Purpose = 1 // confirm a subscription (double opt-in)
	Unsubscribe Purpose = 2 // leave a list (or all lists); never expires
	Preferences Purpose = 3 // open the preference centre
)

// String returns the purpose's name ("confirm", "unsubscribe", "preferences").
func (p Purpose) String() string {
	switch p {
	case Confirm:
		return "confirm"
	case Unsubscribe:
		return "unsubscribe"
	case Preferences:
		return "preferences"
	}
	return fmt.Sprintf("purpose(%d)", uint8(p))
}

func (p Purpose) valid() bool { return p >= Confirm && p <= Preferences }

// Errors returned by [Keyring.Verify] (and by the subscriber store for
// [ErrUsed]). Each wraps ErrInvalid, so a web handler can answer every
// one of them with the same 4xx while logging the precise cause.
var (
	ErrInvalid      = errors.New("invalid token")
	ErrMalformed    = fmt.Errorf("%w: malformed", ErrInvalid)
	ErrBadSignature = fmt.Errorf("%w: bad signature", ErrInvalid)
	ErrUnknownKey   = fmt.Errorf("%w: unknown key id", ErrInvalid)
	ErrWrongPurpose = fmt.Errorf("%w: wrong purpose", ErrInvalid)
	ErrExpired      = fmt.Errorf("%w: expired", ErrInvalid)
	ErrUsed         = fmt.Errorf("%w: already used", ErrInvalid)
)

// MaxLen is the longest token Verify accepts; anything longer is
// ErrMalformed before any decoding.
const MaxLen = 512

const (
	prefix     = "v1."
	payloadVer = 1
	macLen     = sha256.Size
	maxField   = 64 // key id, subject and list are each at most 64 bytes
)

// Claims is what a token says.
type Claims struct {
	// Purpose is what the token is for. Required.
	Purpose Purpose
	// Subject is the subscriber's public id. Required; at most 64 bytes.
	Subject string
	// List is the list key the link is about ("monthly"); empty means
	// every list (an unsubscribe-from-all link). At most 64 bytes.
	List string
	// KeyID is the id of the signing key; Mint sets it.
	KeyID string
	// IssuedAt is when the token was minted; Mint sets it from the clock
	// when zero. Stored with second precision.
	IssuedAt time.Time
	// ExpiresAt is when the token stops verifying; zero means never.
	// Unsubscribe tokens must not expire. Second precision.
	ExpiresAt time.Time
	// Nonce is an opaque number the verifier checks against its own state
	// (the store's confirm counter); zero when unused.
	Nonce uint64
}

// Key is one HMAC secret with its id. IDs are short, printable and unique
// within a ring (at most 64 bytes).
type Key struct {
	ID     string
	Secret []byte
}

type ringKey struct {
	id     string
	secret []byte    // as given; only Derive uses it
	pool   sync.Pool // of hash.Hash, HMAC-SHA256 under this key
}

func (k *ringKey) get() hash.Hash  { return k.pool.Get().(hash.Hash) }
func (k *ringKey) put(h hash.Hash) { h.Reset(); k.pool.Put(h) }

// Keyring signs with its newest key and verifies with any of its keys.
// It is safe for concurrent use.
type Keyring struct {
	keys []*ringKey
	byID map[string]*ringKey
	now  func() time.Time
}

// MinSecretLen is the shortest secret NewKeyring accepts (128 bits).
const MinSecretLen = 16

// NewKeyring returns a ring of keys, newest first. now is the clock used
// for issue and expiry times; nil means time.Now. At least one key is
// required; ids must be unique, non-empty, printable ASCII without '.' and
// at most 64 bytes; secrets at least MinSecretLen bytes.
func NewKeyring(now func() time.Time, keys ...Key) (*Keyring, error) {
	if now == nil {
		now = time.Now
	}
	if len(keys) == 0 {
		return nil, errors.New("token keyring: no keys")
	}
	r := &Keyring{byID: make(map[string]*ringKey, len(keys)), now: now}
	var errs []error
	for i, k := range keys {
		switch {
		case k.ID == "" || len(k.ID) > maxField || !printable(k.ID):
			errs = append(errs, fmt.Errorf("token keyring: key %d: id %q must be 1–64 printable ASCII characters without '.'", i+1, k.ID))
			continue
		case len(k.Secret) < MinSecretLen:
			errs = append(errs, fmt.Errorf("token keyring: key %q: secret is %d bytes, want at least %d", k.ID, len(k.Secret), MinSecretLen))
			continue
		case r.byID[k.ID] != nil:
			errs = append(errs, fmt.Errorf("token keyring: key id %q appears twice", k.ID))
			continue
		}
		secret := derive(k.Secret, "tayori/token/v1")
		rk := &ringKey{id: k.ID, secret: slices.Clone(k.Secret)}
		rk.pool.New = func() any { return hmac.New(sha256.New, secret) }
		r.keys = append(r.keys, rk)
		r.byID[k.ID] = rk
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// derive separates the token key from other uses of the same secret.
func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '.' {
			return false
		}
	}
	return true
}

// Now returns the ring's clock reading.
func (r *Keyring) Now() time.Time { return r.now() }

// KeyIDs returns the ids of the ring's keys, newest (signing) first.
func (r *Keyring) KeyIDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// Derive returns, for each key of the ring (newest first), a key with the
// same id and the secret HMAC-SHA256(secret, label), so that other uses of
// the secrets (the suppression list's keyed hashes) are separated from
// token signing. label must not be "tayori/token/v1".
func (r *Keyring) Derive(label string) []Key {
	out := make([]Key, len(r.keys))
	for i, k := range r.keys {
		out[i] = Key{ID: k.id, Secret: derive(k.secret, label)}
	}
	return out
}

// Mint signs c with the newest key and returns the token. It sets
// c.KeyID, and c.IssuedAt when zero. It fails on an unknown purpose, an
// empty or oversized subject, an oversized list key, or an expiring
// unsubscribe token.
func (r *Keyring) Mint(c Claims) (string, error) {
	if !c.Purpose.valid() {
		return "", fmt.Errorf("mint token: unknown purpose %d", c.Purpose)
	}
	if c.Subject == "" || len(c.Subject) > maxField {
		return "", fmt.Errorf("mint token: subject must be 1–%d bytes", maxField)
	}
	if len(c.List) > maxField {
		return "", fmt.Errorf("mint token: list key longer than %d bytes", maxField)
	}
	if c.Purpose == Unsubscribe && !c.ExpiresAt.IsZero() {
		return "", errors.New("mint token: unsubscribe tokens never expire")
	}
	k := r.keys[0]
	if c.IssuedAt.IsZero() {
		c.IssuedAt = r.now()
	}
	var exp int64
	if !c.ExpiresAt.IsZero() {
		exp = c.ExpiresAt.Unix()
	}

	// payload: ver | purpose | iat(8) | exp(8) | nonce(8) | kid | sub | list
	var pbuf [2 + 24 + 3 + 3*maxField]byte
	p := pbuf[:0]
	p = append(p, payloadVer, byte(c.Purpose))
	p = binary.BigEndian.AppendUint64(p, uint64(c.IssuedAt.Unix()))
	p = binary.BigEndian.AppendUint64(p, uint64(exp))
	p = binary.BigEndian.AppendUint64(p, c.Nonce)
	p = append(p, byte(len(k.id)))
	p = append(p, k.id...)
	p = append(p, byte(len(c.Subject)))
	p = append(p, c.Subject...)
	p = append(p, byte(len(c.List)))
	p = append(p, c.List...)

	enc := base64.RawURLEncoding
	n := len(prefix) + enc.EncodedLen(len(p))
	out := make([]byte, n, n+1+enc.EncodedLen(macLen))
	copy(out, prefix)
	enc.Encode(out[len(prefix):], p)

	h := k.get()
	h.Write(out)
	var sum [macLen]byte
	mac := h.Sum(sum[:0])
	k.put(h)

	out = append(out, '.')
	out = enc.AppendEncode(out, mac)
	return string(out), nil
}

// tokenChar marks the bytes a token may hold after its prefix: the
// base64url alphabet and the dot between payload and signature.
var tokenChar = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = true
	}
	return t
}()

// Verify checks tok and returns its claims if it is well formed, signed by
// a key in the ring, minted for purpose want and not expired. Errors wrap
// ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrWrongPurpose or
// ErrExpired (checked in that order: nothing in an unsigned payload is
// trusted beyond choosing the key). Nonces are the caller's to check.
func (r *Keyring) Verify(tok string, want Purpose) (Claims, error) {
	if len(tok) > MaxLen || !strings.HasPrefix(tok, prefix) {
		return Claims{}, ErrMalformed
	}
	// The base64 decoder skips CR and LF, so "abc\ndef" would decode like
	// "abcdef": allow only the token alphabet, so each token has one form.
	for i := len(prefix); i < len(tok); i++ {
		if c := tok[i]; !tokenChar[c] {
			return Claims{}, ErrMalformed
		}
	}
	dot := strings.LastIndexByte(tok, '.')
	if dot < len(prefix) {
		return Claims{}, ErrMalformed
	}
	signed, macPart := tok[:dot], tok[dot+1:]
	// Strict: a base64 string whose unused low bits are set is rejected,
	// so no two token strings decode to the same signature.
	enc := base64.RawURLEncoding.Strict()
	var pbuf [MaxLen]byte
	p, err := enc.AppendDecode(pbuf[:0], []byte(signed[len(prefix):]))
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var mbuf [macLen + 3]byte
	mac, err := enc.AppendDecode(mbuf[:0], []byte(macPart))
	if err != nil || len(mac) != macLen {
		return Claims{}, ErrMalformed
	}
	c, err := decodePayload(p)
	if err != nil {
		return Claims{}, err
	}
	k := r.byID[c.KeyID]
	if k == nil {
		return Claims{}, ErrUnknownKey
	}
	h := k.get()
	h.Write([]byte(signed))
	var sum [macLen]byte
	ok := hmac.Equal(h.Sum(sum[:0]), mac)
	k.put(h)
	if !ok {
		return Claims{}, ErrBadSignature
	}
	if c.Purpose != want {
		return Claims{}, fmt.Errorf("%w: token is for %s, not %s", ErrWrongPurpose, c.Purpose, want)
	}
	if !c.ExpiresAt.IsZero() && !r.now().Before(c.ExpiresAt) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func decodePayload(p []byte) (Claims, error) {
	if len(p) < 2+24+3 || p[0] != payloadVer {
		return Claims{}, ErrMalformed
	}
	var c Claims
	c.Purpose = Purpose(p[1])
	iat := int64(binary.BigEndian.Uint64(p[2:]))
	exp := int64(binary.BigEndian.Uint64(p[10:]))
	c.Nonce = binary.BigEndian.Uint64(p[18:])
	rest := p[26:]
	var fields [3]string
	for i := range fields {
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 || rest[0] > maxField {
			return Claims{}, ErrMalformed
		}
		n := int(rest[0])
		fields[i] = string(rest[1 : 1+n])
		rest = rest[1+n:]
	}
	if len(rest) != 0 || fields[0] == "" || fields[1] == "" {
		return Claims{}, ErrMalformed
	}
	c.KeyID, c.Subject, c.List = fields[0], fields[1], fields[2]
	c.IssuedAt = time.Unix(iat, 0).UTC()
	if exp != 0 {
		c.ExpiresAt = time.Unix(exp, 0).UTC()
	}
	return c, nil
}
