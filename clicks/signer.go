package clicks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tayori-news/tayori/subscribers/token"
)

// KeyLabel is the label under which the Signer derives its keys from the
// keyring's secrets (token.Keyring.Derive), apart from every other use.
const KeyLabel = "tayori/clicks/v1"

// Errors of [Signer.Parse], checked with errors.Is.
var (
	// ErrBadToken is a token that is not one the Signer could have
	// written: malformed, forged, or signed by a key no longer in the
	// ring.
	ErrBadToken = errors.New("clicks: invalid token")
	// ErrNotFound is a well-signed token whose link is not recorded (the
	// send was deleted).
	ErrNotFound = errors.New("clicks: unknown link")
)

// MaxTokenLen is the longest token Parse accepts; anything longer is
// ErrBadToken before any decoding.
const MaxTokenLen = 96

// macLen is the length of the token's truncated HMAC-SHA256 (128 bits).
const macLen = 16

// Ref names one counted link: the send and the link's number in it.
type Ref struct {
	SendID int64
	Seq    int64
}

// Signer writes and reads link tokens: base64url (no padding) of
//
//	len(key id) | key id | uvarint(send id) | uvarint(seq) | HMAC-SHA256(key, the bytes before)[:16]
//
// It signs with its newest key and reads with any. A token names no
// reader. A Signer is safe for concurrent use.
type Signer struct {
	keys []token.Key // newest first
}

// NewSigner returns a Signer whose keys are derived from ring's secrets
// under KeyLabel.
func NewSigner(ring *token.Keyring) (*Signer, error) {
	if ring == nil {
		return nil, errors.New("clicks: no keyring")
	}
	return NewSignerKeys(ring.Derive(KeyLabel))
}

// NewSignerKeys is NewSigner with the keys given directly, newest first:
// each id 1 to 32 bytes, each secret at least token.MinSecretLen bytes.
func NewSignerKeys(keys []token.Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("clicks: no keys")
	}
	for i, k := range keys {
		if len(k.ID) == 0 || len(k.ID) > 32 {
			return nil, fmt.Errorf("clicks: key %d: id must be 1 to 32 bytes", i)
		}
		if len(k.Secret) < token.MinSecretLen {
			return nil, fmt.Errorf("clicks: key %q: secret shorter than %d bytes", k.ID, token.MinSecretLen)
		}
	}
	return &Signer{keys: keys}, nil
}

// Mint returns the token of r under the newest key.
func (s *Signer) Mint(r Ref) string {
	k := s.keys[0]
	b := make([]byte, 0, 1+len(k.ID)+2*binary.MaxVarintLen64+macLen)
	b = append(b, byte(len(k.ID)))
	b = append(b, k.ID...)
	b = binary.AppendUvarint(b, uint64(r.SendID))
	b = binary.AppendUvarint(b, uint64(r.Seq))
	b = append(b, mac(k.Secret, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Parse verifies tok and returns what it names, or ErrBadToken.
func (s *Signer) Parse(tok string) (Ref, error) {
	if len(tok) == 0 || len(tok) > MaxTokenLen {
		return Ref{}, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1+1+2+macLen {
		return Ref{}, ErrBadToken
	}
	n := int(b[0])
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if n == 0 || 1+n > len(body) {
		return Ref{}, ErrBadToken
	}
	id := string(body[1 : 1+n])
	rest := body[1+n:]
	send, k := binary.Uvarint(rest)
	if k <= 0 || send == 0 || send > 1<<62 {
		return Ref{}, ErrBadToken
	}
	rest = rest[k:]
	seq, k := binary.Uvarint(rest)
	if k <= 0 || k != len(rest) || seq > 1<<31 {
		return Ref{}, ErrBadToken
	}
	for _, key := range s.keys {
		if key.ID == id {
			if !hmac.Equal(mac(key.Secret, body), sum) {
				return Ref{}, ErrBadToken
			}
			return Ref{SendID: int64(send), Seq: int64(seq)}, nil
		}
	}
	return Ref{}, ErrBadToken
}

func mac(key, b []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(nil)[:macLen]
}
