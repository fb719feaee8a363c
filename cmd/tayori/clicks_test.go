package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

// Issue 22: `subscribers lists clicks` turns aggregate click counting on
// for a list; `send --wait` then delivers copies whose item links go
// through BASE_URL/c/ in both parts, the reader's own links untouched,
// while a list left alone
// keeps its links as written (the other tests of the package).
func TestListsClicksCommand(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	startWorker(t, getenv)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	if _, _, err := runCLI(t, getenv, "subscribers", "lists", "clicks", "monthly", "maybe"); err == nil || !strings.Contains(err.Error(), "on or off") {
		t.Errorf("bad setting: %v", err)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "lists", "clicks", "nosuch", "on"); err == nil {
		t.Error("unknown list accepted")
	}
	out, _, err := runCLI(t, getenv, "subscribers", "lists", "clicks", "monthly", "on")
	if err != nil || !strings.Contains(out, "count clicks on item links: on") {
		t.Fatalf("clicks on: %v %s", err, out)
	}
	if out, errOut, err := runCLI(t, getenv, "send", issue, "--wait", "--force"); err != nil {
		t.Fatalf("send: %v\n%s\n%s", err, out, errOut)
	}
	counted := regexp.MustCompile(`https://news\.example\.jp/c/[A-Za-z0-9_-]+`)
	msgs := smtp.Messages()
	if len(msgs) == 0 {
		t.Fatal("nothing delivered")
	}
	for _, m := range msgs {
		c := testutil.CheckMessage(t, m.Raw, testutil.MessageWant{FromEmail: "newsletter@news.example.jp", To: m.To[0],
			AllowHTTPUnsubscribe: true})
		links := counted.FindAllString(c.Text, -1)
		if len(links) == 0 || !strings.Contains(c.HTML, links[0]) {
			t.Errorf("the copy to %v has no counted link in both parts", m.To)
		}
		if strings.Contains(c.Text, "/c/") && !strings.Contains(c.Text, "https://news.example.jp/u/") {
			t.Error("the unsubscribe link is missing")
		}
	}
}
