package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

// TestSentCopiesAreSignedAndPassTheChecklist runs the whole path an
// operator runs: configuration with DKIM from the environment, `tayori
// worker`, then `tayori send --wait` of two issues. Every copy on the wire
// must verify with an independent DKIM verifier (go-msgauth, the key
// published in a stubbed TXT record) and pass checklist items 1–16; the
// List-Id is the same for both issues (item 16).
func TestSentCopiesAreSignedAndPassTheChecklist(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	base := sendTestEnv(t, smtp)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := map[string]string{
		"TAYORI_DKIM_DOMAIN": "news.example.jp", "TAYORI_DKIM_SELECTOR": "tayori1", "TAYORI_DKIM_KEY_FILE": keyFile,
		"TAYORI_FROM": "AI政策動向 <newsletter@news.example.jp>",
	}
	getenv := func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return base(k)
	}

	startWorker(t, getenv)

	issues := []struct{ file, subject string }{
		{"aisi-monthly-2025-07.txt", "AI政策動向マンスリー情報 2025年7月号"},
		{"aisi-monthly-2025-11.txt", "AI政策動向マンスリー情報 2025年11月号"},
	}
	dkimWant := &testutil.DKIMWant{Domain: "news.example.jp", Selector: "tayori1",
		TXT: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
	listIDs := map[string]bool{}
	seen := 0
	for _, is := range issues {
		if out, _, err := runCLI(t, getenv, "send", filepath.Join("..", "..", "testdata", is.file), "--wait", "--force"); err != nil {
			t.Fatalf("send %s: %v\n%s", is.file, err, out)
		}
		msgs := smtp.Messages()
		if len(msgs) == seen {
			t.Fatalf("%s: no message delivered", is.file)
		}
		for _, m := range msgs[seen:] {
			c := testutil.CheckMessage(t, m.Raw, testutil.MessageWant{
				FromEmail: "newsletter@news.example.jp", FromName: "AI政策動向", To: m.To[0],
				Subject: is.subject, AllowHTTPUnsubscribe: true, DKIM: dkimWant,
			})
			listIDs[c.Header.Get("List-Id")] = true
		}
		seen = len(msgs)
	}
	if len(listIDs) != 1 {
		t.Errorf("List-Id differs between issues of one list: %v", listIDs)
	}

	// The reader's data export lists both sends (GDPR Art. 15).
	out, _, err := runCLI(t, getenv, "subscribers", "show", "jp@example.jp")
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Subscriber struct{ Email string }
		Deliveries []struct{ Issue, Status string }
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if x.Subscriber.Email != "jp@example.jp" || len(x.Deliveries) != 2 || x.Deliveries[0].Issue != "2025-07" ||
		x.Deliveries[1].Issue != "2025-11" || x.Deliveries[1].Status != "sent" {
		t.Errorf("export %+v, want both issues sent", x)
	}
}
