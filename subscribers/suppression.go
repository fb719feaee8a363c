package subscribers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"

	"github.com/tayori-news/tayori/subscribers/token"
)

// Reason is why an address is suppressed.
type Reason string

// The suppression reasons.
const (
	ReasonErased     Reason = "erased"
	ReasonBounced    Reason = "bounced"
	ReasonComplained Reason = "complained"
)

// suppKey computes the keyed hash of addresses under one key of the ring.
type suppKey struct {
	id   string
	pool *sync.Pool
}

func suppressionKeys(ring *token.Keyring) []suppKey {
	var out []suppKey
	for _, k := range ring.Derive("tayori/suppression/v1") {
		secret := k.Secret
		out = append(out, suppKey{id: k.ID, pool: &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}})
	}
	return out
}

// sum returns HMAC-SHA256(key, normalised address). The address is
// lower-cased whole for the hash, so that "Taro@x.jp" and "taro@x.jp" are
// suppressed together even though delivery keeps the local part's case.
func (k suppKey) sum(email string) []byte {
	h := k.pool.Get().(hash.Hash)
	h.Write([]byte(emailKey(email)))
	out := h.Sum(make([]byte, 0, sha256.Size))
	h.Reset()
	k.pool.Put(h)
	return out
}

// suppressionHashes returns the hashes of email under every key of the
// ring, newest first: an entry written under an older key still matches
// after a rotation as long as that key stays in the ring.
func (s *Store) suppressionHashes(email string) [][]byte {
	out := make([][]byte, len(s.supp))
	for i, k := range s.supp {
		out[i] = k.sum(email)
	}
	return out
}

func (s *Store) isSuppressed(ctx context.Context, q dbtx, email string) (bool, error) {
	for _, h := range s.suppressionHashes(email) {
		var one int
		err := q.QueryRowContext(ctx, qSuppressionExists, h).Scan(&one)
		if err == nil {
			return true, nil
		}
		if !isNoRows(err) {
			return false, fmt.Errorf("check suppression: %w", err)
		}
	}
	return false, nil
}

func (s *Store) suppress(ctx context.Context, q dbtx, email string, reason Reason) error {
	if email == "" {
		return nil
	}
	_, err := q.ExecContext(ctx, qSuppressionInsert, s.supp[0].sum(email), s.supp[0].id, string(reason), s.nowText())
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

func (s *Store) unsuppress(ctx context.Context, q dbtx, email string) error {
	for _, h := range s.suppressionHashes(email) {
		if _, err := q.ExecContext(ctx, qSuppressionDelete, h); err != nil {
			return fmt.Errorf("lift suppression: %w", err)
		}
	}
	return nil
}

// IsSuppressed reports whether an address is on the suppression list
// (erased, hard-bounced or complained). The address is normalised first.
func (s *Store) IsSuppressed(ctx context.Context, email string) (bool, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return false, err
	}
	return s.isSuppressed(ctx, s.db, e)
}

// Suppress adds an address to the suppression list without touching any
// subscriber (for addresses known only from a bounce or a complaint).
func (s *Store) Suppress(ctx context.Context, email string, reason Reason) error {
	e, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	switch reason {
	case ReasonErased, ReasonBounced, ReasonComplained:
	default:
		return fieldErr("reason", "%q is not one of erased, bounced, complained", reason)
	}
	return s.suppress(ctx, s.db, e, reason)
}
