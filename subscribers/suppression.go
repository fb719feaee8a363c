package subscribers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
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

func (s *Store) isSuppressed(ctx context.Context, q Queries, email string) (bool, error) {
	sup, err := q.AnySuppressed(ctx, s.suppressionHashes(email))
	if err != nil {
		return false, fmt.Errorf("check suppression: %w", err)
	}
	return sup, nil
}

func (s *Store) suppress(ctx context.Context, q Queries, email string, reason Reason) error {
	if email == "" {
		return nil
	}
	err := q.Suppress(ctx, Suppression{Hash: s.supp[0].sum(email), KeyID: s.supp[0].id, Reason: reason, CreatedAt: s.nowUTC()})
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

func (s *Store) unsuppress(ctx context.Context, q Queries, email string) error {
	for _, h := range s.suppressionHashes(email) {
		if err := q.DeleteSuppression(ctx, h); err != nil {
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
	return s.isSuppressed(ctx, s.st, e)
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
	return s.suppress(ctx, s.st, e, reason)
}

// RekeyResult is what RekeySuppressions did.
type RekeyResult struct {
	// Key is the ring's newest key, which entries were moved to.
	Key string `json:"key"`
	// Rekeyed counts entries moved from an older key.
	Rekeyed int `json:"rekeyed"`
	// Remaining counts, per older key id, the entries still under it:
	// erased addresses and addresses known only from a report, whose
	// address the store no longer has. They hold only while that key stays
	// in the ring.
	Remaining map[string]int64 `json:"remaining"`
}

// RekeySuppressions moves suppression entries written under older keys of
// the ring to its newest key, wherever the store still has the address:
// the bounced and complained subscribers. Erased addresses cannot be moved
// (their hash is all that is left), so it reports how many entries each
// older key still holds: retire a key from TAYORI_SECRET only when its
// count is 0, or when losing those erasures' suppression is acceptable.
// Running it again moves nothing more.
func (s *Store) RekeySuppressions(ctx context.Context) (RekeyResult, error) {
	res := RekeyResult{Key: s.supp[0].id, Remaining: map[string]int64{}}
	err := s.inTx(ctx, func(tx Queries) error {
		emails, err := tx.SuppressedReaders(ctx)
		if err != nil {
			return err
		}
		newest := s.supp[0]
		for _, e := range emails {
			for _, k := range s.supp[1:] {
				old := k.sum(e)
				ent, err := tx.SuppressionUnder(ctx, old, k.id)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := tx.Suppress(ctx, Suppression{Hash: newest.sum(e), KeyID: newest.id, Reason: ent.Reason, CreatedAt: ent.CreatedAt}); err != nil {
					return err
				}
				if err := tx.DeleteSuppression(ctx, old); err != nil {
					return err
				}
				res.Rekeyed++
			}
		}
		counts, err := tx.SuppressionCounts(ctx)
		if err != nil {
			return err
		}
		for id, n := range counts {
			if id != newest.id {
				res.Remaining[id] = n
			}
		}
		return nil
	})
	if err != nil {
		return RekeyResult{}, fmt.Errorf("rekey suppressions: %w", err)
	}
	return res, nil
}
