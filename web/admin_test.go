package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/web"
)

const editorPassword = "correct horse battery staple"

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	olderRE = regexp.MustCompile(`<a href="([^"]+)" id="older">`)
)

// login creates an editor and signs a cookie-keeping client in; it returns
// the session's CSRF token.
func (e *env) login(c *http.Client) string {
	e.t.Helper()
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil && !strings.Contains(err.Error(), "exists") {
		e.t.Fatal(err)
	}
	res, _ := e.postForm(c, "/admin/login", url.Values{"name": {"hanako"}, "password": {editorPassword}, "next": {"/admin/issues"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/issues" {
		e.t.Fatalf("login: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, body := e.do(c, "GET", "/admin/issues", nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token in the console page:\n%s", body)
	}
	return m[1]
}

// upload posts an issue file to the console.
func (e *env) upload(c *http.Client, csrf, name string, data []byte) (*http.Response, string) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	return e.do(c, "POST", "/admin/issues", &buf, "Content-Type", mw.FormDataContentType())
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConsoleSignIn(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	// Not signed in: GET goes to the sign-in page, POST is refused.
	res, _ := e.do(c, "GET", "/admin/issues", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/login?next=") {
		t.Fatalf("anonymous GET: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := e.postForm(c, "/admin/sends/1/cancel", url.Values{}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous POST: %d", res.StatusCode)
	}
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	res, body := e.postForm(c, "/admin/login", url.Values{"name": {"hanako"}, "password": {"wrong password!!"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "パスワードが違います") {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	// An open redirect through ?next= is not possible.
	res, _ = e.postForm(c, "/admin/login", url.Values{"name": {"hanako"}, "password": {editorPassword}, "next": {"//evil.example/"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/issues" {
		t.Errorf("next=//evil: %q", res.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "tayori_session" {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || len(sc.Value) < 40 {
		t.Fatalf("session cookie %+v", sc)
	}
	res, body = e.do(c, "GET", "/admin/issues", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "hanako") {
		t.Fatalf("signed in: %d", res.StatusCode)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	// Sign out ends the session for good.
	old := sc.Value
	if res, _ := e.postForm(c, "/admin/logout", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if _, err := e.store.Session(e.ctx, old); err == nil {
		t.Error("session still valid after sign-out")
	}
	// Login is rate-limited per IP.
	for range 12 {
		res, _ = e.postForm(e.client(), "/admin/login", url.Values{"name": {"hanako"}, "password": {"nope nope nope"}})
	}
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("12th wrong sign-in: %d, want 429", res.StatusCode)
	}
}

func TestConsoleSecureCookie(t *testing.T) {
	e := newEnv(t, envOpts{})
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	h, err := web.NewServer(nil, web.Config{BaseURL: "https://news.example.jp", SenderName: testSender},
		web.Deps{Subscribers: e.subs, Store: e.store, Redis: e.rdb})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "https://news.example.jp/admin/login",
		strings.NewReader(url.Values{"name": {"hanako"}, "password": {editorPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	cks := res.Cookies()
	if len(cks) != 1 || cks[0].Name != "__Host-tayori_session" || !cks[0].Secure || !cks[0].HttpOnly {
		t.Fatalf("cookies %+v", cks)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS on https")
	}
}

func TestConsoleCSRF(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	sub := e.addActive("csrf@example.jp")
	path := "/admin/subscribers/" + sub.PublicID + "/unsubscribe"
	for name, tc := range map[string]struct {
		form   url.Values
		header []string
	}{
		"no token":       {url.Values{}, nil},
		"wrong token":    {url.Values{"csrf": {csrf + "x"}}, nil},
		"cross-site":     {url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "cross-site"}},
		"foreign origin": {url.Values{"csrf": {csrf}}, []string{"Origin", "https://evil.example"}},
	} {
		res, _ := e.postForm(c, path, tc.form, tc.header...)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
		if s := e.subscriber("csrf@example.jp"); !s.Sendable(testList) {
			t.Fatalf("%s: state changed", name)
		}
	}
	res, _ := e.postForm(c, path, url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("with token: %d", res.StatusCode)
	}
	if s := e.subscriber("csrf@example.jp"); s.Status != subscribers.Unsubscribed {
		t.Errorf("status %s", s.Status)
	}
}

// The editor's path: upload, lint, preview side by side, test send, plan,
// send, progress, pause and cancel.
func TestConsoleIssueToSend(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	csrf := e.login(c)

	// A broken file: every problem is listed.
	res, body := e.upload(c, csrf, "broken.md", []byte("---\ntitle: x\n---\n## 【謎の地域】\n- 2025/13/45 見出し\n"))
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "broken.md:") {
		t.Fatalf("broken upload: %d\n%s", res.StatusCode, body)
	}
	// The original sample has lint errors ("&reg=" read as ®): shown as
	// warnings beside the dry run, and they block a send that is not
	// forced (issue 22).
	orig, err := os.ReadFile(filepath.Join("..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ = e.upload(c, csrf, "aisi-monthly-2025-11.txt", orig)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	issuePath := res.Header.Get("Location")
	_, body = e.do(c, "GET", issuePath, nil)
	if !strings.Contains(body, `id="lint"`) || !strings.Contains(body, "aisi-monthly-2025-11.txt:70: error") || !strings.Contains(body, `id="plan-form"`) {
		t.Errorf("lint errors are not shown, or they hide the dry run:\n%s", body)
	}
	if res, _ := e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("send with lint errors: %d, want 422", res.StatusCode)
	}
	res, _ = e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != issuePath {
		t.Fatalf("re-upload: %d", res.StatusCode)
	}
	if _, body = e.do(c, "GET", issuePath, nil); strings.Contains(body, `id="lint"`) || !strings.Contains(body, "問題なし") {
		t.Error("the repaired issue still shows lint problems")
	}
	slug := strings.TrimPrefix(issuePath, "/admin/issues/")

	// Preview of one combination: text beside the HTML frame.
	res, body = e.do(c, "GET", issuePath+"?region=eu&topic=policy", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `id="text-preview"`) || !strings.Contains(body, "preview.html?region=eu&amp;topic=policy") {
		t.Fatalf("issue page: %d\n%s", res.StatusCode, body)
	}
	if !strings.Contains(body, "【欧州】") && !strings.Contains(body, "欧州") {
		t.Error("EU preview does not mention Europe")
	}
	if strings.Contains(between(t, body, `id="text-preview">`, "</pre>"), "【米国】") {
		t.Error("EU-only preview contains the US section")
	}
	res, body = e.do(c, "GET", issuePath+"/preview.html?region=eu&topic=policy", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "<html") || res.Header.Get("X-Frame-Options") != "SAMEORIGIN" ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Fatalf("preview.html: %d %v", res.StatusCode, res.Header)
	}

	// Test send: one message through the transactional queue.
	res, _ = e.postForm(c, issuePath+"/test", url.Values{"csrf": {csrf}, "to": {"editor@example.jp"}, "region": {"jp"}, "topic": {"activities", "policy", "reports"}})
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "sent=1") {
		t.Fatalf("test send: %d", res.StatusCode)
	}
	if _, body := e.do(c, "GET", res.Header.Get("Location"), nil); !strings.Contains(body, `id="test-sent"`) || !strings.Contains(body, `name="list" type="text" value="monthly"`) {
		t.Error("issue page after a test send lacks the notice or the list")
	}
	msgs := e.smtp.WaitFor(1, 15*time.Second)
	if subj := header(t, msgs[0].Raw, "Subject"); len(subj) != 1 || !strings.Contains(decodeWords(subj[0]), "テスト") {
		t.Errorf("test mail subject %q", subj)
	}

	// A list of three readers with different preferences; plan, then send.
	for _, a := range []string{"r1@example.jp", "r2@example.jp", "r3@example.jp"} {
		e.addActive(a)
	}
	s3 := e.subscriber("r3@example.jp")
	if _, err := e.subs.Update(e.ctx, s3.ID, subscribers.Update{Prefs: ptr(prefsOf("eu", "policy"))}); err != nil {
		t.Fatal(err)
	}
	res, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != 200 || !strings.Contains(body, `id="plan-total">3<`) {
		t.Fatalf("plan: %d\n%s", res.StatusCode, body)
	}
	// Variants are named for people by what they hold, with their
	// readers; never by internal keys.
	tbody := between(t, body, `<tbody>`, `</tbody>`)
	if n := strings.Count(tbody, `class="variant-label"`); n != 2 {
		t.Errorf("plan shows %d variants, want 2", n)
	}
	if !strings.Contains(tbody, `class="variant-label">欧州 / 政策動向<`) || !strings.Contains(tbody, "2 人") ||
		regexp.MustCompile(`\d+:\d{3,}`).MatchString(tbody) {
		t.Errorf("variant labels:\n%s", tbody)
	}
	res, _ = e.postForm(c, "/admin/issues/"+slug+"/send", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/sends/") {
		t.Fatalf("send: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	sendPath := res.Header.Get("Location")
	var p struct {
		State   string `json:"state"`
		Percent int    `json:"percent"`
		Sent    int    `json:"sent"`
		Final   bool   `json:"final"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for !p.Final {
		res, body = e.do(c, "GET", sendPath+"/progress", nil)
		if res.StatusCode != 200 {
			t.Fatalf("progress: %d", res.StatusCode)
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("send never finished: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.State != "done" || p.Percent != 100 || p.Sent != 3 {
		t.Errorf("final progress %+v", p)
	}
	res, body = e.do(c, "GET", sendPath, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `data-progress-url="`+sendPath+`/progress"`) || !strings.Contains(body, "/static/admin.js") {
		t.Errorf("send page: %d", res.StatusCode)
	}
	_, body = e.do(c, "GET", "/admin/sends", nil)
	if !strings.Contains(body, `href="`+sendPath+`"`) || !strings.Contains(body, "完了") {
		t.Error("sends page does not list the send")
	}
	// Cancelling a finished send is a conflict.
	if res, _ := e.postForm(c, sendPath+"/cancel", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusConflict {
		t.Errorf("cancel done send: %d, want 409", res.StatusCode)
	}
	// The sent issue is in the archive and its feed.
	res, body = e.do(e.client(), "GET", "/archive", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `href="/archive/`+slug+`"`) {
		t.Errorf("archive index: %d", res.StatusCode)
	}
	res, body = e.do(e.client(), "GET", "/archive/"+slug, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "【米国】") || !strings.Contains(body, "【欧州】") {
		t.Errorf("archive page: %d (want every section)", res.StatusCode)
	}
	if res, _ := e.do(e.client(), "GET", "/issues/"+slug, nil); res.StatusCode != 200 {
		t.Errorf("/issues/ alias: %d", res.StatusCode)
	}
	res, body = e.do(e.client(), "GET", "/archive/feed.atom", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/atom+xml") ||
		!strings.Contains(body, "<entry>") || !strings.Contains(body, e.srv.URL+"/archive/"+slug) {
		t.Errorf("feed: %d\n%s", res.StatusCode, body)
	}
	if res, _ := e.do(e.client(), "GET", "/archive/1999-01", nil); res.StatusCode != 404 {
		t.Errorf("unknown archive issue: %d", res.StatusCode)
	}
}

func TestConsoleScheduledSendPauseResumeCancel(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	list, _ := e.store.Issues(e.ctx)
	slug := list[0].Slug
	at := time.Now().Add(48 * time.Hour).In(time.FixedZone("JST", 9*3600)).Format("2006-01-02T15:04")
	res, _ := e.postForm(c, "/admin/issues/"+slug+"/send", url.Values{"csrf": {csrf}, "at": {at}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("schedule: %d", res.StatusCode)
	}
	sendPath := res.Header.Get("Location")
	_, body := e.do(c, "GET", sendPath, nil)
	if !strings.Contains(body, "scheduled") {
		t.Errorf("send page does not say scheduled")
	}
	for _, step := range []struct {
		action string
		state  queue.State
	}{{"pause", queue.Paused}, {"resume", queue.Scheduled}, {"cancel", queue.Cancelled}} {
		res, _ := e.postForm(c, sendPath+"/"+step.action, url.Values{"csrf": {csrf}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", step.action, res.StatusCode)
		}
		var id int64
		fmtSscan(t, strings.TrimPrefix(sendPath, "/admin/sends/"), &id)
		snd, err := e.svc.Get(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if snd.State != step.state {
			t.Errorf("after %s: %s, want %s", step.action, snd.State, step.state)
		}
	}
	if res, _ := e.postForm(c, sendPath+"/explode", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown action: %d", res.StatusCode)
	}
	// A schedule in the past is refused.
	res, _ = e.postForm(c, "/admin/issues/"+slug+"/send", url.Values{"csrf": {csrf}, "at": {"2020-01-01T09:00"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("past schedule: %d", res.StatusCode)
	}
}

func TestConsoleSubscribers(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("yamada@example.jp")
	e.addActive("suzuki@example.jp")
	res, body := e.do(c, "GET", "/admin/subscribers?q=yamada", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "yamada@example.jp") || strings.Contains(body, "suzuki@example.jp") {
		t.Fatalf("search: %d", res.StatusCode)
	}
	sub := e.subscriber("yamada@example.jp")
	res, body = e.do(c, "GET", "/admin/subscribers/"+sub.PublicID, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "同意の記録") || !strings.Contains(body, ">test<") {
		t.Fatalf("subscriber page: %d\n%s", res.StatusCode, body)
	}
	// Erase needs the confirmation box.
	if res, _ := e.postForm(c, "/admin/subscribers/"+sub.PublicID+"/erase", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("erase without confirm: %d", res.StatusCode)
	}
	if res, _ := e.postForm(c, "/admin/subscribers/"+sub.PublicID+"/erase", url.Values{"csrf": {csrf}, "confirm": {"erase"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("erase: %d", res.StatusCode)
	}
	got, err := e.subs.Get(e.ctx, sub.ID)
	if err != nil || got.Email != "" || got.ErasedAt.IsZero() {
		t.Errorf("after erase: %+v %v", got, err)
	}

	// CSV import with its row report, then export.
	csv := "email,name,regions,topics,consent_at,consent_text\n" +
		"new1@example.jp,新規,jp,policy,2026-01-05,同意しました\n" +
		"not-an-address,壊れ,jp,policy,2026-01-05,同意\n" +
		"yamada@example.jp,再登録,jp,policy,2026-01-05,同意\n"
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", "list.csv")
	fw.Write([]byte(csv))
	mw.Close()
	res, body = e.do(c, "POST", "/admin/subscribers/import", &buf, "Content-Type", mw.FormDataContentType())
	if res.StatusCode != 200 || !strings.Contains(body, `id="import-report"`) {
		t.Fatalf("import: %d\n%s", res.StatusCode, body)
	}
	rep := between(t, body, `id="import-report">`, "</div></div>")
	for _, want := range []string{"行<b>3</b>", "追加<b>1</b>", "エラー行<b>1</b>", "スキップ<b>1</b>"} {
		if !strings.Contains(rep, want) {
			t.Errorf("import report lacks %q: %s", want, rep)
		}
	}
	if s := e.subscriber("new1@example.jp"); s.Status != subscribers.Active {
		t.Errorf("imported status %s", s.Status)
	}
	res, body = e.do(c, "GET", "/admin/subscribers/export.csv", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || !strings.Contains(body, "new1@example.jp") || strings.Contains(body, "yamada@") {
		t.Errorf("export: %d\n%s", res.StatusCode, body)
	}
}

// Failed deliveries are listed with the relay's reply, in the console and
// the API.
func TestSendFailuresShowRelayReply(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, smtp: []testutil.SMTPOption{
		testutil.FailRcpt("gone@example.jp", testutil.Reply(550, "5.1.1", "mailbox unavailable")),
	}})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("ok@example.jp")
	e.addActive("gone@example.jp")
	e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	res, _ := e.postForm(c, "/admin/issues/2025-11/send", url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("send: %d", res.StatusCode)
	}
	sendPath := res.Header.Get("Location")
	var id int64
	fmtSscan(t, strings.TrimPrefix(sendPath, "/admin/sends/"), &id)
	snd := waitSend(t, e, id, queue.Done)
	if snd.Counts.FailedPerm != 1 || snd.Counts.Sent != 1 {
		t.Fatalf("counts %+v", snd.Counts)
	}
	_, body := e.do(c, "GET", sendPath, nil)
	if !strings.Contains(body, "届かなかった配信") || !strings.Contains(body, "mailbox unavailable") || !strings.Contains(body, "恒久的") {
		t.Errorf("send page does not list the failure with the reply:\n%s", body)
	}
	// Each failure names the reader by address, linked to their page.
	gone := e.subscriber("gone@example.jp")
	if !strings.Contains(body, `<a href="/admin/subscribers/`+gone.PublicID+`">gone@example.jp</a>`) {
		t.Error("the failure list does not name the reader by address with a link")
	}
	// A finished send offers no pause or cancel, and says what done means.
	if strings.Contains(body, `id="pause"`) || strings.Contains(body, `id="cancel"`) || !strings.Contains(body, `id="state-help">すべての読者`) {
		t.Error("a finished send offers pause or cancel, or does not explain its state")
	}
	_, body = e.do(c, "GET", sendPath+"/progress", nil)
	if !strings.Contains(body, `"failed":1`) {
		t.Errorf("progress %s", body)
	}
}

// recordFeedback stores feedback events as `tayori feedback ingest` would,
// received an hour ago unless set.
func (e *env) recordFeedback(events ...subscribers.FeedbackEvent) {
	e.t.Helper()
	for i := range events {
		if events[i].ReceivedAt.IsZero() {
			events[i].ReceivedAt = e.clock.Now().Add(-time.Hour)
		}
	}
	if _, err := e.subs.RecordFeedback(e.ctx, events); err != nil {
		e.t.Fatal(err)
	}
}

// authRefusal is a 5.7.26 refusal in a bounce report: it closes the gate.
func authRefusal(key string) subscribers.FeedbackEvent {
	return subscribers.FeedbackEvent{ReportKey: key, Kind: "policy", Status: "5.7.26", Auth: true, Domain: "outlook.com", MatchedBy: "return-path",
		Detail: "550 5.7.26 unauthenticated mail", Action: "alert"}
}

// The feedback page shows the gate with its figures and the latest events
// in the console's time zone, with links to the send and the reader, and
// filters by kind.
func TestConsoleFeedbackPage(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	e := newEnv(t, envOpts{gate: true, cfg: web.Config{Location: est}})
	c := e.browser()
	e.login(c)

	res, body := e.do(c, "GET", "/admin/feedback", nil)
	if res.StatusCode != 200 || !strings.Contains(body, `id="gate" data-state="open"`) || !strings.Contains(body, "イベントはありません") {
		t.Fatalf("empty feedback page: %d\n%s", res.StatusCode, body)
	}
	if !strings.Contains(between(t, body, "<nav>", "</nav>"), `href="/admin/feedback"`) {
		t.Error("the console navigation does not link the feedback page")
	}

	sub := e.addActive("bounced@example.jp")
	hardAt := e.clock.Now().Add(-48 * time.Hour).Truncate(time.Minute) // two days old
	e.recordFeedback(
		subscribers.FeedbackEvent{ReportKey: "r-hard", Kind: "hard", Status: "5.1.1", Domain: "example.jp", SubscriberID: sub.ID,
			SendID: 42, MatchedBy: "return-path", Action: "marked bounced", ReceivedAt: hardAt},
		subscribers.FeedbackEvent{ReportKey: "r-complaint", Kind: "complaint", Status: "abuse", Domain: "gmail.com", MatchedBy: "message-id", SendID: 43,
			Action: "recorded"},
		authRefusal("r-auth"),
	)
	res, body = e.do(c, "GET", "/admin/feedback", nil)
	if res.StatusCode != 200 {
		t.Fatalf("feedback page: %d", res.StatusCode)
	}
	gate := between(t, body, `id="gate"`, "<h2>最近のイベント")
	for _, want := range []string{`data-state="closed"`, "閉（送信を止めています）", "1 authentication refusal in the last 7 days",
		"fix SPF, DKIM and DMARC", "警告 0.1%、停止 0.3%", "送信済み<b>0</b>", "苦情<b>1</b>", "認証エラー<b>1</b>", "outlook.com 5.7.26"} {
		if !strings.Contains(gate, want) {
			t.Errorf("the gate card lacks %q:\n%s", want, gate)
		}
	}
	events := between(t, body, `id="events"`, "</table>")
	if n := strings.Count(events, `<tr><td data-label="受信">`); n != 3 {
		t.Errorf("%d event rows, want 3:\n%s", n, events)
	}
	for _, want := range []string{
		`<tr><td data-label="受信">` + hardAt.In(est).Format("2006-01-02 15:04") + " EST</td>",
		`<code>5.1.1</code>`, `<a href="/admin/sends/42">配信 42</a>`, `<a href="/admin/subscribers/` + sub.PublicID + `">bounced@example.jp</a>`,
		"marked bounced", "gmail.com", `<a href="/admin/sends/43">`, "outlook.com", ">auth<",
	} {
		if !strings.Contains(events, want) {
			t.Errorf("the events table lacks %q:\n%s", want, events)
		}
	}
	// Newest first: the complaint and the refusal (an hour old) before the
	// two-day-old bounce.
	if strings.Index(events, "gmail.com") > strings.Index(events, "5.1.1") {
		t.Error("events are not newest first")
	}

	_, body = e.do(c, "GET", "/admin/feedback?kind=complaint", nil)
	events = between(t, body, `id="events"`, "</table>")
	if strings.Count(events, `<tr><td data-label="受信">`) != 1 || !strings.Contains(events, "gmail.com") || strings.Contains(events, "5.1.1") {
		t.Errorf("kind=complaint:\n%s", events)
	}
	if !strings.Contains(body, `<option value="complaint" selected>`) {
		t.Error("the filter does not keep the chosen kind")
	}
	if res, _ := e.do(c, "GET", "/admin/feedback?kind=bogus", nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("kind=bogus: %d, want 400", res.StatusCode)
	}
	if strings.Contains(gate, "gate-unmatched") || strings.Contains(body, `id="older"`) {
		t.Error("a note on unmatched reports with none, or a next page with three events")
	}
	// A forged complaint (no valid token) is noted, not counted.
	e.recordFeedback(subscribers.FeedbackEvent{ReportKey: "r-forged", Kind: "complaint", Status: "abuse", Domain: "forged.example"})
	_, body = e.do(c, "GET", "/admin/feedback", nil)
	gate = between(t, body, `id="gate"`, "<h2>最近のイベント")
	if !strings.Contains(gate, "苦情<b>1</b>") || !strings.Contains(gate, `id="gate-unmatched"`) ||
		!strings.Contains(gate, "照合できない報告 1 件") {
		t.Errorf("the gate card with a forged complaint:\n%s", gate)
	}
}

// The feedback page lists 200 events a page, newest first; "older" goes on
// after the last one shown and keeps the kind filter.
func TestConsoleFeedbackPaging(t *testing.T) {
	e := newEnv(t, envOpts{gate: true})
	c := e.browser()
	e.login(c)
	var evs []subscribers.FeedbackEvent
	for i := range 205 {
		evs = append(evs, subscribers.FeedbackEvent{ReportKey: fmt.Sprintf("r%03d", i), Kind: "soft", Status: "4.2.2",
			Domain: fmt.Sprintf("d%03d.example", i), ReceivedAt: e.clock.Now().Add(-time.Duration(205-i) * time.Minute)})
	}
	e.recordFeedback(evs...)
	_, body := e.do(c, "GET", "/admin/feedback?kind=soft", nil)
	events := between(t, body, `id="events"`, "</table>")
	if n := strings.Count(events, `<tr><td data-label="受信">`); n != 200 || !strings.Contains(events, "d204.example") || strings.Contains(events, "d004.example") {
		t.Fatalf("first page: %d rows", n)
	}
	m := olderRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(m[1], "kind=soft") {
		t.Fatalf("older link %v missing or without the filter", m)
	}
	_, body = e.do(c, "GET", html.UnescapeString(m[1]), nil)
	events = between(t, body, `id="events"`, "</table>")
	if n := strings.Count(events, `<tr><td data-label="受信">`); n != 5 || !strings.Contains(events, "d004.example") || !strings.Contains(events, "d000.example") ||
		strings.Contains(events, "d005.example") || strings.Contains(body, `id="older"`) || !strings.Contains(body, `id="newest"`) {
		t.Errorf("second page: %d rows\n%s", n, events)
	}
}

// The console's send: a gate warning goes along to the new send's page
// once; a closed gate refuses with its reason on the confirmation page,
// records nothing, and lets the editor override it with the box.
func TestConsoleSendGate(t *testing.T) {
	e := newEnv(t, envOpts{gate: true})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("reader@example.jp")
	e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	issuePath := "/admin/issues/2025-11"
	sendCount := func() int {
		t.Helper()
		list, err := e.svc.List(e.ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	// Open gate: no notice, no box.
	_, body := e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}})
	if strings.Contains(body, `id="gate-`) || strings.Contains(body, `id="ignore-gate"`) {
		t.Errorf("open gate: the confirmation page shows a gate notice or the box:\n%s", body)
	}

	// A complaint with nothing sent in the window: a warning.
	e.recordFeedback(subscribers.FeedbackEvent{ReportKey: "r-complaint", Kind: "complaint", Status: "abuse", Domain: "gmail.com", MatchedBy: "message-id"})
	_, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}})
	if !strings.Contains(body, `id="gate-warning"`) || !strings.Contains(body, "no rate to judge") || strings.Contains(body, `id="ignore-gate"`) {
		t.Errorf("warning gate: confirmation page:\n%s", body)
	}
	res, _ := e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/sends/") {
		t.Fatalf("send with a warning: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	sendPath := res.Header.Get("Location")
	_, body = e.do(c, "GET", sendPath, nil)
	if w := between(t, body, `id="gate-warning"`, "</p>"); !strings.Contains(w, "1 complaint in the last 7 days but no copy sent in it") {
		t.Errorf("send page warning %q", w)
	}
	if _, body = e.do(c, "GET", sendPath, nil); strings.Contains(body, `id="gate-warning"`) {
		t.Error("the warning is shown again on reload")
	}
	// Cancelled before it sent anything (no worker runs), it leaves room
	// for another send of the issue.
	if res, _ := e.postForm(c, sendPath+"/cancel", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", res.StatusCode)
	}

	// An authentication refusal closes the gate.
	e.recordFeedback(authRefusal("r-auth"))
	_, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}})
	if !strings.Contains(body, `id="gate-closed"`) || !strings.Contains(body, `name="ignore_gate" value="yes"`) {
		t.Errorf("closed gate: confirmation page lacks the notice or the box:\n%s", body)
	}
	before := sendCount()
	res, body = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("send through a closed gate: %d, want 409", res.StatusCode)
	}
	refused := between(t, body, `id="gate-refused"`, "</div>")
	if !strings.Contains(refused, "1 authentication refusal in the last 7 days") || !strings.Contains(refused, "fix SPF, DKIM and DMARC first") {
		t.Errorf("the refusal does not give the reason:\n%s", refused)
	}
	if !strings.Contains(body, `id="plan-total">1<`) || !strings.Contains(body, `name="ignore_gate" value="yes"`) {
		t.Errorf("the refusal page is not the confirmation page with the box:\n%s", body)
	}
	if n := sendCount(); n != before {
		t.Errorf("a refused send was recorded: %d sends, want %d", n, before)
	}

	// Ticking the box sends anyway, and the page says the gate was ignored.
	res, _ = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}, "ignore_gate": {"yes"}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/sends/") || res.Header.Get("Location") == sendPath {
		t.Fatalf("send ignoring the gate: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if n := sendCount(); n != before+1 {
		t.Errorf("%d sends after the override, want %d", n, before+1)
	}
	_, body = e.do(c, "GET", res.Header.Get("Location"), nil)
	if w := between(t, body, `id="gate-warning"`, "</p>"); !strings.Contains(w, "gate ignored: 1 authentication refusal") {
		t.Errorf("send page after the override: %q", w)
	}
}
