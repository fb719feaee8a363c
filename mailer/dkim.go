package mailer

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMHeaderKeys are the header fields every signature covers (h=), in order.
// "from" is listed twice (oversigned, RFC 6376 §5.4.2) so that a second From
// added later breaks the signature; list-unsubscribe and
// list-unsubscribe-post are signed as RFC 8058 requires. Fields a message
// lacks are signed as absent, which also stops them being added later.
// Treat it as read-only.
var DKIMHeaderKeys = []string{
	"from", "from", "to", "subject", "date", "message-id", "mime-version",
	"content-type", "list-id", "list-unsubscribe", "list-unsubscribe-post",
	"feedback-id", "reply-to",
}

// DKIMConfig names a signing key.
type DKIMConfig struct {
	// Domain is d=, the signing domain: the From domain or a parent of it.
	Domain string
	// Selector is s=; the public key is published at
	// <selector>._domainkey.<domain>.
	Selector string
	// KeyFile is a PEM file holding an RSA (PKCS#1 or PKCS#8, ≥ 1024 bits,
	// 2048 recommended) or Ed25519 (PKCS#8) private key.
	KeyFile string
}

// DKIMSigner signs finished messages with github.com/emersion/go-msgauth/dkim,
// relaxed/relaxed, rsa-sha256 or ed25519-sha256. It is safe for concurrent use.
type DKIMSigner struct {
	domain, selector string
	key              crypto.Signer
}

// NewDKIMSigner loads cfg.KeyFile and returns a signer.
func NewDKIMSigner(cfg DKIMConfig) (*DKIMSigner, error) {
	if cfg.KeyFile == "" {
		return nil, fmt.Errorf("mailer: DKIM key file: not set")
	}
	pemBytes, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key file: %w", err)
	}
	key, err := ParseDKIMKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key file %s: %w", cfg.KeyFile, err)
	}
	return NewDKIMSignerWithKey(cfg.Domain, cfg.Selector, key)
}

// NewDKIMSignerWithKey returns a signer for an already loaded key (RSA or
// Ed25519).
func NewDKIMSignerWithKey(domain, selector string, key crypto.Signer) (*DKIMSigner, error) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if domain == "" || !isDotAtom(domain) || !strings.Contains(domain, ".") {
		return nil, fmt.Errorf("mailer: DKIM domain %q is not a domain", domain)
	}
	if selector == "" || !isDotAtom(selector) {
		return nil, fmt.Errorf("mailer: DKIM selector %q is not valid", selector)
	}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("mailer: DKIM RSA key has %d bits; want at least 1024 (2048 recommended)", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("mailer: DKIM key type %T not supported; want RSA or Ed25519", k)
	}
	return &DKIMSigner{domain: domain, selector: selector, key: key}, nil
}

// ParseDKIMKey parses a PEM private key: RSA (PKCS#1 or PKCS#8) or Ed25519
// (PKCS#8).
func ParseDKIMKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("RSA PKCS#1 key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PKCS#8 key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("PKCS#8 key of type %T cannot sign", k)
		}
		switch s.(type) {
		case *rsa.PrivateKey, ed25519.PrivateKey:
			return s, nil
		}
		return nil, fmt.Errorf("key type %T not supported; want RSA or Ed25519", k)
	}
	return nil, fmt.Errorf("PEM block %q: want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
}

// Domain returns the signing domain (d=).
func (s *DKIMSigner) Domain() string { return s.domain }

// Selector returns the selector (s=).
func (s *DKIMSigner) Selector() string { return s.selector }

// PublicKeyTXT returns the DNS TXT record value to publish at
// Selector()._domainkey.Domain(), e.g. "v=DKIM1; k=rsa; p=MIIB...".
func (s *DKIMSigner) PublicKeyTXT() (string, error) {
	return DKIMPublicKeyTXT(s.key.Public())
}

// DKIMPublicKeyTXT formats a public key as a DKIM TXT record value.
func DKIMPublicKeyTXT(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + b64Std.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + b64Std.EncodeToString(k), nil
	}
	return "", fmt.Errorf("mailer: public key type %T not supported", pub)
}

// Sign returns raw with a DKIM-Signature header prepended. raw must be a
// complete message with CRLF line ends; nothing in it is changed, so the
// returned bytes are exactly what must be sent.
func (s *DKIMSigner) Sign(raw []byte) ([]byte, error) {
	signer, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 s.domain,
		Selector:               s.selector,
		Signer:                 s.key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             DKIMHeaderKeys,
	})
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM: %w", err)
	}
	if _, err := signer.Write(raw); err != nil {
		_ = signer.Close()
		return nil, fmt.Errorf("mailer: DKIM sign: %w", err)
	}
	if err := signer.Close(); err != nil {
		return nil, fmt.Errorf("mailer: DKIM sign: %w", err)
	}
	sig := signer.Signature()
	var out bytes.Buffer
	out.Grow(len(sig) + len(raw))
	out.WriteString(sig)
	out.Write(raw)
	return out.Bytes(), nil
}
