package web_test

import (
	"bytes"
	"log/slog"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/welcome"
)

// wireWelcome opens package welcome on the test's database and makes the
// subscriber store send it its events, as cmd/tayori does.
func (e *env) wireWelcome(base string, logger *slog.Logger) {
	e.t.Helper()
	st := store.Welcome(e.sdb)
	var err error
	e.welcome, err = welcome.New(st, e.svc, e.subs, welcome.LatestFromSends{Sends: e.svc}, welcome.Config{
		BaseURL: base, SenderName: testSender, PostalAddress: "東京都港区六本木1-1-1", Contact: "info@news.example.jp",
	}, logger)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sinks = append(e.sinks, e.welcome)
}

// sendIssue sends the November issue to the list (one reader) and waits
// until it is done, so that the list has a latest issue.
func (e *env) sendIssue() *compose.Issue {
	e.t.Helper()
	is, err := compose.Parse("aisi-monthly-2025-11.txt", readTestdata(e.t, "aisi-monthly-2025-11.txt"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.addActive("first-reader@example.jp")
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s, _ := e.svc.Get(e.ctx, snd.ID); s != nil && s.State == queue.Done {
			return is
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the issue's send did not finish")
		}
	}
}

// TestWelcomeMailOnConfirm: a reader who confirms over HTTP gets the
// welcome mail through the queue: the list headers of an issue
// (List-Unsubscribe with List-Unsubscribe-Post, List-Id, Feedback-ID,
// Message-ID, per the deliverability checklist) and the Japanese body byte
// for byte, with the latest issue's link and the reader's own links.
func TestWelcomeMailOnConfirm(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, welcome: true})
	is := e.sendIssue()
	base := e.cfg.BaseURL

	c := e.browser()
	if res, _ := e.postForm(c, "/subscribe", signupForm("hanako@example.jp")); res.StatusCode != 200 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	tok := e.confirmToken("hanako@example.jp", true)
	if res, _ := e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	msgs := e.waitMessages("hanako@example.jp", 2)
	raw := msgs[1].Raw
	sub := e.subscriber("hanako@example.jp")
	// The reader's links are minted when the mail is made: read them from
	// the mail and check that they are this reader's.
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	unsub := strings.Trim(strings.Split(m.Header.Get("List-Unsubscribe"), ",")[0], "<> ")
	utok, _ := strings.CutPrefix(unsub, base+"/u/")
	body := decodedBody(t, raw)
	ptok := ""
	if i := strings.Index(body, base+"/p/"); i >= 0 {
		ptok = strings.Fields(body[i+len(base+"/p/"):])[0]
	}
	for purpose, tk := range map[token.Purpose]string{token.Unsubscribe: utok, token.Preferences: ptok} {
		if who, claims, err := e.subs.VerifyToken(e.ctx, tk, purpose); err != nil || who.ID != sub.ID || claims.List != testList {
			t.Errorf("the welcome's %v link %q: %v (reader %d, list %q)", purpose, tk, err, who.ID, claims.List)
		}
	}
	want := "山田 太郎 様\n\n" +
		"AIセーフティ・インスティテュート ニュースレターにご登録いただき、ありがとうございます。\n" +
		"毎月1回程度、お選びいただいた地域と分野のAI政策の動向をお届けします。\n\n" +
		"最新号「" + is.Title + "」は、こちらからお読みいただけます。\n" +
		base + "/issues/" + is.Slug + "\n\n" +
		"バックナンバー: " + base + "/archive\n" +
		"配信設定の変更: " + base + "/p/" + ptok + "\n" +
		"配信停止: " + base + "/u/" + utok + "\n\n" +
		"--\n" +
		"発行者: AIセーフティ・インスティテュート\n" +
		"所在地: 東京都港区六本木1-1-1\n" +
		"お問い合わせ: info@news.example.jp\n"
	if got := strings.ReplaceAll(body, "\r\n", "\n"); got != want {
		t.Errorf("welcome body:\n%s\nwant:\n%s", got, want)
	}
	testutil.CheckMessage(t, raw, testutil.MessageWant{
		FromEmail: "newsletter@news.example.jp", FromName: "AI政策動向", To: "hanako@example.jp",
		Subject:        "AIセーフティ・インスティテュート ニュースレターへようこそ",
		ListID:         "monthly.news.example.jp",
		FeedbackID:     "welcome:monthly:list:jpaipol01",
		UnsubscribeURL: base + "/u/" + utok, AllowHTTPUnsubscribe: true,
		Text: want,
	})
	if m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || m.Header.Get("Message-ID") == "" {
		t.Errorf("headers: List-Unsubscribe-Post %q, Message-ID %q", m.Header.Get("List-Unsubscribe-Post"), m.Header.Get("Message-ID"))
	}
	// The welcome's one-click link works.
	if res, _ := e.do(e.client(), "POST", "/u/"+utok, strings.NewReader("List-Unsubscribe=One-Click"),
		"Content-Type", "application/x-www-form-urlencoded"); res.StatusCode != http.StatusOK {
		t.Errorf("one-click unsubscribe from the welcome: %d", res.StatusCode)
	}
}

// waitMessages waits for n messages to to and returns them in order.
func (e *env) waitMessages(to string, n int) []testutil.Message {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ms := e.smtp.MessagesTo(to); len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d messages reached %s, want %d", len(e.smtp.MessagesTo(to)), to, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWelcomeConsole: the editor previews and saves the template in
// Japanese; a template without the unsubscribe link is refused; with the
// welcome turned off for the list, a confirming reader gets none.
func TestWelcomeConsole(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, welcome: true})
	c := e.browser()
	csrf := e.login(c)
	res, body := e.do(c, "GET", "/admin/welcome", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "ようこそメール") || !strings.Contains(body, `id="preview-body"`) ||
		!strings.Contains(body, "山田 花子 様") || !strings.Contains(body, "最初の号は、発行しだいお届けします。") {
		t.Fatalf("GET /admin/welcome: %d\n%s", res.StatusCode, body)
	}
	if _, en := e.do(c, "GET", "/admin/welcome?lang=en", nil); !strings.Contains(en, "Send a welcome mail on this list") {
		t.Error("no English page")
	}
	// Preview of an edited body shows it rendered.
	edited := "{{.Name}} 様、ようこそ。\n配信設定: {{.PreferencesURL}}\n停止: {{.UnsubscribeURL}}\n"
	res, body = e.postForm(c, "/admin/welcome", url.Values{"csrf": {csrf}, "list": {testList}, "enabled": {"on"},
		"subject": {"ようこそ"}, "body": {edited}, "action": {"preview"}})
	if res.StatusCode != 200 || !strings.Contains(body, "山田 花子 様、ようこそ。") || !strings.Contains(body, "/u/preview") {
		t.Fatalf("preview: %d\n%s", res.StatusCode, body)
	}
	// No unsubscribe link: refused, nothing saved.
	res, body = e.postForm(c, "/admin/welcome", url.Values{"csrf": {csrf}, "list": {testList}, "enabled": {"on"},
		"subject": {"ようこそ"}, "body": {"{{.Name}} 様 {{.PreferencesURL}}"}, "action": {"save"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="body-error"`) {
		t.Fatalf("template without the unsubscribe link: %d", res.StatusCode)
	}
	// A template that does not parse: refused.
	res, _ = e.postForm(c, "/admin/welcome", url.Values{"csrf": {csrf}, "list": {testList}, "subject": {"{{.Nope"},
		"body": {edited}, "action": {"save"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad subject: %d", res.StatusCode)
	}
	// Turned off for the list (no "enabled").
	res, _ = e.postForm(c, "/admin/welcome", url.Values{"csrf": {csrf}, "list": {testList}, "subject": {"ようこそ"},
		"body": {edited}, "action": {"save"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	if _, body = e.do(c, "GET", "/admin/welcome", nil); strings.Contains(body, `id="enabled" checked`) || !strings.Contains(body, "山田 花子 様、ようこそ。") {
		t.Error("the saved template is not what the page shows")
	}
	pub := e.browser()
	e.postForm(pub, "/subscribe", signupForm("taro@example.jp"))
	tok := e.confirmToken("taro@example.jp", true)
	if res, _ := e.postForm(pub, "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	time.Sleep(time.Second) // room for a wrong welcome to arrive
	if ms := e.smtp.MessagesTo("taro@example.jp"); len(ms) != 1 {
		t.Errorf("%d messages to a reader of a list without welcome, want only the confirmation", len(ms))
	}
}

// TestWelcomeAfterRedisLoss: a reader confirms while no worker runs and
// Redis then loses every task: the welcome mail, kept in the queue's
// outbox, still reaches the reader once the worker starts, and only once.
func TestWelcomeAfterRedisLoss(t *testing.T) {
	e := newEnv(t, envOpts{welcome: true, reconcile: 200 * time.Millisecond})
	c := e.browser()
	if res, _ := e.postForm(c, "/subscribe", signupForm("hanako@example.jp")); res.StatusCode != 200 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	tok := e.confirmToken("hanako@example.jp", false)
	if res, _ := e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	if err := e.rdb.FlushDB(e.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // the outbox row is older than the reconcile interval
	e.startWorker()
	msgs := e.waitMessages("hanako@example.jp", 1)
	time.Sleep(time.Second) // room for a second copy to show
	msgs = e.smtp.MessagesTo("hanako@example.jp")
	if len(msgs) != 1 {
		t.Fatalf("%d mails reached the reader, want the one welcome", len(msgs))
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); subj != "AIセーフティ・インスティテュート ニュースレターへようこそ" {
		t.Errorf("the mail is %q, want the welcome", subj)
	}
}
