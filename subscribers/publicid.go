package subscribers

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// publicIDs maps a subscriber's internal id to the public id that names
// it in tokens and URLs, and back.
//
// A public id is the id encrypted with AES-128 under a random key kept in
// the database (table store_keys, Storage.PublicIDKey): the block holds
// the id in its first 8 bytes and zeros in the last 8, and is written in
// base64url (22 characters). Without the key an id reveals nothing and
// cannot be guessed: a forged one decrypts to non-zero check bytes except
// with probability 2⁻⁶⁴.
//
// Deriving instead of storing keeps a random key out of an index: with a
// stored random id under a UNIQUE index, a large import dirtied most of
// that index's pages in every transaction. The key is not a token key and
// never rotates, since a public id must name its subscriber for as long as
// unsubscribe links live; tokens carry their own signatures.
type publicIDs struct {
	block cipher.Block
}

const publicIDKeyName = "public_id"

// of returns id's public id.
func (p publicIDs) of(id int64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(id))
	p.block.Encrypt(b[:], b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// id returns the internal id that pid was derived from, or false if pid
// was not derived under this key (a forgery).
func (p publicIDs) id(pid string) (int64, bool) {
	var b [16]byte
	if base64.RawURLEncoding.DecodedLen(len(pid)) != len(b) {
		return 0, false
	}
	// Strict: the last character's unused bits must be zero, so that each
	// id has one spelling.
	if n, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(pid)); err != nil || n != len(b) {
		return 0, false
	}
	p.block.Decrypt(b[:], b[:])
	if binary.BigEndian.Uint64(b[8:]) != 0 {
		return 0, false
	}
	id := int64(binary.BigEndian.Uint64(b[:8]))
	return id, id > 0
}

// initPublicIDKey creates the public-id key on first use and loads it.
// Concurrent first opens agree: only one stored key wins.
func initPublicIDKey(ctx context.Context, st Storage) (publicIDs, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return publicIDs{}, err
	}
	stored, err := st.PublicIDKey(ctx, key)
	if err != nil {
		return publicIDs{}, fmt.Errorf("public id key: %w", err)
	}
	block, err := aes.NewCipher(stored)
	if err != nil {
		return publicIDs{}, fmt.Errorf("public id key: %w", err)
	}
	return publicIDs{block: block}, nil
}
