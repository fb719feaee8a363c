package web_test

import (
	"bytes"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/web"
)

func TestSubscribePageShowsUntickedConsent(t *testing.T) {
	e := newEnv(t, envOpts{})
	res, body := e.do(e.client(), "GET", "/subscribe", nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{`lang="ja"`, "同意", testSender, `name="consent" value="yes"`, `name="website"`, "/static/style.css"} {
		if !strings.Contains(body, want) {
			t.Errorf("subscribe page lacks %q", want)
		}
	}
	if strings.Contains(body, `value="yes" checked`) || strings.Contains(body, `name="consent" value="yes" checked`) {
		t.Error("consent box must not be pre-ticked")
	}
	// The English form sends the English confirmation mail.
	f := signupForm("english@example.jp")
	f.Set("lang", "en")
	if res, body := e.postForm(e.client(), "/subscribe", f); res.StatusCode != 200 || !strings.Contains(body, "Check your inbox") {
		t.Errorf("English signup: %d", res.StatusCode)
	}
	if ms := e.queuedMessages(); len(ms) != 1 || !strings.Contains(ms[0].Subject, "Please confirm") ||
		!strings.Contains(string(ms[0].Text), "If you did not request this") || !strings.Contains(string(ms[0].Text), "?lang=en") {
		t.Errorf("English confirmation: %+v", ms)
	}
	// English on request, Japanese by default.
	_, en := e.do(e.client(), "GET", "/subscribe", nil, "Accept-Language", "en-US,en;q=0.9")
	if !strings.Contains(en, `lang="en"`) || !strings.Contains(en, "I agree") {
		t.Error("Accept-Language: en does not give the English page")
	}
	for h, want := range map[string]string{
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

// Item 24 and 27: signup sends only the confirmation mail, which carries
// no list headers; pending readers get no newsletter.
func TestSignupSendsOnlyConfirmation(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	res, body := e.postForm(e.client(), "/subscribe", signupForm("hanako@example.jp"))
	if res.StatusCode != 200 || !strings.Contains(body, "確認のメールをお送りしました") {
		t.Fatalf("signup: %d\n%s", res.StatusCode, body)
	}
	sub := e.subscriber("hanako@example.jp")
	if sub.Status != subscribers.Pending {
		t.Fatalf("status %s, want pending", sub.Status)
	}
	msgs := e.smtp.WaitFor(1, 15*time.Second)
	raw := msgs[0].Raw
	for _, h := range []string{"List-Unsubscribe-Post", "List-Unsubscribe", "List-Id"} {
		if v := header(t, raw, h); len(v) != 0 {
			t.Errorf("confirmation mail carries %s: %q", h, v)
		}
	}
	text := decodedBody(t, raw)
	for _, want := range []string{"心当たりがない場合", "/confirm/v1.", testSender} {
		if !strings.Contains(text, want) {
			t.Errorf("confirmation text lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "hanako") {
		t.Error("confirmation link must not carry the address")
	}

	// A newsletter send to the list: the pending reader gets nothing.
	e.addActive("taro@example.jp")
	issue, err := compose.Load(filepath.Join("testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: issue, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)
	if got := len(e.smtp.MessagesTo("taro@example.jp")); got != 1 {
		t.Errorf("active reader got %d messages, want 1", got)
	}
	if got := len(e.smtp.MessagesTo("hanako@example.jp")); got != 1 {
		t.Errorf("pending reader got %d messages, want only the confirmation", got)
	}
}

func waitSend(t testing.TB, e *env, id int64, want queue.State) *queue.Send {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := e.svc.Get(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("send %d: state %s, want %s (%+v)", id, s.State, want, s.Counts)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Item 25: GET shows a button and leaves the reader pending; POST
// confirms once and records consent; a second use or a use after 48 h
// fails with the start-again page.
func TestConfirm(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	e.postForm(c, "/subscribe", signupForm("jiro@example.jp"))
	tok := e.confirmToken("jiro@example.jp", false)

	res, body0 := e.do(c, "GET", "/confirm/"+tok, nil)
	if res.StatusCode != 200 || !strings.Contains(body0, `method="post"`) || !strings.Contains(body0, "購読を確定する") {
		t.Fatalf("GET confirm: %d\n%s", res.StatusCode, body0)
	}
	if s := e.subscriber("jiro@example.jp"); s.Status != subscribers.Pending {
		t.Fatalf("GET changed the status to %s", s.Status)
	}

	res, body := e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}}, "User-Agent", "TestBrowser/1.0")
	if res.StatusCode != 200 || !strings.Contains(body, "購読が確定しました") {
		t.Fatalf("POST confirm: %d\n%s", res.StatusCode, body)
	}
	sub := e.subscriber("jiro@example.jp")
	if sub.Status != subscribers.Active {
		t.Fatalf("status %s after confirming", sub.Status)
	}
	consents := must[[]subscribers.Consent](t)(e.subs.Consents(e.ctx, sub.ID))
	if len(consents) != 1 {
		t.Fatalf("%d consent records", len(consents))
	}
	cr := consents[0]
	shown := html.UnescapeString(between(t, body0, `<p class="consent-quote" id="consent-text">`, "</p>"))
	if !strings.Contains(shown, testSender) {
		t.Errorf("consent text %q does not name the sender", shown)
	}
	if cr.Method != subscribers.DoubleOptIn || cr.FormVersion != web.ConsentVersion+"/ja" || cr.IP != "127.0.0.1" ||
		cr.UserAgent != "TestBrowser/1.0" || cr.TextSHA256 != subscribers.HashText(shown) {
		t.Errorf("consent record %+v (want the hash of %q)", cr, shown)
	}

	// Single use: a second use records nothing more, and tells the
	// reader, who is subscribed, so (issue 22).
	res, body = e.postForm(c, "/confirm/"+tok, url.Values{})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "すでに登録済みです") {
		t.Errorf("second use: %d (want 200 saying the reader is subscribed)", res.StatusCode)
	}
	if n := len(must[[]subscribers.Consent](t)(e.subs.Consents(e.ctx, sub.ID))); n != 1 {
		t.Errorf("%d consent records after a second use", n)
	}

	// Expiry: a fresh signup's token is dead 49 h later, even on GET.
	e.postForm(c, "/subscribe", signupForm("saburo@example.jp"))
	tok2 := e.confirmToken("saburo@example.jp", false)
	e.clock.Advance(49 * time.Hour)
	if res, _ := e.do(c, "GET", "/confirm/"+tok2, nil); res.StatusCode != http.StatusGone {
		t.Errorf("GET expired: %d, want 410", res.StatusCode)
	}
	if res, _ := e.postForm(c, "/confirm/"+tok2, url.Values{}); res.StatusCode != http.StatusGone {
		t.Errorf("POST expired: %d, want 410", res.StatusCode)
	}
	if s := e.subscriber("saburo@example.jp"); s.Status != subscribers.Pending {
		t.Errorf("expired token changed the status to %s", s.Status)
	}
}

// Item 26: the same answer whatever the address's state; past the limit 429.
func TestSignupNoEnumerationAndRateLimit(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{SignupPerIP: 6, ConfirmPerAddress: 2}})
	c := e.client()
	e.addActive("active@example.jp")
	e.postForm(c, "/subscribe", signupForm("pending@example.jp"))
	gone := e.addActive("gone@example.jp")
	if err := e.subs.Erase(e.ctx, gone.ID, "test"); err != nil {
		t.Fatal(err)
	}
	var first string
	for i, addr := range []string{"new@example.jp", "pending@example.jp", "active@example.jp", "gone@example.jp"} {
		res, body := e.postForm(c, "/subscribe", signupForm(addr))
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", addr, res.StatusCode)
		}
		if i == 0 {
			first = body
		} else if body != first {
			t.Errorf("answer for %s differs from the answer for a new address", addr)
		}
	}
	// The active reader got no mail; the others did.
	queued := map[string]int{}
	for _, m := range e.queuedMessages() {
		queued[m.To]++
	}
	if s := e.subscriber("pending@example.jp"); s.Prefs.Key() != "jp,eu|policy,reports" {
		t.Errorf("pending prefs %q", s.Prefs.Key())
	}
	if queued["active@example.jp"] != 0 || queued["new@example.jp"] != 1 || queued["pending@example.jp"] != 2 || queued["gone@example.jp"] != 1 {
		t.Errorf("confirmation mails queued: %v", queued)
	}
	// 5 requests so far from this IP; the 6th passes, the 7th is refused.
	if res, _ := e.postForm(c, "/subscribe", signupForm("six@example.jp")); res.StatusCode != 200 {
		t.Fatalf("6th request: %d", res.StatusCode)
	}
	res, body := e.postForm(c, "/subscribe", signupForm("seven@example.jp"))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("7th request: %d, want 429 with Retry-After", res.StatusCode)
	}
	if !strings.Contains(body, "しばらく") {
		t.Error("429 page is not the rate-limit page")
	}
	if _, err := e.subs.FindByEmail(e.ctx, "seven@example.jp"); err == nil {
		t.Error("a refused signup was recorded")
	}
}

func TestSignupPerAddressLimit(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{SignupPerIP: 100, ConfirmPerAddress: 2}})
	for i := range 3 {
		res, _ := e.postForm(e.client(), "/subscribe", signupForm("Repeat@Example.JP"), "X-Forwarded-For", "10.0.0."+strconv.Itoa(i))
		if res.StatusCode != 200 {
			t.Errorf("request %d: %d, want 200", i+1, res.StatusCode)
		}
	}
	if n := len(e.queuedMessages()); n != 2 {
		t.Errorf("%d confirmation mails, want 2 (the cap)", n)
	}
}

func TestSignupValidationAndHoneypot(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad := url.Values{"email": {"not-an-address"}, "lang": {"ja"}}
	res, body := e.postForm(e.client(), "/subscribe", bad)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("invalid form: %d", res.StatusCode)
	}
	for _, want := range []string{"メールアドレスの形式", "地域を1つ以上", "分野を1つ以上", "チェックを入れて", `value="not-an-address"`} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q", want)
		}
	}
	// A filled honeypot gets the normal answer and nothing happens.
	f := signupForm("bot@example.jp")
	f.Set("website", "http://spam.example")
	res, body = e.postForm(e.client(), "/subscribe", f)
	if res.StatusCode != 200 || !strings.Contains(body, "確認のメールをお送りしました") {
		t.Fatalf("honeypot: %d", res.StatusCode)
	}
	if _, err := e.subs.FindByEmail(e.ctx, "bot@example.jp"); err == nil {
		t.Error("honeypot signup was recorded")
	}
	if n := len(e.queuedMessages()); n != 0 {
		t.Errorf("%d mails queued", n)
	}
	// A cross-site form post is refused.
	res, _ = e.postForm(e.client(), "/subscribe", signupForm("x@example.jp"), "Sec-Fetch-Site", "cross-site")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", res.StatusCode)
	}
}

func multipartOneClick(t testing.TB) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("List-Unsubscribe", "One-Click"); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

// Items 17, 18, 19: one-click unsubscribe.
func TestOneClickUnsubscribe(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client() // no cookie jar, no authentication
	a, b := e.addActive("a@example.jp"), e.addActive("b@example.jp")
	tokA := must[string](t)(e.subs.UnsubscribeToken(a.PublicID, testList))
	tokB := must[string](t)(e.subs.UnsubscribeToken(b.PublicID, testList))

	// 18: GET shows a button and changes nothing.
	res, body := e.do(c, "GET", "/u/"+tokA, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `method="post"`) || !strings.Contains(body, "配信を停止する") {
		t.Fatalf("GET: %d\n%s", res.StatusCode, body)
	}
	if s := e.subscriber("a@example.jp"); !s.Sendable(testList) {
		t.Fatal("GET unsubscribed the reader")
	}

	// 17: form-urlencoded.
	res, _ = e.do(c, "POST", "/u/"+tokA, strings.NewReader("List-Unsubscribe=One-Click"),
		"Content-Type", "application/x-www-form-urlencoded")
	if res.StatusCode != 200 || res.Header.Get("Location") != "" {
		t.Fatalf("POST urlencoded: %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	if s := e.subscriber("a@example.jp"); s.Sendable(testList) || s.Status != subscribers.Unsubscribed {
		t.Fatalf("after one-click: status %s lists %v", s.Status, s.Lists)
	}
	hist := must[[]subscribers.StatusChange](t)(e.subs.History(e.ctx, a.ID))
	if last := hist[len(hist)-1]; last.Cause != "one-click unsubscribe" {
		t.Errorf("history cause %q", last.Cause)
	}
	// 17: multipart/form-data.
	ct, mp := multipartOneClick(t)
	res, _ = e.do(c, "POST", "/u/"+tokB, mp, "Content-Type", ct)
	if res.StatusCode != 200 || res.Header.Get("Location") != "" {
		t.Fatalf("POST multipart: %d", res.StatusCode)
	}
	if s := e.subscriber("b@example.jp"); s.Sendable(testList) {
		t.Fatal("multipart one-click did not unsubscribe")
	}

	// 19: idempotent, and 200 after erasure.
	res, _ = e.do(c, "POST", "/u/"+tokA, strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded")
	if res.StatusCode != 200 {
		t.Errorf("second POST: %d", res.StatusCode)
	}
	if err := e.subs.Erase(e.ctx, b.ID, "test"); err != nil {
		t.Fatal(err)
	}
	ct, mp = multipartOneClick(t)
	if res, _ = e.do(c, "POST", "/u/"+tokB, mp, "Content-Type", ct); res.StatusCode != 200 {
		t.Errorf("POST after erasure: %d", res.StatusCode)
	}
	if res, _ = e.do(c, "GET", "/u/"+tokB, nil); res.StatusCode != 200 {
		t.Errorf("GET after erasure: %d", res.StatusCode)
	}
	// A validly signed token for a subscriber who never existed: 200 too.
	ghost := must[string](t)(e.subs.UnsubscribeToken("AAAAAAAAAAAAAAAAAAAAAA", testList))
	if res, _ = e.do(c, "POST", "/u/"+ghost, strings.NewReader("List-Unsubscribe=One-Click"), "Content-Type", "application/x-www-form-urlencoded"); res.StatusCode != 200 {
		t.Errorf("unknown subscriber: %d", res.StatusCode)
	}
}

// Item 22: tampered, wrong-purpose and unknown-key tokens are refused with
// 4xx and change nothing; no address or integer id appears in a link.
func TestTokensRejected(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	sub := e.addActive("kaori@example.jp")
	unsub := must[string](t)(e.subs.UnsubscribeToken(sub.PublicID, testList))
	prefs := must[string](t)(e.subs.PreferencesToken(sub.PublicID, testList))
	confirm := must[string](t)(e.subs.ConfirmToken(e.ctx, sub.ID, testList))
	other, err := token.NewKeyring(nil, token.Key{ID: "zz", Secret: []byte("some-other-secret-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	foreign := must[string](t)(other.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: sub.PublicID, List: testList}))
	sameID, _ := token.NewKeyring(nil, token.Key{ID: "k1", Secret: []byte("a-different-secret-under-k1")})
	forged := must[string](t)(sameID.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: sub.PublicID, List: testList}))

	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		if b[i] == '.' || b[i] > 'z' {
			b[i] ^= 0x03
		}
		return string(b)
	}
	for _, tok := range []string{unsub, prefs, confirm} {
		for _, forbidden := range []string{"kaori", "example.jp", "/" + strconv.FormatInt(sub.ID, 10)} {
			if strings.Contains(tok, forbidden) {
				t.Errorf("token %q contains %q", tok, forbidden)
			}
		}
	}
	cases := []struct{ name, method, path string }{
		{"tampered payload", "POST", "/u/" + flip(unsub, 5)},
		{"tampered signature", "POST", "/u/" + flip(unsub, len(unsub)-3)},
		{"truncated", "POST", "/u/" + unsub[:len(unsub)-4]},
		{"garbage", "POST", "/u/hello"},
		{"preferences token on unsubscribe", "POST", "/u/" + prefs},
		{"confirm token on unsubscribe", "POST", "/u/" + confirm},
		{"unsubscribe token on preferences", "POST", "/p/" + unsub},
		{"unsubscribe token on preferences GET", "GET", "/p/" + unsub},
		{"preferences token on confirm", "POST", "/confirm/" + prefs},
		{"unknown key id", "POST", "/u/" + foreign},
		{"forged under a known key id", "POST", "/u/" + forged},
		{"tampered preferences", "POST", "/p/" + flip(prefs, 9)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"List-Unsubscribe": {"One-Click"}, "action": {"unsubscribe"}}
			var res *http.Response
			if tc.method == "GET" {
				res, _ = e.do(c, "GET", tc.path, nil)
			} else {
				res, _ = e.postForm(c, tc.path, form)
			}
			if res.StatusCode < 400 || res.StatusCode > 499 {
				t.Errorf("status %d, want 4xx", res.StatusCode)
			}
			if s := e.subscriber("kaori@example.jp"); !s.Sendable(testList) {
				t.Fatal("a rejected token changed the subscriber")
			}
		})
	}
}

// Item 23: unsubscribe links minted under an old key keep working after
// the key rotates, as long as the old key stays in the ring.
func TestUnsubscribeSurvivesKeyRotation(t *testing.T) {
	e1 := newEnv(t, envOpts{keys: []token.Key{keyK1}})
	sub := e1.addActive("rotate@example.jp")
	old := must[string](t)(e1.subs.UnsubscribeToken(sub.PublicID, testList))

	// Rotate: k2 signs, k1 still verifies.
	e2 := newEnv(t, envOpts{keys: []token.Key{keyK2, keyK1}, db: e1.dbPath})
	if fresh := must[string](t)(e2.subs.UnsubscribeToken(sub.PublicID, testList)); fresh == old {
		t.Fatal("rotation did not change the signing key")
	}
	// Once k1 is dropped, its links stop verifying: the ring is what matters.
	e3 := newEnv(t, envOpts{keys: []token.Key{keyK2}, db: e1.dbPath})
	if res, _ := e3.postForm(e3.client(), "/u/"+old, url.Values{"List-Unsubscribe": {"One-Click"}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("token of a dropped key: %d, want 400", res.StatusCode)
	}
	res, _ := e2.postForm(e2.client(), "/u/"+old, url.Values{"List-Unsubscribe": {"One-Click"}})
	if res.StatusCode != 200 {
		t.Fatalf("old token after rotation: %d", res.StatusCode)
	}
	if s := e2.subscriber("rotate@example.jp"); s.Sendable(testList) {
		t.Fatal("old token did not unsubscribe after rotation")
	}
}

func TestPreferenceCentre(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	sub := e.addActive("prefs@example.jp")
	tok := must[string](t)(e.subs.PreferencesToken(sub.PublicID, testList))

	res, body := e.do(c, "GET", "/p/"+tok, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "配信内容の設定") || !strings.Contains(body, `value="eu" checked`) {
		t.Fatalf("GET prefs: %d\n%s", res.StatusCode, body)
	}
	res, _ = e.postForm(c, "/p/"+tok, url.Values{"action": {"save"}, "region": {"us"}, "topic": {"policy"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "?saved=1") {
		t.Fatalf("save: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	s := e.subscriber("prefs@example.jp")
	if got := s.Prefs.Key(); got != "us|policy" {
		t.Fatalf("prefs %q, want us|policy", got)
	}
	_, body = e.do(c, "GET", "/p/"+tok+"?saved=1", nil)
	if !strings.Contains(body, "設定を保存しました") || !strings.Contains(body, `value="us" checked`) || strings.Contains(body, `value="eu" checked`) {
		t.Error("saved page does not show the new choice")
	}
	// Nothing chosen: refused, nothing changed.
	res, body = e.postForm(c, "/p/"+tok, url.Values{"action": {"save"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "地域を1つ以上") {
		t.Errorf("empty prefs: %d", res.StatusCode)
	}
	if s := e.subscriber("prefs@example.jp"); s.Prefs.Key() != "us|policy" {
		t.Error("a refused change was applied")
	}
	// Unsubscribe from everything.
	res, body = e.postForm(c, "/p/"+tok, url.Values{"action": {"unsubscribe"}})
	if res.StatusCode != 200 || !strings.Contains(body, "配信を停止しました") {
		t.Fatalf("unsubscribe all: %d", res.StatusCode)
	}
	if s := e.subscriber("prefs@example.jp"); s.Status != subscribers.Unsubscribed {
		t.Errorf("status %s", s.Status)
	}
	_, body = e.do(c, "GET", "/p/"+tok, nil)
	if !strings.Contains(body, "配信を停止しています") {
		t.Error("preference centre does not say the reader is unsubscribed")
	}
}

func TestHealthzAndStatic(t *testing.T) {
	e := newEnv(t, envOpts{})
	if res, body := e.do(e.client(), "GET", "/healthz", nil); res.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", res.StatusCode, body)
	}
	if res, body := e.do(e.client(), "GET", "/static/style.css", nil); res.StatusCode != 200 || !strings.Contains(body, "font-family") {
		t.Errorf("style.css: %d", res.StatusCode)
	}
	if res, _ := e.do(e.client(), "GET", "/nope", nil); res.StatusCode != 404 {
		t.Errorf("unknown path: %d", res.StatusCode)
	}
	if res, body := e.do(e.client(), "GET", "/unsubscribe", nil); res.StatusCode != 200 || !strings.Contains(body, "末尾にあるリンク") || !strings.Contains(body, "info@news.example.jp") {
		t.Errorf("/unsubscribe: %d", res.StatusCode)
	}
	if res, _ := e.do(e.client(), "GET", "/", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("/: %d", res.StatusCode)
	}
}

// A second signup before confirming replaces the pending choice; an
// active reader's choice is never changed by a signup.
func TestRepeatSignupUpdatesOnlyPending(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	e.postForm(c, "/subscribe", signupForm("again@example.jp"))
	f := signupForm("again@example.jp")
	f["region"], f["topic"] = []string{"us"}, []string{"reports"}
	e.postForm(c, "/subscribe", f)
	if got := e.subscriber("again@example.jp").Prefs.Key(); got != "us|reports" {
		t.Errorf("pending prefs %q, want us|reports", got)
	}
	e.addActive("steady@example.jp")
	f = signupForm("steady@example.jp")
	f["region"] = []string{"asia"}
	e.postForm(c, "/subscribe", f)
	if got := e.subscriber("steady@example.jp").Prefs.Key(); got != "jp,us,eu,asia,intl|activities,policy,reports" {
		t.Errorf("active prefs changed to %q by a signup", got)
	}
}
