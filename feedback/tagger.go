package feedback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/mail"
	"strings"

	"github.com/tayori-news/tayori/subscribers/token"
)

// Ref names one copy of a newsletter: the send it belongs to and its
// reader. The zero Ref names nothing (a test copy).
type Ref struct {
	SendID       int64
	SubscriberID int64
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r == Ref{} }

// Errors of the Tagger's decoders, checked with errors.Is. A report whose
// addresses and Message-ID give ErrNoToken was not correlated; one that
// gives ErrBadToken carried something that looks like a token but was not
// minted by a key of the ring (forged, corrupted, or from a retired key).
var (
	ErrNoToken  = errors.New("no correlation token")
	ErrBadToken = errors.New("invalid correlation token")
)

// KeyLabel is the label under which the Tagger derives its keys from the
// keyring's secrets (token.Keyring.Derive), apart from link signing and
// suppression hashes.
const KeyLabel = "tayori/feedback/v1"

// DefaultBounceLabel is the subdomain of the From domain that receives
// bounces: b+TOKEN@bounce.<from-domain>.
const DefaultBounceLabel = "bounce"

// Token lengths: a key character, then a base32 block.
const (
	compactLen = 1 + 26 // 16 bytes: both ids < 2^32
	longLen    = 1 + 39 // 24 bytes: any ids
	// MaxTokenLen is the longest token the Tagger writes.
	MaxTokenLen = longLen
)

// tokenEncoding is the lower-case base32 alphabet of mailer.NewMessageID
// (no i, l, o, u). Decoding folds upper case, so a token survives an MTA
// or a mailbox that changes the case of a local part.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var tokenEncoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// compactMagic fills the half of a compact block that authenticates it.
var compactMagic = [8]byte{'t', 'a', 'y', 'o', 'r', 'i', 0, 1}

type tagKey struct {
	id      string
	tag     byte         // index in alphabet, from the key id
	compact cipher.Block // AES-128: send(4)|subscriber(4)|magic(8)
	long    cipher.Block // AES-128: send(8)|subscriber(8)
	mac     cipher.Block // AES-128 PRF over the long ciphertext
}

// Tagger writes and reads the correlation token that ties a bounce or a
// complaint to one copy of a newsletter. A token is 27 characters (40
// when an id is 2^32 or more) of [0-9a-z], and:
//
//   - authenticated: a block whose decryption does not end in a fixed
//     64-bit value (compact form), or whose 64-bit AES tag does not match
//     (long form), is rejected, so a forgery succeeds with probability
//     2^-64 per key tried;
//   - unreadable without the key: the ids are AES-encrypted;
//   - rotatable: its first character names the key (derived from the
//     keyring's key ids), and every key of the ring still decodes;
//   - deterministic: one Ref always gives the same token under one key.
//
// A Tagger is safe for concurrent use.
type Tagger struct {
	keys        []*tagKey // newest first
	domain      string
	bounceLabel string
}

// TaggerConfig configures a Tagger.
type TaggerConfig struct {
	// Domain is the From address's domain (news.example.go.jp): the right
	// side of Message-IDs, and the parent of the bounce domain. Required.
	Domain string
	// BounceLabel is the subdomain that receives bounces, so return paths
	// are b+TOKEN@BounceLabel.Domain (relaxed SPF alignment with the From
	// domain). Default DefaultBounceLabel ("bounce").
	BounceLabel string
}

// NewTagger returns a Tagger whose keys are derived from ring's secrets
// under KeyLabel. It writes with the newest key and reads with any.
func NewTagger(ring *token.Keyring, cfg TaggerConfig) (*Tagger, error) {
	if ring == nil {
		return nil, errors.New("feedback tagger: no keyring")
	}
	return NewTaggerKeys(ring.Derive(KeyLabel), cfg)
}

// NewTaggerKeys is NewTagger with the keys given directly, newest first
// (each secret at least 16 bytes).
func NewTaggerKeys(keys []token.Key, cfg TaggerConfig) (*Tagger, error) {
	if len(keys) == 0 {
		return nil, errors.New("feedback tagger: no keys")
	}
	cfg.Domain = strings.ToLower(strings.TrimSpace(cfg.Domain))
	if !validDomain(cfg.Domain) {
		return nil, fmt.Errorf("feedback tagger: domain %q is not a domain name", cfg.Domain)
	}
	if cfg.BounceLabel == "" {
		cfg.BounceLabel = DefaultBounceLabel
	}
	cfg.BounceLabel = strings.ToLower(cfg.BounceLabel)
	if !validDomain(cfg.BounceLabel) {
		return nil, fmt.Errorf("feedback tagger: bounce label %q is not a domain label", cfg.BounceLabel)
	}
	t := &Tagger{domain: cfg.Domain, bounceLabel: cfg.BounceLabel}
	for _, k := range keys {
		if len(k.Secret) < token.MinSecretLen {
			return nil, fmt.Errorf("feedback tagger: key %q: secret shorter than %d bytes", k.ID, token.MinSecretLen)
		}
		sum := sha256.Sum256([]byte("tayori/feedback/kid\x00" + k.ID))
		tk := &tagKey{id: k.ID, tag: sum[0] & 31}
		for _, b := range []struct {
			label string
			dst   *cipher.Block
		}{{"compact", &tk.compact}, {"long", &tk.long}, {"mac", &tk.mac}} {
			m := hmac.New(sha256.New, k.Secret)
			m.Write([]byte(b.label))
			blk, err := aes.NewCipher(m.Sum(nil)[:16])
			if err != nil {
				return nil, fmt.Errorf("feedback tagger: key %q: %w", k.ID, err)
			}
			*b.dst = blk
		}
		t.keys = append(t.keys, tk)
	}
	return t, nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || d[0] == '.' || d[len(d)-1] == '.' || strings.Contains(d, "..") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Domain returns the domain of Message-IDs (the From domain).
func (t *Tagger) Domain() string { return t.domain }

// BounceDomain returns the domain of return paths: bounce.<domain>.
func (t *Tagger) BounceDomain() string { return t.bounceLabel + "." + t.domain }

// Token returns r's token under the newest key.
func (t *Tagger) Token(r Ref) string {
	var out [longLen]byte
	return string(t.appendToken(out[:0], r))
}

func fits32(v int64) bool { return v >= 0 && v <= math.MaxUint32 }

func (t *Tagger) appendToken(dst []byte, r Ref) []byte {
	k := t.keys[0]
	dst = append(dst, alphabet[k.tag])
	var blk [24]byte
	if fits32(r.SendID) && fits32(r.SubscriberID) {
		binary.BigEndian.PutUint32(blk[0:], uint32(r.SendID))
		binary.BigEndian.PutUint32(blk[4:], uint32(r.SubscriberID))
		copy(blk[8:16], compactMagic[:])
		k.compact.Encrypt(blk[:16], blk[:16])
		return tokenEncoding.AppendEncode(dst, blk[:16])
	}
	binary.BigEndian.PutUint64(blk[0:], uint64(r.SendID))
	binary.BigEndian.PutUint64(blk[8:], uint64(r.SubscriberID))
	k.long.Encrypt(blk[:16], blk[:16])
	var tag [16]byte
	k.mac.Encrypt(tag[:], blk[:16])
	copy(blk[16:], tag[:8])
	return tokenEncoding.AppendEncode(dst, blk[:24])
}

// Parse decodes a token written by Token (in either case) with whichever
// key of the ring wrote it. Anything else is ErrBadToken.
func (t *Tagger) Parse(tok string) (Ref, error) {
	n := len(tok)
	if n != compactLen && n != longLen {
		return Ref{}, ErrBadToken
	}
	var lower [longLen]byte
	for i := 0; i < n; i++ {
		c := tok[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	tag := strings.IndexByte(alphabet, lower[0])
	if tag < 0 {
		return Ref{}, ErrBadToken
	}
	var blk [24]byte
	m, err := tokenEncoding.Decode(blk[:], lower[1:n])
	if err != nil || m != (n-1)*5/8 {
		return Ref{}, ErrBadToken
	}
	// One token, one spelling: the unused low bits of the last character
	// must be zero.
	var again [longLen]byte
	if string(tokenEncoding.AppendEncode(again[:0], blk[:m])) != string(lower[1:n]) {
		return Ref{}, ErrBadToken
	}
	for _, k := range t.keys {
		if int(k.tag) != tag {
			continue
		}
		if r, ok := k.open(blk[:m]); ok {
			return r, nil
		}
	}
	return Ref{}, ErrBadToken
}

func (k *tagKey) open(c []byte) (Ref, bool) {
	var p [16]byte
	if len(c) == 16 {
		k.compact.Decrypt(p[:], c)
		if subtle.ConstantTimeCompare(p[8:], compactMagic[:]) != 1 {
			return Ref{}, false
		}
		return Ref{
			SendID:       int64(binary.BigEndian.Uint32(p[0:])),
			SubscriberID: int64(binary.BigEndian.Uint32(p[4:])),
		}, true
	}
	var tag [16]byte
	k.mac.Encrypt(tag[:], c[:16])
	if subtle.ConstantTimeCompare(tag[:8], c[16:24]) != 1 {
		return Ref{}, false
	}
	k.long.Decrypt(p[:], c[:16])
	return Ref{
		SendID:       int64(binary.BigEndian.Uint64(p[0:])),
		SubscriberID: int64(binary.BigEndian.Uint64(p[8:])),
	}, true
}

// ReturnPath returns the envelope sender (MAIL FROM) of r's copy:
// b+TOKEN@bounce.<domain>. Bounces sent there name the copy even when
// the report itself is mangled.
func (t *Tagger) ReturnPath(r Ref) string {
	var buf [2 + longLen + 1 + 256]byte
	b := append(buf[:0], "b+"...)
	b = t.appendToken(b, r)
	b = append(b, '@')
	b = append(b, t.bounceLabel...)
	b = append(b, '.')
	b = append(b, t.domain...)
	return string(b)
}

// MessageID returns a Message-ID for r's copy, without angle brackets
// (the form mailer.BuilderOptions.MessageID returns): TOKEN.RANDOM@domain,
// where RANDOM is 64 random bits, so a copy sent twice gets two ids. For
// the zero Ref (a test copy with no reader) it is 128 random bits and no
// token. The local part is at most 54 characters, [0-9a-z.] only.
func (t *Tagger) MessageID(r Ref) string {
	var buf [longLen + 1 + 26 + 1 + 256]byte
	b := buf[:0]
	var rnd [16]byte
	binary.LittleEndian.PutUint64(rnd[:8], rand.Uint64())
	if r.IsZero() {
		binary.LittleEndian.PutUint64(rnd[8:], rand.Uint64())
		b = tokenEncoding.AppendEncode(b, rnd[:16])
	} else {
		b = t.appendToken(b, r)
		b = append(b, '.')
		b = tokenEncoding.AppendEncode(b, rnd[:8])
	}
	b = append(b, '@')
	b = append(b, t.domain...)
	return string(b)
}

// RefFromAddress reads the Ref of a return path written by ReturnPath.
// It accepts any form net/mail parses ("<b+…@bounce.example>", with a
// display name) and ignores the domain, so reports that reach the bounce
// address under another name still correlate. An address with no
// "b+TOKEN" local part gives ErrNoToken; a bad token ErrBadToken.
func (t *Tagger) RefFromAddress(addr string) (Ref, error) {
	addr = strings.TrimSpace(addr)
	if strings.ContainsAny(addr, " \t\"(") { // a display name or a comment
		if a, err := mail.ParseAddress(addr); err == nil {
			addr = a.Address
		}
	}
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Ref{}, ErrNoToken
	}
	local := addr[:at]
	if len(local) < 2 || (local[0] != 'b' && local[0] != 'B') || local[1] != '+' {
		return Ref{}, ErrNoToken
	}
	return t.Parse(local[2:])
}

// RefFromMessageID reads the Ref of a Message-ID written by MessageID,
// with or without angle brackets. A Message-ID of another form (a test
// copy, a message from elsewhere) gives ErrNoToken; a bad token
// ErrBadToken.
func (t *Tagger) RefFromMessageID(id string) (Ref, error) {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	at := strings.LastIndexByte(id, '@')
	if at < 0 {
		return Ref{}, ErrNoToken
	}
	local := id[:at]
	dot := strings.IndexByte(local, '.')
	if dot < 0 || (dot != compactLen && dot != longLen) {
		return Ref{}, ErrNoToken
	}
	return t.Parse(local[:dot])
}
