package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every endpoint secret, as the Standard Webhooks
// specification writes them.
const SecretPrefix = "whsec_"

// ErrBadSecret: a secret that is not "whsec_" followed by base64 of 24 to
// 64 bytes.
var ErrBadSecret = errors.New("webhook secret must be whsec_ followed by base64 of 24 to 64 bytes")

// NewSecret returns a fresh random secret "whsec_<base64 of 32 bytes>".
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey decodes a "whsec_" secret into the HMAC key.
func secretKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Sign returns the webhook-signature header value "v1,<base64 HMAC-SHA256>"
// of "<msgID>.<unix seconds>.<body>" under secret (Standard Webhooks).
func Sign(secret, msgID string, unix int64, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", fmt.Errorf("webhooks: sign: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
