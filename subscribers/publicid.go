package subscribers

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// publicIDs maps a subscriber's internal id to the public id that names
// it in tokens and URLs, and back.
//
// A public id is the id encrypted with AES-128 under a random key kept in
// the database (table store_keys): the block holds the id in its first 8
// bytes and zeros in the last 8, and is written in base64url (22
// characters, as the random ids stored before version 3 were). Without
// the key an id reveals nothing and cannot be guessed: a forged one
// decrypts to non-zero check bytes except with probability 2⁻⁶⁴.
//
// Deriving instead of storing keeps a random key out of an index: see
// migration 3 in migrate.go. The key is not a token key and never
// rotates, since a public id must name its subscriber for as long as
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

// forRow is the public id of the row with id whose public_id column
// holds stored: stored if set (created before migration 3), else derived.
func (p publicIDs) forRow(id int64, stored string) string {
	if stored != "" {
		return stored
	}
	return p.of(id)
}

// id returns the internal id that pid was derived from, or false if pid
// was not derived under this key (a stored id from before version 3, or
// a forgery).
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
// Concurrent first opens agree: only one INSERT wins.
func initPublicIDKey(ctx context.Context, db *sql.DB) (publicIDs, error) {
	key := make([]byte, 16)
	if _, err := rand.Read(key); err != nil {
		return publicIDs{}, err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO store_keys (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, publicIDKeyName, key); err != nil {
		return publicIDs{}, fmt.Errorf("public id key: %w", err)
	}
	p, err := loadPublicIDKey(ctx, db)
	if err == nil && p.block == nil {
		err = errors.New("public id key: missing after insert")
	}
	return p, err
}

// loadPublicIDKey loads the key; a zero publicIDs if there is none yet.
func loadPublicIDKey(ctx context.Context, q dbtx) (publicIDs, error) {
	var key []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM store_keys WHERE name = ?`, publicIDKeyName).Scan(&key)
	if isNoRows(err) {
		return publicIDs{}, nil
	}
	if err != nil {
		return publicIDs{}, fmt.Errorf("public id key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return publicIDs{}, fmt.Errorf("public id key: %w", err)
	}
	return publicIDs{block: block}, nil
}
