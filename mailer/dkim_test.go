package mailer_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func testRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// writeKey writes key as PEM (PKCS#1 for RSA when pkcs1, else PKCS#8).
func writeKey(tb testing.TB, key crypto.Signer, pkcs1 bool) string {
	tb.Helper()
	var block *pem.Block
	if k, ok := key.(*rsa.PrivateKey); ok && pkcs1 {
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			tb.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	path := filepath.Join(tb.TempDir(), "dkim.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func dkimSigner(tb testing.TB, key crypto.Signer, pkcs1 bool) (*mailer.DKIMSigner, *testutil.DKIMWant) {
	tb.Helper()
	s, err := mailer.NewDKIMSigner(mailer.DKIMConfig{
		Domain: "example.go.jp", Selector: "nl2026", KeyFile: writeKey(tb, key, pkcs1),
	})
	if err != nil {
		tb.Fatal(err)
	}
	txt, err := s.PublicKeyTXT()
	if err != nil {
		tb.Fatal(err)
	}
	return s, &testutil.DKIMWant{Domain: "example.go.jp", Selector: "nl2026", TXT: txt}
}

func TestDKIMSignVerifies(t *testing.T) {
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []struct {
		name  string
		key   crypto.Signer
		pkcs1 bool
	}{
		{"RSA-PKCS1", testRSAKey(t), true},
		{"RSA-PKCS8", testRSAKey(t), false},
		{"Ed25519", edKey, false},
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			signer, dw := dkimSigner(t, k.key, k.pkcs1)
			b := newBuilder(t, mailer.BuilderOptions{DKIM: signer, Now: func() time.Time { return sendClock }})
			built, err := b.Build(fixture(t, "taro@example.jp"))
			if err != nil {
				t.Fatal(err)
			}
			w := want("taro@example.jp")
			w.DKIM = dw
			got := testutil.CheckMessage(t, built.Raw, w)
			if got.DKIMHeaderKeys[0] != "from" || got.DKIMHeaderKeys[1] != "from" {
				t.Errorf("h= %v does not start with oversigned from", got.DKIMHeaderKeys)
			}
			if !strings.HasPrefix(string(built.Raw), "DKIM-Signature: ") {
				t.Errorf("signature is not the first header")
			}
		})
	}
}

// TestDKIMTamperFails proves the verifier in CheckMessage can fail: changing
// a signed header (List-Unsubscribe) or the body after signing breaks it.
func TestDKIMTamperFails(t *testing.T) {
	signer, dw := dkimSigner(t, testRSAKey(t), true)
	b := newBuilder(t, mailer.BuilderOptions{DKIM: signer})
	built, err := b.Build(fixture(t, "taro@example.jp"))
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(string) ([]string, error) { return []string{dw.TXT}, nil }
	tampers := map[string][]byte{
		"unsubscribe": bytes.Replace(built.Raw, []byte("<https://news.example.go.jp/u/"), []byte("<https://evil.example.jp/u/"), 1),
		"added from":  bytes.Replace(built.Raw, []byte("\r\nTo: "), []byte("\r\nFrom: <x@evil.example>\r\nTo: "), 1),
		"body":        bytes.Replace(built.Raw, []byte("\r\n--tayori_"), []byte("\r\nQUFB\r\n--tayori_"), 1),
	}
	for name, raw := range tampers {
		if bytes.Equal(raw, built.Raw) {
			t.Fatalf("%s: tamper did not change the message", name)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil || len(vs) != 1 || vs[0].Err == nil {
			t.Errorf("%s: tampered message still verifies (err %v)", name, err)
		}
	}
}

// TestDKIMSurvivesSMTP: the bytes the relay receives verify (item 15).
func TestDKIMSurvivesSMTP(t *testing.T) {
	signer, dw := dkimSigner(t, testRSAKey(t), true)
	b := newBuilder(t, mailer.BuilderOptions{DKIM: signer})
	m := fixture(t, "taro@example.jp")
	m.Text = ".leading dot line\n.\n" + m.Text // dot-stuffing must round-trip
	built, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartSMTP(t)
	pool := newPool(t, srv.URL(), mailer.PoolOptions{})
	if _, err := pool.Send(context.Background(), "bounce@bounce.news.example.go.jp", "taro@example.jp", built.Raw); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(1, 5*time.Second)[0]
	if !bytes.Equal(got.Raw, built.Raw) {
		t.Fatal("relay received different bytes than were signed")
	}
	w := want("taro@example.jp")
	w.Now = time.Now()
	w.DKIM = dw
	testutil.CheckMessage(t, got.Raw, w)
}

func TestDKIMConfigErrors(t *testing.T) {
	_, err := mailer.NewDKIMSigner(mailer.DKIMConfig{Domain: "example.go.jp", Selector: "s", KeyFile: filepath.Join(t.TempDir(), "missing.pem")})
	if err == nil || !strings.Contains(err.Error(), "DKIM key file") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := mailer.NewDKIMSigner(mailer.DKIMConfig{Domain: "example.go.jp", Selector: "s", KeyFile: bad}); err == nil {
		t.Error("non-PEM key accepted")
	}
	if _, err := mailer.NewDKIMSignerWithKey("", "s", testRSAKey(t)); err == nil {
		t.Error("empty domain accepted")
	}
	if _, err := mailer.NewDKIMSignerWithKey("example.go.jp", "bad selector", testRSAKey(t)); err == nil {
		t.Error("bad selector accepted")
	}
}

func TestDKIMRequiresAlignedFrom(t *testing.T) {
	signer, _ := dkimSigner(t, testRSAKey(t), true)
	b := newBuilder(t, mailer.BuilderOptions{DKIM: signer})
	m := fixture(t, "taro@example.jp")
	m.From.Email = "newsletter@other.example.com"
	_, err := b.Build(m)
	if !errors.Is(err, mailer.ErrInvalidMessage) || !strings.Contains(err.Error(), "DKIM d=example.go.jp") {
		t.Fatalf("unaligned From: %v", err)
	}
}
