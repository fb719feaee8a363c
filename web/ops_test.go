package web_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/web"
)

// /readyz answers 200 with a small JSON body when Redis and the store
// answer, and 503 naming Redis when Redis does not (a listener that
// accepts and never replies), without the Redis URL or its password.
func TestReadyz(t *testing.T) {
	e := newEnv(t, envOpts{})
	res, body := e.do(e.client(), "GET", "/readyz", nil)
	var got struct {
		Status, Redis, Store string
		Failed               []string
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz: %d %v\n%s", res.StatusCode, err, body)
	}
	if got.Status != "ready" || got.Redis != "ok" || got.Store != "ok" || len(got.Failed) != 0 {
		t.Errorf("readyz with everything up: %s", body)
	}

	// A Redis that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dead := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Password: "hunter2-secret", MaxRetries: -1,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second})
	defer dead.Close()
	h, err := web.NewServer(nil, web.Config{BaseURL: "http://127.0.0.1:1", SenderName: testSender},
		web.Deps{Subscribers: e.subs, Store: e.store, Redis: dead})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("readyz took %s with Redis silent: the check has no short timeout", took)
	}
	body = rec.Body.String()
	got = struct {
		Status, Redis, Store string
		Failed               []string
	}{}
	if err := json.Unmarshal([]byte(body), &got); err != nil || rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis silent: %d %v\n%s", rec.Code, err, body)
	}
	if got.Status != "unavailable" || got.Redis != "unavailable" || got.Store != "ok" || len(got.Failed) != 1 || got.Failed[0] != "redis" {
		t.Errorf("readyz with Redis silent: %s", body)
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, ln.Addr().String()) {
		t.Errorf("readyz leaks the Redis address or password: %s", body)
	}
}

// metricValue finds one sample in a Prometheus text exposition: name
// with exactly these labels (in any order); -1 when absent.
func metricValue(t testing.TB, expo, name string, labels ...string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(expo, "\n") {
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		var lab string
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			lab, rest = rest[1:end], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue
		}
		have := map[string]bool{}
		for _, kv := range regexp.MustCompile(`\w+="[^"]*"`).FindAllString(lab, -1) {
			have[kv] = true
		}
		if len(have) != len(labels) {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && have[l]
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v
	}
	return -1
}

// /metrics on the web server: refused without the token (and with a
// wrong one), served with it; requests are counted by route pattern,
// never by raw path; not served at all without a token configured.
func TestMetricsEndpoint(t *testing.T) {
	const tok = "metrics-token-0123456789abcdef"
	e := newEnv(t, envOpts{cfg: web.Config{MetricsToken: tok}})
	c := e.client()
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong-token-0123456789"}, {"Authorization", tok}} {
		if res, body := e.do(c, "GET", "/metrics", nil, h...); res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "tayori_") {
			t.Errorf("/metrics with %q: %d", h, res.StatusCode)
		}
	}
	e.do(c, "GET", "/archive/some-secret-slug", nil)
	e.do(c, "GET", "/archive/another-slug", nil)
	e.do(c, "GET", "/subscribe", nil)
	e.do(c, "GET", "/no/such/page", nil)
	res, body := e.do(c, "GET", "/metrics", nil, "Authorization", "Bearer "+tok)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics with the token: %d", res.StatusCode)
	}
	if v := metricValue(t, body, "tayori_http_requests_total", `route="GET /archive/{slug}"`, `method="GET"`, `status="404"`); v != 2 {
		t.Errorf("archive requests by route: %v, want 2\n%s", v, body)
	}
	if v := metricValue(t, body, "tayori_http_requests_total", `route="GET /subscribe"`, `method="GET"`, `status="200"`); v != 1 {
		t.Errorf("subscribe requests: %v, want 1", v)
	}
	if v := metricValue(t, body, "tayori_http_request_seconds_count", `route="GET /subscribe"`); v != 1 {
		t.Errorf("subscribe latency observations: %v, want 1", v)
	}
	if strings.Contains(body, "some-secret-slug") || strings.Contains(body, "/no/such/page") {
		t.Error("a raw path is a label")
	}
	for _, name := range []string{"tayori_copies_sent_total", "tayori_smtp_reply_seconds_bucket", "tayori_import_rows_total", "go_goroutines"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// Without a token configured, the public listener has no /metrics.
	e2 := newEnv(t, envOpts{})
	if res, body := e2.do(e2.client(), "GET", "/metrics", nil, "Authorization", "Bearer "+tok); res.StatusCode != http.StatusNotFound || strings.Contains(body, "tayori_") {
		t.Errorf("/metrics without a configured token: %d", res.StatusCode)
	}
}

// The copy counters count every message the relay is handed, by kind:
// a reader's issue copy, a confirmation mail, the welcome mail and test
// sends (one accepted, one refused for good, one refused for now), each
// through the real queue, worker and SMTP server; the dashboard's sums
// over kind still see them all.
func TestCopiesCountedByKind(t *testing.T) {
	const tok = "metrics-token-0123456789abcdef"
	e := newEnv(t, envOpts{worker: true, welcome: true, cfg: web.Config{MetricsToken: tok}, smtp: []testutil.SMTPOption{
		testutil.FailRcpt("nobody@example.jp", testutil.Reply(550, "5.1.1", "no such mailbox")),
		testutil.FailRcpt("later@example.jp", testutil.Reply(451, "4.3.0", "try again later")),
	}})
	e.sendIssue() // one reader's copy
	c := e.browser()
	if res, _ := e.postForm(c, "/subscribe", signupForm("hanako@example.jp")); res.StatusCode != 200 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	tok2 := e.confirmToken("hanako@example.jp", true)
	if res, _ := e.postForm(c, "/confirm/"+tok2, url.Values{"lang": {"ja"}}); res.StatusCode != 200 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	e.waitMessages("hanako@example.jp", 2) // the confirmation and the welcome
	ed := e.browser()
	csrf := e.login(ed)
	res, _ := e.upload(ed, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	issuePath := res.Header.Get("Location")
	for _, to := range []string{"editor@example.jp", "nobody@example.jp", "later@example.jp"} {
		if res, _ := e.postForm(ed, issuePath+"/test", url.Values{"csrf": {csrf}, "to": {to}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("test send to %s: %d", to, res.StatusCode)
		}
	}
	want := map[string]float64{
		`tayori_copies_sent_total kind="issue"`:                               1,
		`tayori_copies_sent_total kind="confirmation"`:                        1,
		`tayori_copies_sent_total kind="welcome"`:                             1,
		`tayori_copies_sent_total kind="test"`:                                1,
		`tayori_copies_sent_total kind="reminder"`:                            0,
		`tayori_copies_sent_total kind="other"`:                               0,
		`tayori_copies_failed_total kind="test" class="bad_mailbox"`:          1,
		`tayori_copies_failed_total kind="issue" class="bad_mailbox"`:         0,
		`tayori_copies_retried_total kind="confirmation" class="temporary"`:   0,
		`tayori_copies_failed_total kind="confirmation" class="permanent"`:    0,
		`tayori_copies_retried_total kind="welcome" class="unavailable"`:      0,
		`tayori_copies_failed_total kind="welcome" class="policy"`:            0,
		`tayori_copies_failed_total kind="other" class="temporary"`:           0,
		`tayori_copies_retried_total kind="issue" class="temporary"`:          0,
		`tayori_copies_retried_total kind="test" class="temporary"`:           1, // at least
		`tayori_copies_failed_total kind="test" class="temporary"`:            0,
		`tayori_copies_failed_total kind="confirmation" class="bad_mailbox"`:  0,
		`tayori_copies_retried_total kind="reminder" class="temporary"`:       0,
		`tayori_copies_failed_total kind="reminder" class="bad_mailbox"`:      0,
		`tayori_copies_retried_total kind="other" class="unavailable"`:        0,
		`tayori_copies_failed_total kind="issue" class="permanent"`:           0,
		`tayori_copies_retried_total kind="test" class="unavailable"`:         0,
		`tayori_copies_failed_total kind="welcome" class="bad_mailbox"`:       0,
		`tayori_copies_retried_total kind="confirmation" class="unavailable"`: 0,
		`tayori_copies_failed_total kind="test" class="permanent"`:            0,
		`tayori_copies_retried_total kind="welcome" class="temporary"`:        0,
	}
	value := func(body, key string) float64 {
		name, labels, _ := strings.Cut(key, " ")
		return metricValue(t, body, name, strings.Fields(labels)...)
	}
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = e.do(e.client(), "GET", "/metrics", nil, "Authorization", "Bearer "+tok)
		if value(body, `tayori_copies_sent_total kind="test"`) == 1 && value(body, `tayori_copies_failed_total kind="test" class="bad_mailbox"`) == 1 &&
			value(body, `tayori_copies_retried_total kind="test" class="temporary"`) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test sends were not counted:\n%s", body)
		}
	}
	for k, w := range want {
		got := value(body, k)
		if strings.Contains(k, `kind="test" class="temporary"`) && strings.HasPrefix(k, "tayori_copies_retried") {
			if got < w {
				t.Errorf("%s = %v, want at least %v", k, got, w)
			}
			continue
		}
		if got != w {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
}

// The operations page, against real Redis and a worker: a test send to
// an address the relay refuses (550 5.1.1) really fails and its task is
// archived; the page shows the queues, the worker alive and the error in
// words, with no task id as text; retry runs it again (it fails again),
// delete removes it; both are in the audit log; a POST without the CSRF
// token is refused.
func TestOperationsPage(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, smtp: []testutil.SMTPOption{
		testutil.FailRcpt("nobody@example.jp", testutil.Reply(550, "5.1.1", "no such mailbox")),
	}})
	c := e.browser()
	csrf := e.login(c)
	res, _ := e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	issuePath := res.Header.Get("Location")
	res, _ = e.postForm(c, issuePath+"/test", url.Values{"csrf": {csrf}, "to": {"nobody@example.jp"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("test send: %d", res.StatusCode)
	}
	insp := e.inspector()
	waitUntil(t, "the refused test send to be archived", func() bool {
		info, err := insp.GetQueueInfo(queue.QueueTransactional)
		return err == nil && info.Archived == 1
	})
	tasks, err := insp.ListArchivedTasks(queue.QueueTransactional)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("archived tasks: %v %v", tasks, err)
	}
	taskID := tasks[0].ID

	res, body := e.do(c, "GET", "/admin/ops", nil)
	if res.StatusCode != 200 {
		t.Fatalf("ops page: %d\n%s", res.StatusCode, body)
	}
	row := between(t, body, `data-queue="transactional"`, "</tr>")
	if !strings.Contains(row, "確認メール・テスト送信") || !strings.Contains(row, `data-state="archived">1<`) {
		t.Errorf("transactional queue row: %s", row)
	}
	if !strings.Contains(body, `data-queue="newsletter"`) {
		t.Error("the newsletter queue is not listed")
	}
	workers := between(t, body, `id="workers"`, "</table>")
	if !strings.Contains(workers, `class="worker"`) || !strings.Contains(workers, "稼働中") {
		t.Errorf("no worker alive listed: %s", workers)
	}
	card := between(t, body, `class="card danger task"`, "</div>\n</div>")
	for _, want := range []string{"確認メールまたはテスト送信「[テスト TEST] ", "受け取りを拒否しました", "もう一度実行", "削除", "550"} {
		if !strings.Contains(card, want) {
			t.Errorf("the failed task's card lacks %q:\n%s", want, card)
		}
	}
	// The task id only in the forms' hidden fields, never as text.
	if n := strings.Count(body, taskID); n != 2 || strings.Count(body, `name="task" value="`+taskID+`"`) != 2 {
		t.Errorf("task id appears %d times, want only in the two forms", n)
	}
	if _, en := e.do(c, "GET", "/admin/ops?lang=en", nil); !strings.Contains(en, "Confirmations and test sends") || !strings.Contains(en, "refused it") {
		t.Error("the English operations page lacks its words")
	}
	e.do(c, "GET", "/admin/ops?lang=ja", nil)

	// CSRF: refused without the token.
	if res, _ := e.postForm(c, "/admin/ops/tasks/retry", url.Values{"queue": {queue.QueueTransactional}, "task": {taskID}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("retry without CSRF: %d, want 403", res.StatusCode)
	}
	// Retry: the worker runs it again, the relay refuses again.
	res, _ = e.postForm(c, "/admin/ops/tasks/retry", url.Values{"csrf": {csrf}, "queue": {queue.QueueTransactional}, "task": {taskID}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/ops?done=retry" {
		t.Fatalf("retry: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	waitUntil(t, "the retried task to reach the relay", func() bool { return e.smtp.Attempts("nobody@example.jp") >= 2 })
	waitUntil(t, "the retried task to be archived again", func() bool {
		info, err := insp.GetQueueInfo(queue.QueueTransactional)
		return err == nil && info.Archived == 1 && info.Pending == 0 && info.Active == 0
	})
	// Delete: gone.
	res, _ = e.postForm(c, "/admin/ops/tasks/delete", url.Values{"csrf": {csrf}, "queue": {queue.QueueTransactional}, "task": {taskID}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	if info, _ := insp.GetQueueInfo(queue.QueueTransactional); info.Archived != 0 {
		t.Errorf("after delete: %d archived", info.Archived)
	}
	_, body = e.do(c, "GET", "/admin/ops?done=delete", nil)
	if !strings.Contains(body, `id="no-errors"`) || !strings.Contains(body, "停止中の処理を削除しました") {
		t.Error("the page after the delete still lists the task or lacks the notice")
	}
	// A task that is gone: a clear refusal, not a 500.
	res, body = e.postForm(c, "/admin/ops/tasks/delete", url.Values{"csrf": {csrf}, "queue": {queue.QueueTransactional}, "task": {taskID}})
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "その処理はもうありません") {
		t.Errorf("delete of a deleted task: %d", res.StatusCode)
	}
	_, audit := e.do(c, "GET", "/admin/audit", nil)
	for _, want := range []string{`data-action="task_retry"`, `data-action="task_delete"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// Every editor action done through the console is in the audit log, with
// who (the editor's name), when (in the console's zone) and what, newest
// first, and in the CSV export (UTF-8, header row, formula-safe cells).
func TestAuditLog(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	// A failed sign-in naming no editor: what was typed is not kept (it
	// may be a password typed in the wrong field).
	if res, _ := e.postForm(c, "/admin/login", url.Values{"name": {"=cmd|' /C calc'!A0"}, "password": {"wrong"}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("failed sign-in: %d", res.StatusCode)
	}
	csrf := e.login(c)
	res, _ := e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	issuePath := res.Header.Get("Location")
	slug := strings.TrimPrefix(issuePath, "/admin/issues/")
	stored, err := e.store.Issue(e.ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	title := stored.Title

	// Edit and save in the composer.
	v := e.composerValues(c, slug)
	v.Set("csrf", csrf)
	v.Set("title", title+"（改訂）")
	if res, _ := e.postForm(c, issuePath+"/edit", withAction(v, "save")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	if res, _ := e.postForm(c, issuePath+"/test", url.Values{"csrf": {csrf}, "to": {"editor@example.jp"}, "region": {"jp"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("test send: %d", res.StatusCode)
	}
	at := time.Now().Add(48 * time.Hour).In(time.FixedZone("JST", 9*3600)).Format("2006-01-02T15:04")
	res, _ = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "at": {at}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("send: %d", res.StatusCode)
	}
	sendPath := res.Header.Get("Location")
	for _, a := range []string{"pause", "resume", "cancel"} {
		if res, _ := e.postForm(c, sendPath+"/"+a, url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", a, res.StatusCode)
		}
	}
	// Import, export, erase.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	fw, _ := mw.CreateFormFile("file", "list.csv")
	fw.Write([]byte("email,name,regions,topics,consent_at,consent_text\nnew1@example.jp,新規,jp,policy,2026-01-05,同意\nbroken,壊れ,jp,policy,2026-01-05,同意\n"))
	mw.Close()
	if res, _ := e.do(c, "POST", "/admin/subscribers/import", &buf, "Content-Type", mw.FormDataContentType()); res.StatusCode != 200 {
		t.Fatalf("import: %d", res.StatusCode)
	}
	if res, _ := e.do(c, "GET", "/admin/subscribers/export.csv", nil); res.StatusCode != 200 {
		t.Fatalf("export: %d", res.StatusCode)
	}
	sub := e.subscriber("new1@example.jp")
	if res, _ := e.postForm(c, "/admin/subscribers/"+sub.PublicID+"/erase", url.Values{"csrf": {csrf}, "confirm": {"erase"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("erase: %d", res.StatusCode)
	}

	res, body := e.do(c, "GET", "/admin/audit", nil)
	if res.StatusCode != 200 {
		t.Fatalf("audit page: %d", res.StatusCode)
	}
	table := between(t, body, `<tbody>`, `</tbody>`)
	rowRE := regexp.MustCompile(`<tr data-action="([a-z_]+)"><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td></tr>`)
	rows := rowRE.FindAllStringSubmatch(table, -1)
	var actions []string
	for _, r := range rows {
		actions = append(actions, r[1])
	}
	want := []string{"erase", "export", "import", "cancel", "resume", "pause", "send", "test_send", "save", "upload", "signin", "signin_failed"}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Fatalf("audit actions, newest first:\n got %v\nwant %v\n%s", actions, want, table)
	}
	byAction := map[string][]string{}
	for _, r := range rows {
		byAction[r[1]] = r[2:]
	}
	zone := time.Now().In(tokyoZone(t)).Format("MST")
	for a, r := range byAction {
		if !strings.HasSuffix(r[0], zone) {
			t.Errorf("%s: time %q not in the console's zone %s", a, r[0], zone)
		}
		who := "hanako"
		if a == "signin_failed" {
			who = "（登録のない名前）"
		}
		if r[1] != who {
			t.Errorf("%s: editor %q, want %q", a, r[1], who)
		}
	}
	checks := map[string][2]string{ // action → label, subject
		"upload":    {"号のアップロード", title},
		"save":      {"号の保存", title + "（改訂）"},
		"test_send": {"テスト送信", title + "（改訂）"},
		"send":      {"配信", title + "（改訂）"},
		"pause":     {"配信の一時停止", title + "（改訂）"},
		"cancel":    {"配信の中止", title + "（改訂）"},
		"export":    {"購読者のエクスポート", "monthly"},
		"import":    {"購読者の取り込み", "list.csv"},
		"erase":     {"購読者の消去", "n***@example.jp"},
	}
	for a, w := range checks {
		if r := byAction[a]; r[2] != w[0] || r[3] != w[1] {
			t.Errorf("%s: %q / %q, want %q / %q", a, r[2], r[3], w[0], w[1])
		}
	}
	if d := byAction["import"][4]; !strings.Contains(d, "追加 1") || !strings.Contains(d, "不正 1") {
		t.Errorf("import detail %q", d)
	}
	if d := byAction["test_send"][4]; !strings.Contains(d, "editor@example.jp") {
		t.Errorf("test send detail %q", d)
	}
	if strings.Contains(body, "new1@example.jp") {
		t.Error("the audit log keeps an erased subscriber's address")
	}

	// The CSV: header, the same rows, formula-safe.
	res, body = e.do(c, "GET", "/admin/audit.csv", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("audit.csv: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "time,editor,action,action_label,subject,detail" || len(recs) != len(want)+1 {
		t.Fatalf("audit.csv: header %v, %d rows", recs[0], len(recs)-1)
	}
	last := recs[len(recs)-1]
	if last[2] != "signin_failed" || last[1] != "" {
		t.Errorf("the failed sign-in's row keeps what was typed: %q", last)
	}
	if strings.Contains(body, "calc") {
		t.Error("the audit log keeps the name typed in a failed sign-in")
	}
	if recs[len(recs)-3][4] != title || recs[1][3] != "購読者の消去" {
		t.Errorf("audit.csv rows: %q", recs)
	}
	// The export itself is recorded.
	if got, _ := e.store.AuditLog(e.ctx, 0, 1); len(got) != 1 || got[0].Action != "audit_export" {
		t.Errorf("the CSV export is not recorded: %+v", got)
	}

	// Cells a spreadsheet would read as a formula are made inert.
	if err := e.store.Audit(e.ctx, web.AuditEntry{Editor: "=cmd|' /C calc'!A0", Action: "export", Subject: "+SUM(A1)", Detail: "@x"}); err != nil {
		t.Fatal(err)
	}
	_, body = e.do(c, "GET", "/admin/audit.csv", nil)
	if recs, err = csv.NewReader(strings.NewReader(body)).ReadAll(); err != nil {
		t.Fatal(err)
	}
	if first := recs[1]; first[1] != "'=cmd|' /C calc'!A0" || first[4] != "'+SUM(A1)" || first[5] != "'@x" {
		t.Errorf("a formula-like row is not made inert: %q", first)
	}
}

// The audit log pages: 100 entries a page, newest first, with a link to
// the older ones.
func TestAuditLogPaging(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	e.login(c) // one entry: the sign-in
	for i := range 150 {
		if err := e.store.Audit(e.ctx, web.AuditEntry{Editor: "taro", Action: "export", Subject: "monthly", Detail: strings.Repeat("x", i%3)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body := e.do(c, "GET", "/admin/audit", nil)
	if n := strings.Count(body, "<tr data-action="); n != 100 {
		t.Errorf("first page: %d rows, want 100", n)
	}
	next := regexp.MustCompile(`href="(/admin/audit\?before=\d+)" id="audit-next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatal("no link to the older entries")
	}
	_, body = e.do(c, "GET", next[1], nil)
	if n := strings.Count(body, "<tr data-action="); n != 51 || !strings.Contains(body, `data-action="signin"`) || strings.Contains(body, `id="audit-next"`) {
		t.Errorf("second page: %d rows", n)
	}
}

func waitUntil(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inspector reads the test's Asynq queues.
func (e *env) inspector() *asynq.Inspector { return asynq.NewInspectorFromRedisClient(e.rdb) }

// tokyoZone is the console's default zone.
func tokyoZone(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The composer's other ways to change an issue are recorded as saves:
// a new issue, a revision restored.
func TestAuditLogComposer(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	loc := e.newIssue(c, csrf, readTestdata(t, "aisi-monthly-2025-11.txt"), "")
	slug := strings.TrimSuffix(strings.TrimPrefix(loc, "/admin/issues/"), "/edit")
	stored, err := e.store.Issue(e.ctx, slug)
	if err != nil {
		t.Fatal(err)
	}
	title := stored.Title
	v := e.composerValues(c, slug)
	v.Set("csrf", csrf)
	v.Set("title", title+"（改）")
	if res, _ := e.postForm(c, "/admin/issues/"+slug+"/edit", withAction(v, "save")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	if res, _ := e.postForm(c, "/admin/issues/"+slug+"/revisions/1/restore", url.Values{"csrf": {csrf}, "base": {"2"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", res.StatusCode)
	}
	entries, err := e.store.AuditLog(e.ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		got = append(got, en.Action+" "+en.Subject+" "+en.Detail)
	}
	want := []string{"save " + title + " 第3版（第1版から復元）", "save " + title + "（改） 第2版", "save " + title + " 新しい号", "signin  "}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
