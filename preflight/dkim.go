package preflight

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/tayori-news/tayori/mailer"
)

// DKIM checks that <selector>._domainkey.<domain> publishes one DKIM key
// record whose p= is the public half of the signing key, and that the
// signing domain is aligned (relaxed, RFC 7489 §3.1.1) with the From
// domain, so that the signature counts for DMARC. Without a configured key
// it is skipped.
func (c *Checker) DKIM(ctx context.Context) Result {
	if c.cfg.DKIMPublicKey == nil {
		return Result{Check: CheckDKIM, Subject: c.cfg.FromDomain, Status: Skip,
			Found: "DKIM signing is not configured (TAYORI_DKIM_DOMAIN, TAYORI_DKIM_SELECTOR, TAYORI_DKIM_KEY_FILE); Gmail, Yahoo and Outlook require DKIM of bulk senders"}
	}
	name := c.cfg.DKIMSelector + "._domainkey." + c.cfg.DKIMDomain
	fail := func(found, expected, fix string) Result {
		return Result{Check: CheckDKIM, Subject: name, Status: Fail, Found: found, Expected: expected, Fix: fix}
	}
	want, err := mailer.DKIMPublicKeyTXT(c.cfg.DKIMPublicKey)
	if err != nil {
		return fail(fmt.Sprintf("a signing key that cannot be published (%v)", err), "an RSA or Ed25519 key", "set TAYORI_DKIM_KEY_FILE to an RSA or Ed25519 private key")
	}
	publish := fmt.Sprintf("publish TXT at %s: %q", name, want)
	if od, of := orgDomain(c.cfg.DKIMDomain), orgDomain(c.cfg.FromDomain); od != of {
		return fail(fmt.Sprintf("d=%s, which is not aligned with the From domain %s", c.cfg.DKIMDomain, c.cfg.FromDomain),
			"d= in the From domain's organisational domain "+of,
			"sign as the From domain: set TAYORI_DKIM_DOMAIN="+c.cfg.FromDomain+" and publish the key there")
	}
	txts, err := c.r.LookupTXT(ctx, name)
	switch {
	case isNotFound(err):
		return fail("no TXT record", "TXT "+want, publish)
	case err != nil:
		return fail(lookupFailure(err), "TXT "+want, "make sure the domain's name servers answer, then run preflight again")
	case len(txts) > 1:
		return fail(fmt.Sprintf("%d TXT records (%s)", len(txts), quoteAll(txts)), "exactly one", "keep only: "+want)
	}
	tags := parseTags(txts[0])
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return fail(fmt.Sprintf("v=%s", v), "v=DKIM1", publish)
	}
	if h, ok := tags["h"]; ok && !strings.Contains(strings.ToLower(h), "sha256") {
		return fail(fmt.Sprintf("h=%s, which forbids sha256", h), "no h= tag, or one listing sha256", publish)
	}
	p := strings.Join(strings.Fields(tags["p"]), "")
	if p == "" {
		return fail(fmt.Sprintf("%q: no p= or an empty one (a revoked key)", txts[0]), "p= with the signing key", publish)
	}
	k := strings.ToLower(tags["k"])
	if k == "" {
		k = "rsa"
	}
	got, err := parseDKIMPublicKey(k, p)
	if err != nil {
		return fail(fmt.Sprintf("a p= that is not a valid %s key (%v)", k, err), "TXT "+want, publish)
	}
	eq, ok := c.cfg.DKIMPublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(got) {
		return fail(fmt.Sprintf("a different %s key (%s…)", keyDesc(got), p[:min(len(p), 24)]),
			"the public half of TAYORI_DKIM_KEY_FILE ("+keyDesc(c.cfg.DKIMPublicKey)+")",
			publish+" (or point TAYORI_DKIM_KEY_FILE or the selector at the key that is published)")
	}
	return Result{Check: CheckDKIM, Subject: name, Status: Pass,
		Found: "TXT publishes the signing key (" + keyDesc(got) + "), d= aligned with " + c.cfg.FromDomain}
}

// parseDKIMPublicKey decodes p= of key type k: RSA as SubjectPublicKeyInfo
// (RFC 6376 §3.6.1) or, as some publish it, PKCS#1; Ed25519 as the raw 32
// bytes (RFC 8463).
func parseDKIMPublicKey(k, p string) (crypto.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	switch k {
	case "rsa":
		if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
			if _, ok := pub.(*rsa.PublicKey); !ok {
				return nil, fmt.Errorf("k=rsa but the key is %T", pub)
			}
			return pub, nil
		}
		pub, err := x509.ParsePKCS1PublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("neither SubjectPublicKeyInfo nor PKCS#1: %w", err)
		}
		return pub, nil
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key of %d bytes, want %d", len(der), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(der), nil
	}
	return nil, fmt.Errorf("unknown key type k=%s", k)
}

func keyDesc(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// parseTags splits a tag=value; list (DKIM, DMARC). Tag names are
// lower-cased; values are trimmed; a later duplicate is ignored.
func parseTags(s string) map[string]string {
	tags := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := tags[k]; !dup {
			tags[k] = strings.TrimSpace(v)
		}
	}
	return tags
}
