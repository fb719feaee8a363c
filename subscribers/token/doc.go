// Package token mints and verifies the signed links in Tayori's mail:
// confirm, unsubscribe and preferences.
//
// A token is
//
//	v1.<base64url(payload)>.<base64url(HMAC-SHA256(key, "v1."+base64url(payload)))>
//
// The payload is a small binary record binding the purpose, the
// subscriber's random public id (never the integer id or the address), the
// list key, the id of the signing key, the issue time, an optional expiry
// and an optional nonce (the store binds confirm tokens to a per-subscriber
// counter that confirming advances, which makes them single-use).
//
// A [Keyring] holds the keys, newest first: the newest signs and every key
// verifies, so keys can rotate without breaking the unsubscribe links in
// mail already sent. Unsubscribe tokens never expire. Signatures are
// compared in constant time (hmac.Equal), and every failure is one of the
// sentinel errors below, all of which wrap [ErrInvalid]:
//
//	tok, _ := ring.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: pid, List: "monthly"})
//	c, err := ring.Verify(tok, token.Unsubscribe)
//	switch {
//	case errors.Is(err, token.ErrExpired): // offer a new link
//	case errors.Is(err, token.ErrInvalid): // 400/404
//	}
package token
