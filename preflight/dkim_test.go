package preflight_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/preflight"
)

func TestDKIM(t *testing.T) {
	ctx := context.Background()
	const name = "nl._domainkey.news.example.jp"
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherTXT, _ := mailer.DKIMPublicKeyTXT(otherPub)
	tests := []struct {
		name   string
		change func(s *setup)
		status preflight.Status
		parts  []string
	}{
		{"OK", nil, preflight.Pass, []string{name, "publishes the signing key (ed25519)", "aligned with news.example.jp"}},
		{"OKParentDomainAligned", func(s *setup) {
			s.cfg.DKIMDomain = "example.jp"
			s.r.txt["nl._domainkey.example.jp"] = s.r.txt[name]
		}, preflight.Pass, []string{"nl._domainkey.example.jp"}},
		{"OKRSAPublishedAsPKCS1WithSpaces", func(s *setup) {
			s.cfg.DKIMPublicKey = &rsaKey.PublicKey
			p := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey))
			s.r.txt[name] = []string{"v=DKIM1; k=rsa; h=sha256; p=" + p[:40] + " " + p[40:]}
		}, preflight.Pass, []string{"rsa 1024 bits"}},
		{"SkipNotConfigured", func(s *setup) { s.cfg.DKIMPublicKey = nil }, preflight.Skip,
			[]string{"DKIM signing is not configured", "TAYORI_DKIM_KEY_FILE"}},
		{"ErrNoRecord", func(s *setup) { delete(s.r.txt, name) }, preflight.Fail,
			[]string{"found no TXT record", "publish TXT at " + name + `: "v=DKIM1; k=ed25519; p=`}},
		{"ErrOtherKey", func(s *setup) { s.r.txt[name] = []string{otherTXT} }, preflight.Fail,
			[]string{"a different ed25519 key", "public half of TAYORI_DKIM_KEY_FILE"}},
		{"ErrRSAPublishedEd25519Configured", func(s *setup) {
			txt, _ := mailer.DKIMPublicKeyTXT(&rsaKey.PublicKey)
			s.r.txt[name] = []string{txt}
		}, preflight.Fail, []string{"a different rsa 1024 bits key", "(ed25519)"}},
		{"ErrRevoked", func(s *setup) { s.r.txt[name] = []string{"v=DKIM1; k=ed25519; p="} }, preflight.Fail,
			[]string{"a revoked key"}},
		{"ErrBadBase64", func(s *setup) { s.r.txt[name] = []string{"v=DKIM1; k=ed25519; p=!!!"} }, preflight.Fail,
			[]string{"not a valid ed25519 key", "base64"}},
		{"ErrWrongVersion", func(s *setup) { s.r.txt[name] = []string{"v=DKIM2; p=abc"} }, preflight.Fail,
			[]string{"found v=DKIM2", "expected v=DKIM1"}},
		{"ErrHashSHA1Only", func(s *setup) { s.r.txt[name] = []string{"v=DKIM1; h=sha1; " + s.r.txt[name][0][len("v=DKIM1; "):]} },
			preflight.Fail, []string{"h=sha1"}},
		{"ErrTwoRecords", func(s *setup) { s.r.txt[name] = append(s.r.txt[name], otherTXT) }, preflight.Fail,
			[]string{"2 TXT records", "keep only"}},
		{"ErrNotAligned", func(s *setup) {
			s.cfg.DKIMDomain = "relay.example"
			s.r.txt["nl._domainkey.relay.example"] = s.r.txt[name]
		}, preflight.Fail, []string{"d=relay.example, which is not aligned", "TAYORI_DKIM_DOMAIN=news.example.jp"}},
		{"ErrLookupFails", func(s *setup) { s.r.fail[name] = true }, preflight.Fail, []string{"a failed lookup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy(t)
			if tt.change != nil {
				tt.change(s)
			}
			r := s.checker(t).DKIM(ctx)
			t.Log(r)
			want(t, r, tt.status, tt.parts...)
		})
	}
}
