package web_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/subscribers"
)

// api calls the JSON API with a bearer token (and header, name and value
// pairs) and decodes the answer.
func (e *env) api(tok, method, path, body string, out any, header ...string) *http.Response {
	e.t.Helper()
	hdr := append([]string(nil), header...)
	if tok != "" {
		hdr = append(hdr, "Authorization", "Bearer "+tok)
	}
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
		ct := "application/json"
		if strings.HasPrefix(body, "email,") {
			ct = "text/csv"
		} else if !strings.HasPrefix(body, "{") {
			ct = "text/plain; charset=utf-8"
		}
		hdr = append(hdr, "Content-Type", ct)
	}
	var res *http.Response
	var text string
	if rd != nil {
		res, text = e.do(e.client(), method, path, rd, hdr...)
	} else {
		res, text = e.do(e.client(), method, path, nil, hdr...)
	}
	if out != nil && text != "" {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			e.t.Fatalf("%s %s: %d, not JSON: %v\n%s", method, path, res.StatusCode, err, text)
		}
	}
	return res
}

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e *env) apiToken() string {
	e.t.Helper()
	if _, err := e.store.AddEditor(e.ctx, "bot", editorPassword); err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.store.NewAPIToken(e.ctx, "bot", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func TestAPIAuthAndErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	var ae apiErr
	res := e.api("", "GET", "/api/v1/issues", "", &ae)
	if res.StatusCode != 401 || ae.Error.Code != "unauthorized" || res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d %+v", res.StatusCode, ae)
	}
	res = e.api("tyr_forged", "GET", "/api/v1/issues", "", &ae)
	if res.StatusCode != 401 {
		t.Errorf("bad token: %d", res.StatusCode)
	}
	tok := e.apiToken()
	if res := e.api(tok, "GET", "/api/v1/issues", "", nil); res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("good token: %d", res.StatusCode)
	}
	// The store keeps only a hash of the token.
	var n int
	if err := e.db.QueryRow(`SELECT count(*) FROM web_api_tokens WHERE token_hash = ?`, tok).Scan(&n); err != nil || n != 0 {
		t.Errorf("the token is stored in the clear (%d, %v)", n, err)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/api/v1/issues/none", "", 404, "not_found"},
		{"GET", "/api/v1/sends/9999", "", 404, "not_found"},
		{"GET", "/api/v1/sends/abc", "", 404, "not_found"},
		{"GET", "/api/v1/nothing", "", 404, "not_found"},
		{"POST", "/api/v1/sends", `{"issue": "x", "bogus": 1}`, 400, "invalid"},
		{"POST", "/api/v1/sends", `{"issue": "none"}`, 404, "not_found"},
		{"POST", "/api/v1/subscribers", `{"email": "not an address"}`, 400, "invalid"},
		{"GET", "/api/v1/subscribers?status=weird", "", 400, "invalid"},
		{"POST", "/api/v1/issues?name=bad.md", "---\ntitle: x\n---\n## 【謎】\n", 422, "invalid"},
	} {
		var ae apiErr
		res := e.api(tok, tc.method, tc.path, tc.body, &ae)
		if res.StatusCode != tc.status || ae.Error.Code != tc.code || ae.Error.Message == "" {
			t.Errorf("%s %s: %d %+v, want %d %s", tc.method, tc.path, res.StatusCode, ae, tc.status, tc.code)
		}
	}
}

func TestAPIIssuesAndSends(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	tok := e.apiToken()
	e.addActive("reader@example.jp")
	// The original sample has lint errors: listed, and they block a send.
	orig, err := os.ReadFile(filepath.Join("..", "testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if res := e.api(tok, "POST", "/api/v1/issues?name=orig.txt", string(orig), nil); res.StatusCode != 201 {
		t.Fatalf("upload original: %d", res.StatusCode)
	}
	var withProblems struct {
		Problems []struct {
			Line     int    `json:"line"`
			Severity string `json:"severity"`
		} `json:"problems"`
	}
	if res := e.api(tok, "GET", "/api/v1/issues/2025-11", "", &withProblems); res.StatusCode != 200 || len(withProblems.Problems) != 2 ||
		withProblems.Problems[0].Line != 70 || withProblems.Problems[0].Severity != "error" {
		t.Errorf("lint: %d %+v", res.StatusCode, withProblems)
	}
	var ae apiErr
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &ae); res.StatusCode != 422 || ae.Error.Code != "lint_errors" {
		t.Errorf("send with lint errors: %d %+v", res.StatusCode, ae)
	}
	var is struct {
		Slug     string `json:"slug"`
		Sections int    `json:"sections"`
		Items    int    `json:"items"`
	}
	res := e.api(tok, "POST", "/api/v1/issues?name=aisi-monthly-2025-11.txt", string(readTestdata(t, "aisi-monthly-2025-11.txt")), &is)
	if res.StatusCode != 201 || is.Slug == "" || is.Sections == 0 || is.Items == 0 {
		t.Fatalf("upload: %d %+v", res.StatusCode, is)
	}
	var plan struct {
		Variants []struct {
			Readers int64 `json:"readers"`
		} `json:"variants"`
	}
	if res := e.api(tok, "GET", "/api/v1/issues/"+is.Slug+"/plan", "", &plan); res.StatusCode != 200 || len(plan.Variants) != 1 || plan.Variants[0].Readers != 1 {
		t.Errorf("plan: %d %+v", res.StatusCode, plan)
	}
	var snd struct {
		ID       int64  `json:"id"`
		State    string `json:"state"`
		Progress struct {
			Percent int `json:"percent"`
		} `json:"progress"`
	}
	res = e.api(tok, "POST", "/api/v1/sends", `{"issue": "`+is.Slug+`", "list": "monthly"}`, &snd)
	if res.StatusCode != 201 || snd.ID == 0 || res.Header.Get("Location") == "" {
		t.Fatalf("create send: %d %+v", res.StatusCode, snd)
	}
	waitSend(t, e, snd.ID, "done")
	var got struct {
		Send struct {
			State  string               `json:"state"`
			Counts struct{ Sent int64 } `json:"counts"`
		} `json:"send"`
		Failures []any `json:"failures"`
	}
	if res := e.api(tok, "GET", res.Header.Get("Location"), "", &got); res.StatusCode != 200 || got.Send.State != "done" || got.Send.Counts.Sent != 1 {
		t.Errorf("send status: %d %+v", res.StatusCode, got)
	}
	if res := e.api(tok, "POST", "/api/v1/sends/"+itoa(snd.ID)+"/pause", "", &ae); res.StatusCode != 409 || ae.Error.Code != "conflict" {
		t.Errorf("pause a done send: %d %+v", res.StatusCode, ae)
	}
	var list struct {
		Sends []struct{ ID int64 } `json:"sends"`
	}
	if res := e.api(tok, "GET", "/api/v1/sends", "", &list); res.StatusCode != 200 || len(list.Sends) != 1 {
		t.Errorf("list sends: %d %+v", res.StatusCode, list)
	}
}

func TestAPISubscribers(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.apiToken()
	var sub subscribers.Subscriber
	res := e.api(tok, "POST", "/api/v1/subscribers", `{"email": "api@example.jp", "name": "API", "prefs": {"regions": ["jp"], "topics": ["policy"]},
		"consent": {"at": "2026-01-05T09:00:00+09:00", "form_version": "paper-2026", "text": "紙の申込書で同意"}}`, &sub)
	if res.StatusCode != 201 || sub.Status != subscribers.Active || sub.PublicID == "" {
		t.Fatalf("add: %d %+v", res.StatusCode, sub)
	}
	var ae apiErr
	if res := e.api(tok, "POST", "/api/v1/subscribers", `{"email": "api@example.jp"}`, &ae); res.StatusCode != 409 {
		t.Errorf("duplicate: %d %+v", res.StatusCode, ae)
	}
	// Pending with a confirmation mail.
	if res := e.api(tok, "POST", "/api/v1/subscribers", `{"email": "pend@example.jp", "send_confirmation": true}`, &sub); res.StatusCode != 201 || sub.Status != subscribers.Pending {
		t.Fatalf("add pending: %d %+v", res.StatusCode, sub)
	}
	if e.confirmToken("pend@example.jp", false) == "" {
		t.Fatal("no confirmation queued")
	}
	var page struct {
		Subscribers []subscribers.Subscriber `json:"subscribers"`
	}
	if res := e.api(tok, "GET", "/api/v1/subscribers?search=api@", "", &page); res.StatusCode != 200 || len(page.Subscribers) != 1 {
		t.Fatalf("search: %d %+v", res.StatusCode, page)
	}
	pid := page.Subscribers[0].PublicID
	var full struct {
		subscribers.Subscriber
		Consents []subscribers.Consent `json:"consents"`
	}
	if res := e.api(tok, "GET", "/api/v1/subscribers/"+pid, "", &full); res.StatusCode != 200 || len(full.Consents) != 1 || full.Consents[0].FormVersion != "paper-2026" {
		t.Errorf("get: %d %+v", res.StatusCode, full)
	}
	if res := e.api(tok, "PATCH", "/api/v1/subscribers/"+pid, `{"prefs": {"regions": ["us", "eu"], "topics": ["reports"]}}`, &sub); res.StatusCode != 200 || sub.Prefs.Key() != "us,eu|reports" {
		t.Errorf("patch: %d %+v", res.StatusCode, sub.Prefs)
	}
	var exp map[string]any
	if res := e.api(tok, "GET", "/api/v1/subscribers/"+pid+"/export", "", &exp); res.StatusCode != 200 || len(exp) == 0 {
		t.Errorf("export: %d", res.StatusCode)
	}
	if res := e.api(tok, "POST", "/api/v1/subscribers/"+pid+"/unsubscribe", "", &sub); res.StatusCode != 200 || sub.Status != subscribers.Unsubscribed {
		t.Errorf("unsubscribe: %d %s", res.StatusCode, sub.Status)
	}
	if res := e.api(tok, "DELETE", "/api/v1/subscribers/"+pid, "", nil); res.StatusCode != 204 {
		t.Errorf("erase: %d", res.StatusCode)
	}
	// An erased address cannot come back by API add.
	if res := e.api(tok, "POST", "/api/v1/subscribers", `{"email": "api@example.jp", "consent": {"at": "2026-02-01T00:00:00Z", "form_version": "x", "text": "y"}}`, &ae); res.StatusCode != 409 || ae.Error.Code != "suppressed" {
		t.Errorf("re-add erased: %d %+v", res.StatusCode, ae)
	}
	var rep subscribers.ImportResult
	res = e.api(tok, "POST", "/api/v1/subscribers/import", "email,name,consent_at,consent_text\nimp@example.jp,輸入,2026-01-01,同意\nbad,x,,\n", &rep)
	if res.StatusCode != 200 || rep.Added != 1 || rep.ErrorRows != 1 {
		t.Errorf("import: %d %+v", res.StatusCode, rep)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The API's sends and the gate: a warning rides on the created send as
// gate_warning; a closed gate is 409 gate_closed with the reason and
// records nothing; ignore_gate overrides it.
func TestAPISendGate(t *testing.T) {
	e := newEnv(t, envOpts{gate: true})
	tok := e.apiToken()
	e.addActive("reader@example.jp")
	if res := e.api(tok, "POST", "/api/v1/issues?name=aisi-monthly-2025-11.txt", string(readTestdata(t, "aisi-monthly-2025-11.txt")), nil); res.StatusCode != 201 {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	type sendAnswer struct {
		ID          int64  `json:"id"`
		GateWarning string `json:"gate_warning"`
	}
	var snd sendAnswer
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &snd); res.StatusCode != 201 || snd.GateWarning != "" {
		t.Fatalf("open gate: %d %+v", res.StatusCode, snd)
	}
	var raw map[string]any
	e.api(tok, "GET", "/api/v1/sends/"+itoa(snd.ID), "", &raw)
	if _, ok := raw["send"].(map[string]any)["gate_warning"]; ok {
		t.Error("gate_warning present without a warning")
	}
	// Each send is cancelled before it sends anything (no worker runs),
	// which leaves room for another send of the issue.
	cancel := func(id int64) {
		t.Helper()
		if res := e.api(tok, "POST", "/api/v1/sends/"+itoa(id)+"/cancel", "", nil); res.StatusCode != 200 {
			t.Fatalf("cancel send %d: %d", id, res.StatusCode)
		}
	}
	cancel(snd.ID)

	e.recordFeedback(subscribers.FeedbackEvent{ReportKey: "r-complaint", Kind: "complaint", Status: "abuse", Domain: "gmail.com", MatchedBy: "message-id"})
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &snd); res.StatusCode != 201 ||
		!strings.Contains(snd.GateWarning, "1 complaint in the last 7 days but no copy sent in it") {
		t.Fatalf("warning gate: %d %+v", res.StatusCode, snd)
	}
	cancel(snd.ID)

	e.recordFeedback(authRefusal("r-auth"))
	var list struct{ Sends []struct{ ID int64 } }
	e.api(tok, "GET", "/api/v1/sends", "", &list)
	before := len(list.Sends)
	var ae apiErr
	res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &ae)
	if res.StatusCode != 409 || ae.Error.Code != "gate_closed" ||
		!strings.HasPrefix(ae.Error.Message, "send refused by the send gate: 1 authentication refusal in the last 7 days") {
		t.Errorf("closed gate: %d %+v", res.StatusCode, ae)
	}
	e.api(tok, "GET", "/api/v1/sends", "", &list)
	if len(list.Sends) != before {
		t.Errorf("a refused send was recorded: %d sends, want %d", len(list.Sends), before)
	}
	snd = sendAnswer{}
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11", "ignore_gate": true}`, &snd); res.StatusCode != 201 ||
		snd.ID == 0 || !strings.HasPrefix(snd.GateWarning, "gate ignored: 1 authentication refusal") {
		t.Errorf("ignore_gate: %d %+v", res.StatusCode, snd)
	}
}
