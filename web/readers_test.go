package web_test

import (
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/web"
)

// newChoiceForm is a signup whose choice differs from everything the
// setups store (every region and topic, the name 読者).
func newChoiceForm(email string) url.Values {
	f := signupForm(email)
	f["name"] = []string{"新しい 名前"}
	f["region"] = []string{"us"}
	f["topic"] = []string{"reports"}
	return f
}

// Issue 22: a returning reader's new choice (name, regions, topics) is
// what they get after confirming, and what the consent record describes;
// an active reader's choice is never changed by a signup (nobody
// confirms it). Every status a known address can have is covered.
func TestReturningReaderGetsNewChoice(t *testing.T) {
	const newKey = "us|reports"
	allKey := "jp,us,eu,asia,intl|activities,policy,reports"
	cases := []struct {
		name   string
		setup  func(e *env, addr string)
		mail   bool   // a confirmation mail is queued
		before string // prefs right after the signup, before confirming
	}{
		{"new", func(e *env, addr string) {}, true, newKey},
		{"pending", func(e *env, addr string) {
			e.postForm(e.client(), "/subscribe", signupForm(addr))
		}, true, newKey},
		{"active", func(e *env, addr string) { e.addActive(addr) }, false, allKey},
		{"unsubscribed", func(e *env, addr string) {
			s := e.addActive(addr)
			if err := e.subs.Unsubscribe(e.ctx, s.ID, "", "test"); err != nil {
				t.Fatal(err)
			}
		}, true, allKey},
		{"bounced", func(e *env, addr string) {
			s := e.addActive(addr)
			if err := e.subs.MarkBounced(e.ctx, s.ID, "test"); err != nil {
				t.Fatal(err)
			}
		}, true, allKey},
		{"complained", func(e *env, addr string) {
			s := e.addActive(addr)
			if err := e.subs.MarkComplained(e.ctx, s.ID, "test"); err != nil {
				t.Fatal(err)
			}
		}, true, allKey},
		{"erased and suppressed", func(e *env, addr string) {
			s := e.addActive(addr)
			if err := e.subs.Erase(e.ctx, s.ID, "test"); err != nil {
				t.Fatal(err)
			}
		}, true, newKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			addr := "returning@example.jp"
			tc.setup(e, addr)
			earlier := len(e.queuedMessages())
			res, body := e.postForm(e.client(), "/subscribe", newChoiceForm(addr))
			if res.StatusCode != 200 || !strings.Contains(body, "確認のメールをお送りしました") {
				t.Fatalf("signup: %d", res.StatusCode)
			}
			sub := e.subscriber(addr)
			if got := sub.Prefs.Key(); got != tc.before {
				t.Errorf("prefs before confirming %q, want %q", got, tc.before)
			}
			queued := len(e.queuedMessages()) - earlier
			if !tc.mail {
				if queued != 0 {
					t.Errorf("%d confirmation mails queued to an active reader", queued)
				}
				if sub.Name != "読者" {
					t.Errorf("active reader's name changed to %q by a signup", sub.Name)
				}
				return
			}
			if queued != 1 {
				t.Fatalf("%d confirmation mails queued, want 1", queued)
			}
			tok := e.confirmToken(addr, false)
			if res, body := e.postForm(e.client(), "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
				t.Fatalf("confirm: %d\n%s", res.StatusCode, body)
			}
			sub = e.subscriber(addr)
			if sub.Status != subscribers.Active || sub.Prefs.Key() != newKey || sub.Name != "新しい 名前" {
				t.Errorf("after confirming: %s %q %q, want active %q %q", sub.Status, sub.Prefs.Key(), sub.Name, newKey, "新しい 名前")
			}
			consents := must[[]subscribers.Consent](t)(e.subs.Consents(e.ctx, sub.ID))
			last := consents[len(consents)-1]
			if last.Method != subscribers.DoubleOptIn || last.Prefs.Key() != newKey {
				t.Errorf("consent record %s %q, want double opt-in of %q", last.Method, last.Prefs.Key(), newKey)
			}
		})
	}
}

// Issue 22: submissions of someone else's address cap the mails sent to
// it, never its owner's right to sign up; every answer is the same page.
func TestStrangerCannotLockOutAddress(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{SignupPerIP: 100, ConfirmPerAddress: 2}})
	victim := "victim@example.jp"
	var first string
	for i := range 6 {
		res, body := e.postForm(e.client(), "/subscribe", signupForm(victim), "X-Forwarded-For", "198.51.100."+strconv.Itoa(i))
		if res.StatusCode != 200 {
			t.Fatalf("stranger's submission %d: %d, want 200", i+1, res.StatusCode)
		}
		if i == 0 {
			first = body
		} else if body != first {
			t.Errorf("answer %d differs from the first", i+1)
		}
	}
	// The owner signs up from their own place: the same answer, not 429.
	res, body := e.postForm(e.client(), "/subscribe", newChoiceForm(victim), "X-Forwarded-For", "203.0.113.7")
	if res.StatusCode != 200 || body != first {
		t.Errorf("owner's own signup: %d (want 200 and the same page)", res.StatusCode)
	}
	if n := len(e.queuedMessages()); n != 2 {
		t.Errorf("%d confirmation mails queued, want the cap of 2", n)
	}
	// The choice of the latest submission waits for confirmation.
	if got := e.subscriber(victim).Prefs.Key(); got != "us|reports" {
		t.Errorf("pending prefs %q", got)
	}
}

// Issue 22: failed sign-ins lock one account whatever the IP, while
// another editor behind the same NAT still signs in; the console lists
// the failures without full IP addresses.
func TestLoginLocksAccountAcrossIPs(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{LoginPerAccount: 3, LoginPerIP: 100, TrustForwardedFor: true}})
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, _ := e.postForm(e.client(), "/admin/login", url.Values{"name": {"hanako"}, "password": {"guess" + strconv.Itoa(i)}},
			"X-Forwarded-For", "192.0.2."+strconv.Itoa(10+i))
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, res.StatusCode)
		}
	}
	res, body := e.postForm(e.client(), "/admin/login", url.Values{"name": {"hanako"}, "password": {editorPassword}},
		"X-Forwarded-For", "203.0.113.50")
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password on a locked account: %d, want 429", res.StatusCode)
	}
	if !strings.Contains(body, "しばらく") && !strings.Contains(body, "分") {
		t.Errorf("lock page does not say to wait:\n%s", body)
	}
	// Another editor from the same network is not affected.
	c, _ := e.loginAs("taro")
	// A stranger's name is recorded without what was typed.
	e.postForm(e.client(), "/admin/login", url.Values{"name": {"my-secret-password"}, "password": {"x"}}, "X-Forwarded-For", "2001:db8:1234:5678::9")
	res, page := e.do(c, "GET", "/admin/signins", nil)
	if res.StatusCode != 200 {
		t.Fatalf("/admin/signins: %d", res.StatusCode)
	}
	for _, want := range []string{"サインイン失敗", "hanako", "192.0.2.0/24", "ロック中のため拒否", "2001:db8:1234::/48", "登録のない名前"} {
		if !strings.Contains(page, want) {
			t.Errorf("failed sign-ins page lacks %q", want)
		}
	}
	for _, leak := range []string{"192.0.2.10", "203.0.113.50", "my-secret-password", "guess0"} {
		if strings.Contains(page, leak) {
			t.Errorf("failed sign-ins page shows %q", leak)
		}
	}
	if strings.Count(page, "パスワード違い") != 4 {
		t.Errorf("want 4 wrong-password rows:\n%s", page)
	}
	// Anonymous readers cannot see it.
	if res, _ := e.do(e.client(), "GET", "/admin/signins", nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("anonymous /admin/signins: %d, want a redirect to sign in", res.StatusCode)
	}
}

// Issue 22: the per-account wait grows with each failure, by the
// server's clock: after LoginPerAccount failures 1 minute, then doubling
// up to LoginLockMax, whatever the IP; attempts refused while it waits
// do not lengthen it; a successful sign-in resets the count, and so does
// a LoginWindow without failures. The failed sign-ins page says so.
func TestLoginWaitGrowsAndResets(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{LoginPerAccount: 3, LoginLock: time.Minute, LoginLockMax: 4 * time.Minute,
		LoginWindow: 15 * time.Minute, LoginPerIP: 1000, TrustForwardedFor: true}})
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	ip := 0
	try := func(step, password string, want int) {
		t.Helper()
		ip++ // every attempt from another address: the wait is the account's
		res, _ := e.postForm(e.browser(), "/admin/login", url.Values{"name": {"hanako"}, "password": {password}},
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", ip%250+1))
		if res.StatusCode != want {
			t.Fatalf("%s: %d, want %d", step, res.StatusCode, want)
		}
	}
	wrong, right := "wrong password", editorPassword
	for i := range 3 {
		try(fmt.Sprintf("failure %d", i+1), wrong, http.StatusUnauthorized)
	}
	try("right password right after the 3rd failure", right, http.StatusTooManyRequests)
	e.clock.Advance(59 * time.Second)
	try("wrong password 59 s into the 1-minute wait", wrong, http.StatusTooManyRequests)
	e.clock.Advance(2 * time.Second)
	try("4th failure, after the 1-minute wait", wrong, http.StatusUnauthorized) // now 2 minutes
	e.clock.Advance(119 * time.Second)
	try("right password 1:59 into the 2-minute wait", right, http.StatusTooManyRequests)
	e.clock.Advance(2 * time.Second)
	try("5th failure, after the 2-minute wait", wrong, http.StatusUnauthorized) // now 4 minutes
	e.clock.Advance(4*time.Minute + time.Second)
	try("6th failure, after the 4-minute wait", wrong, http.StatusUnauthorized) // 8 minutes, capped at 4
	// A stranger keeps trying: the wait stays 4 minutes.
	for i := range 10 {
		e.clock.Advance(20 * time.Second)
		try(fmt.Sprintf("attempt %d during the capped wait", i+1), wrong, http.StatusTooManyRequests)
	}
	e.clock.Advance(time.Minute + time.Second) // 4:01 after the 6th failure
	try("right password after the capped wait", right, http.StatusSeeOther)

	// The success reset the count: two failures do not make it wait.
	try("failure 1 after the reset", wrong, http.StatusUnauthorized)
	try("failure 2 after the reset", wrong, http.StatusUnauthorized)
	try("right password after 2 failures", right, http.StatusSeeOther)
	// So does a window with no failure: 2 + 2 failures 16 minutes apart.
	try("failure 1", wrong, http.StatusUnauthorized)
	try("failure 2", wrong, http.StatusUnauthorized)
	e.clock.Advance(16 * time.Minute)
	try("failure 1 after a quiet window", wrong, http.StatusUnauthorized)
	try("failure 2 after a quiet window", wrong, http.StatusUnauthorized)
	try("right password after a quiet window and 2 failures", right, http.StatusSeeOther)

	c, _ := e.loginAs("taro")
	res, page := e.do(c, "GET", "/admin/signins", nil)
	if res.StatusCode != 200 {
		t.Fatalf("/admin/signins: %d", res.StatusCode)
	}
	for _, want := range []string{"3回失敗すると", "1分待つ", "最長4分", "ロック中のため拒否", "hanako", "198.51.100.0/24"} {
		if !strings.Contains(page, want) {
			t.Errorf("failed sign-ins page lacks %q", want)
		}
	}
	res, page = e.do(c, "GET", "/admin/signins?lang=en", nil)
	if res.StatusCode != 200 || !strings.Contains(page, "After 3 failures on one account") || !strings.Contains(page, "up to 4 minutes") {
		t.Errorf("English failed sign-ins page: %d, lacks the rule", res.StatusCode)
	}
}

// Issue 22: the confirmation mail's To: carries no free-text name, and a
// newsletter copy's To: carries a reader's ASCII name shaped like an
// encoded word, or holding quotes, as typed (parsed from what the SMTP
// server received). A name with a line break is refused on the form.
func TestNameNeverReachesHeaderRaw(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	tricky := []string{`=?utf-8?q?admin?=`, `Evil" <boss@example.jp>, "x`, `=?UTF-8?B?5pys5b2T?= san`}
	f := signupForm("signup@example.jp")
	f["name"] = []string{tricky[0]}
	if res, _ := e.postForm(e.client(), "/subscribe", f); res.StatusCode != 200 {
		t.Fatalf("signup: %d", res.StatusCode)
	}
	f = signupForm("crlf@example.jp")
	f["name"] = []string{"太郎\r\nBcc: victim@example.jp"}
	if res, _ := e.postForm(e.client(), "/subscribe", f); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("name with CR/LF: %d, want 422", res.StatusCode)
	}
	msgs := e.smtp.WaitFor(1, 15*time.Second)
	to := header(t, msgs[0].Raw, "To")
	if len(to) != 1 {
		t.Fatalf("To: %q", to)
	}
	a, err := mail.ParseAddress(to[0])
	if err != nil || a.Name != "" || a.Address != "signup@example.jp" || strings.Contains(to[0], "admin") {
		t.Errorf("confirmation To: %q parses to %+v, %v (want the bare address)", to[0], a, err)
	}

	// Newsletter copies to readers with such names.
	var addrs []string
	for i, name := range tricky {
		addr := "reader" + strconv.Itoa(i) + "@example.jp"
		addrs = append(addrs, addr)
		s := e.addActive(addr)
		if _, err := e.subs.Update(e.ctx, s.ID, subscribers.Update{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	issue, err := compose.Load(filepath.Join("testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: issue, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)
	for i, addr := range addrs {
		ms := e.smtp.MessagesTo(addr)
		if len(ms) != 1 {
			t.Fatalf("%s: %d messages", addr, len(ms))
		}
		raw := header(t, ms[0].Raw, "To")
		a, err := (&mail.AddressParser{WordDecoder: &mime.WordDecoder{}}).Parse(raw[0])
		if err != nil || a.Name != tricky[i] || a.Address != addr {
			t.Errorf("To: %q parses to %+v, %v; want name %q", raw[0], a, err, tricky[i])
		}
	}
}

// Issue 22: a used confirmation link opened again by a subscribed reader
// says so (Japanese, or English on request); by a reader who left since,
// it asks them to start again.
func TestUsedConfirmLinkOfSubscribedReader(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	e.postForm(c, "/subscribe", signupForm("jiro@example.jp"))
	tok := e.confirmToken("jiro@example.jp", false)
	if res, _ := e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	res, body := e.do(c, "GET", "/confirm/"+tok, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "すでに登録済みです") || strings.Contains(body, "購読を確定する") ||
		!strings.Contains(body, `href="/p/`) {
		t.Errorf("GET used link: %d\n%s", res.StatusCode, body)
	}
	res, body = e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}})
	if res.StatusCode != 200 || !strings.Contains(body, "すでに登録済みです") {
		t.Errorf("POST used link: %d\n%s", res.StatusCode, body)
	}
	if res, body := e.do(c, "GET", "/confirm/"+tok+"?lang=en", nil); res.StatusCode != 200 || !strings.Contains(body, "already subscribed") {
		t.Errorf("English: %d\n%s", res.StatusCode, body)
	}
	// After leaving, the same link asks to start again.
	sub := e.subscriber("jiro@example.jp")
	if err := e.subs.Unsubscribe(e.ctx, sub.ID, "", "test"); err != nil {
		t.Fatal(err)
	}
	res, body = e.postForm(c, "/confirm/"+tok, url.Values{"lang": {"ja"}})
	if res.StatusCode != http.StatusGone || strings.Contains(body, "すでに登録済みです") || !strings.Contains(body, `href="/subscribe"`) {
		t.Errorf("used link of an unsubscribed reader: %d", res.StatusCode)
	}
}

// Issue 22: the preference page names the address it manages, partly
// masked; unknown paths and /static/ directories get the Japanese 404
// page.
func TestPrefsAddressAndNotFoundPages(t *testing.T) {
	e := newEnv(t, envOpts{})
	sub := e.addActive("hanako.yamada@example.jp")
	tok := must[string](t)(e.subs.PreferencesToken(sub.PublicID, testList))
	res, body := e.do(e.client(), "GET", "/p/"+tok, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "ha***a@example.jp") || strings.Contains(body, "hanako.yamada@") {
		t.Errorf("prefs page: %d, want the masked address:\n%s", res.StatusCode, body)
	}
	for _, path := range []string{"/nope", "/archive/x/y", "/static/", "/static/vendor/", "/static/vendor", "/subscribe/extra"} {
		res, body := e.do(e.client(), "GET", path, nil)
		if res.StatusCode != 404 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "ページが見つかりません") || !strings.Contains(body, `href="/archive"`) || strings.Contains(body, "style.css\"") && strings.Contains(body, "<pre>") {
			t.Errorf("GET %s: %d %q\n%s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		if strings.Contains(body, "404 page not found") || strings.Contains(body, `<a href="style.css">`) {
			t.Errorf("GET %s: Go's text or a listing", path)
		}
	}
	if res, _ := e.do(e.client(), "GET", "/static/style.css", nil); res.StatusCode != 200 {
		t.Errorf("/static/style.css: %d", res.StatusCode)
	}
}

// Issue 22: the archive is ordered and dated by the issues' periods, not
// by when they were sent: November sent first and July after still lists
// November first, each under its month.
func TestArchiveOrderedByPeriod(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	e.addActive("r1@example.jp")
	for _, path := range []string{filepath.Join("testdata", "aisi-monthly-2025-11.txt"), filepath.Join("..", "testdata", "aisi-monthly-2025-07.txt")} {
		issue, err := compose.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: issue, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		waitSend(t, e, snd.ID, queue.Done)
		e.clock.Advance(24 * time.Hour)
	}
	res, body := e.do(e.client(), "GET", "/archive", nil)
	if res.StatusCode != 200 {
		t.Fatalf("archive: %d", res.StatusCode)
	}
	nov, jul := strings.Index(body, `href="/archive/2025-11"`), strings.Index(body, `href="/archive/2025-07"`)
	if nov < 0 || jul < 0 || nov > jul {
		t.Errorf("archive order: November at %d, July at %d (want November first)\n%s", nov, jul, body)
	}
	for _, want := range []string{`<time datetime="2025-11-30">2025年11月</time>`, `<time datetime="2025-07-31">2025年7月</time>`} {
		if !strings.Contains(body, want) {
			t.Errorf("archive lacks %s\n%s", want, body)
		}
	}
	if _, body := e.do(e.client(), "GET", "/archive?lang=en", nil); !strings.Contains(body, `<time datetime="2025-11-30">November 2025</time>`) {
		t.Errorf("English archive lacks the English month\n%s", body)
	}
}

// Issue 22: an issue with lint errors can be reviewed (the plan, a dry
// run) and test-sent from the console, with the errors as warnings; only
// the real send needs the "send anyway" box.
func TestLintErrorsOnlyStopTheRealSend(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	e.addActive("reader@example.jp")
	c := e.browser()
	csrf := e.login(c)
	orig, err := os.ReadFile(filepath.Join("..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ := e.upload(c, csrf, "aisi-monthly-2025-11.txt", orig)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	issuePath := res.Header.Get("Location")
	_, body := e.do(c, "GET", issuePath, nil)
	for _, want := range []string{`id="plan-form"`, `id="test-form"`, "エラーを承知で送信する"} {
		if !strings.Contains(body, want) {
			t.Errorf("issue page lacks %s", want)
		}
	}
	// Test send.
	if res, _ := e.postForm(c, issuePath+"/test", url.Values{"csrf": {csrf}, "to": {"editor@example.jp"}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("test send: %d, want 303", res.StatusCode)
	}
	e.smtp.WaitFor(1, 15*time.Second)
	// Dry run: the plan with the errors as warnings and the force box.
	res, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != 200 || !strings.Contains(body, `id="lint-warnings"`) || !strings.Contains(body, ":70: error") ||
		!strings.Contains(body, `name="force"`) || !strings.Contains(body, `id="plan-total">1<`) {
		t.Fatalf("plan: %d\n%s", res.StatusCode, body)
	}
	key := regexp.MustCompile(`name="key" value="([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	// The real send without the box: refused, saying what to do.
	res, body = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}, "key": {key}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "エラーを承知で送信する") {
		t.Errorf("send without force: %d\n%s", res.StatusCode, body)
	}
	if got := len(e.smtp.MessagesTo("reader@example.jp")); got != 0 {
		t.Errorf("%d copies sent without force", got)
	}
	// The API likewise: the dry run answers, a send needs "force".
	tok := e.apiToken()
	var plan struct {
		Variants []struct{ Readers int64 } `json:"variants"`
	}
	if res := e.api(tok, "GET", "/api/v1/issues/2025-11/plan", "", &plan); res.StatusCode != 200 || len(plan.Variants) != 1 {
		t.Errorf("API plan: %d %+v", res.StatusCode, plan)
	}
	var ae apiErr
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &ae); res.StatusCode != 422 || ae.Error.Code != "lint_errors" {
		t.Errorf("API send without force: %d %+v", res.StatusCode, ae)
	}
	// With it: sent.
	res, _ = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}, "key": {key}, "force": {"yes"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/sends/") {
		t.Fatalf("forced send: %d", res.StatusCode)
	}
	var id int64
	fmtSscan(t, strings.TrimPrefix(res.Header.Get("Location"), "/admin/sends/"), &id)
	waitSend(t, e, id, queue.Done)
	if got := len(e.smtp.MessagesTo("reader@example.jp")); got != 1 {
		t.Errorf("%d copies after the forced send, want 1", got)
	}
}

// nothingIssue is the November sample with its US and EU policy sections
// marked "該当なし" by the editor.
func nothingIssue(t testing.TB) *compose.Issue {
	t.Helper()
	is, err := compose.Load(filepath.Join("testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range is.Sections {
		if r := is.Sections[i].Region; (r == audience.US || r == audience.EU) && is.Sections[i].Kind == audience.Policy {
			is.Sections[i].Items = []compose.Item{}
			is.Sections[i].Nothing = "該当なし"
		}
	}
	return is
}

// Issue 22: readers of a region marked "該当なし" see its heading and the
// note; a reader whose chosen sections all have nothing gets a short copy
// saying so with the issue's link, counted apart in the dry run; a list
// set to skip them sends them nothing; the archive keeps the headings.
func TestNothingThisMonthReaders(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, webURL: true})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("all@example.jp")
	usEU := audience.Prefs{Regions: []audience.Region{audience.US, audience.EU}, Topics: []audience.Topic{audience.Policy}}
	for _, addr := range []string{"quiet1@example.jp", "quiet2@example.jp"} {
		s := e.addActive(addr)
		if _, err := e.subs.Update(e.ctx, s.ID, subscribers.Update{Prefs: &usEU}); err != nil {
			t.Fatal(err)
		}
	}
	is := nothingIssue(t)

	// Dry run: the two quiet readers apart.
	vcs, nothing, err := e.svc.Preview(e.ctx, is, testList, nil)
	if err != nil {
		t.Fatal(err)
	}
	var short, full int64
	for _, v := range vcs {
		switch {
		case v.OnlyNothing && !v.Skipped:
			short += v.Readers
		case !v.OnlyNothing:
			full += v.Readers
		}
	}
	if short != 2 || full != 1 || nothing != 0 {
		t.Errorf("dry run: %d short, %d full, %d nothing; want 2, 1, 0 (%+v)", short, full, nothing, vcs)
	}

	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)
	quiet := e.smtp.MessagesTo("quiet1@example.jp")
	if len(quiet) != 1 {
		t.Fatalf("quiet reader got %d messages, want the short copy", len(quiet))
	}
	text := decodedBody(t, quiet[0].Raw)
	for _, want := range []string{"今月は、お選びいただいた地域・分野に該当する項目はありませんでした。", "/issues/2025-11", "■ 【米国】", "該当なし", "配信停止"} {
		if !strings.Contains(text, want) {
			t.Errorf("short copy lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "国内AI政策動向") {
		t.Error("short copy carries other sections")
	}
	all := e.smtp.MessagesTo("all@example.jp")
	if len(all) != 1 || !strings.Contains(decodedBody(t, all[0].Raw), "該当なし") {
		t.Errorf("full reader's copy lacks the 該当なし headings")
	}

	// The archive keeps the headings with the note.
	res, body := e.do(e.client(), "GET", "/archive/2025-11", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "【米国】") || !strings.Contains(body, "該当なし") {
		t.Errorf("archive: %d, want the 該当なし headings", res.StatusCode)
	}

	// A list set to skip them: counted as skipped, sent nothing.
	if _, err := e.subs.CreateList(e.ctx, "quiet", "静かなリスト"); err != nil {
		t.Fatal(err)
	}
	if err := e.subs.SetListSkipsNothing(e.ctx, "quiet", true); err != nil {
		t.Fatal(err)
	}
	p := audience.All()
	for _, n := range []struct {
		addr  string
		prefs audience.Prefs
	}{{"q-all@example.jp", p}, {"q-quiet@example.jp", usEU}} {
		if _, err := e.subs.Add(e.ctx, subscribers.NewSubscriber{Email: n.addr, Prefs: &n.prefs, Lists: []string{"quiet"},
			Method: subscribers.API, Consent: &subscribers.Consent{At: e.clock.Now(), Method: subscribers.API, FormVersion: "test", Text: "同意"}}); err != nil {
			t.Fatal(err)
		}
	}
	vcs, _, err = e.svc.Preview(e.ctx, is, "quiet", nil)
	if err != nil {
		t.Fatal(err)
	}
	skipped := int64(0)
	for _, v := range vcs {
		if v.Skipped {
			skipped += v.Readers
		}
	}
	if skipped != 1 {
		t.Errorf("dry run of the skipping list: %d skipped, want 1 (%+v)", skipped, vcs)
	}
	snd, err = e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: "quiet"})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)
	if n := len(e.smtp.MessagesTo("q-quiet@example.jp")); n != 0 {
		t.Errorf("skipping list: quiet reader got %d messages", n)
	}
	if n := len(e.smtp.MessagesTo("q-all@example.jp")); n != 1 {
		t.Errorf("skipping list: full reader got %d messages", n)
	}

	// The console's dry run shows them apart.
	var buf strings.Builder
	if err := compose.WriteMarkdown(&buf, is); err != nil {
		t.Fatal(err)
	}
	if res, body := e.upload(c, csrf, "nothing.md", []byte(buf.String())); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d\n%s", res.StatusCode, body)
	}
	res, body = e.postForm(c, "/admin/issues/2025-11/plan", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != 200 || !strings.Contains(body, `id="plan-only-nothing"`) || !strings.Contains(body, "該当なしのみ（短いお知らせを送ります）") {
		t.Errorf("console plan: %d\n%s", res.StatusCode, body)
	}
}
