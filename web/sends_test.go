package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tayori-news/tayori/queue"
)

// sendAnswer is the part of a send in the API's answers these tests read.
type sendAnswer struct {
	ID     int64 `json:"id"`
	State  string
	Counts queue.Counts `json:"counts"`
}

// alreadySent is the API's refusal of a second send of an issue to a list.
type alreadySent struct {
	Error struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		EarlierSend struct {
			ID      int64  `json:"id"`
			State   string `json:"state"`
			Sent    int64  `json:"sent"`
			Running bool   `json:"running"`
		} `json:"earlier_send"`
	} `json:"error"`
}

// Issue 18, defects 3 and 4, through the API: a retried request with its
// Idempotency-Key gets the send it created (200), another body with the
// key is refused (422); a second send of the issue to the list is 409
// already_sent naming the first, "again" sends it to the readers who have
// not had it; a list that does not exist is 422 unknown_list and records
// nothing.
func TestAPISendOnce(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	tok := e.apiToken()
	e.addActive("first@example.jp")
	if res := e.api(tok, "POST", "/api/v1/issues?name=aisi-monthly-2025-11.txt", string(readTestdata(t, "aisi-monthly-2025-11.txt")), nil); res.StatusCode != 201 {
		t.Fatalf("upload: %d", res.StatusCode)
	}
	var snd, again sendAnswer
	res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &snd, "Idempotency-Key", "req-1")
	if res.StatusCode != 201 || snd.ID == 0 || res.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("create: %d %+v", res.StatusCode, snd)
	}
	res = e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11", "list": "monthly"}`, &again, "Idempotency-Key", "req-1")
	if res.StatusCode != 200 || again.ID != snd.ID || res.Header.Get("Idempotent-Replayed") != "true" ||
		res.Header.Get("Location") != fmt.Sprintf("/api/v1/sends/%d", snd.ID) {
		t.Errorf("the same request again: %d %+v %v, want 200 with send %d", res.StatusCode, again, res.Header, snd.ID)
	}
	var ae apiErr
	res = e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11", "filter": {"regions": ["jp"], "topics": []}}`, &ae, "Idempotency-Key", "req-1")
	if res.StatusCode != 422 || ae.Error.Code != "idempotency_key_reused" || !strings.Contains(ae.Error.Message, fmt.Sprintf("send %d", snd.ID)) {
		t.Errorf("the key with another body: %d %+v", res.StatusCode, ae)
	}
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &ae, "Idempotency-Key", "two words"); res.StatusCode != 400 ||
		ae.Error.Message != "Idempotency-Key must be 1 to 255 visible ASCII characters" {
		t.Errorf("a malformed key: %d %+v", res.StatusCode, ae)
	}
	waitSend(t, e, snd.ID, queue.Done)

	var dup alreadySent
	res = e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11"}`, &dup)
	want := fmt.Sprintf(`issue "2025-11" was already sent to list "monthly" by send %d (done, created `, snd.ID)
	if res.StatusCode != 409 || dup.Error.Code != "already_sent" || !strings.HasPrefix(dup.Error.Message, want) ||
		!strings.HasSuffix(dup.Error.Message, `1 copies sent): "again": true sends it to the readers who have not had it`) ||
		dup.Error.EarlierSend.ID != snd.ID || dup.Error.EarlierSend.State != "done" || dup.Error.EarlierSend.Sent != 1 || dup.Error.EarlierSend.Running {
		t.Errorf("a second send: %d %+v", res.StatusCode, dup)
	}
	res = e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11", "list": "monthy", "again": true}`, &ae)
	if res.StatusCode != 422 || ae.Error.Code != "unknown_list" || ae.Error.Message != `list "monthy" does not exist` {
		t.Errorf("a send to an unknown list: %d %+v", res.StatusCode, ae)
	}

	e.addActive("second@example.jp")
	var snd2 sendAnswer
	if res := e.api(tok, "POST", "/api/v1/sends", `{"issue": "2025-11", "again": true}`, &snd2); res.StatusCode != 201 {
		t.Fatalf("again: %d %+v", res.StatusCode, snd2)
	}
	done := waitSend(t, e, snd2.ID, queue.Done)
	if c := done.Counts; c.Planned != 1 || c.Sent != 1 || c.AlreadyHad != 1 {
		t.Errorf("again: %+v, want 1 sent, 1 left out", c)
	}
	for _, a := range []string{"first@example.jp", "second@example.jp"} {
		if n := len(e.smtp.MessagesTo(a)); n != 1 {
			t.Errorf("%s got %d copies", a, n)
		}
	}
	var list struct{ Sends []sendAnswer }
	if e.api(tok, "GET", "/api/v1/sends?limit=10", "", &list); len(list.Sends) != 2 {
		t.Errorf("%d sends, want 2", len(list.Sends))
	}
}

// Issue 18, defect 3, in the console: a double click sends once (the
// form's key); the confirmation page names the earlier send and, once it
// is done, offers the box that sends to the readers who have not had it;
// without the box the send is refused (409) with the reason in Japanese
// and English; a list that does not exist is refused in Japanese.
func TestConsoleSendOnce(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("first@example.jp")
	e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	issuePath := "/admin/issues/2025-11"
	keyRE := regexp.MustCompile(`name="key" value="([0-9a-f]{32})"`)

	_, body := e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}})
	m := keyRE.FindStringSubmatch(body)
	if m == nil || strings.Contains(body, `id="earlier-sends"`) || strings.Contains(body, `id="again"`) {
		t.Fatalf("first confirmation page: no key, or an earlier send shown:\n%s", body)
	}
	form := url.Values{"csrf": {csrf}, "list": {testList}, "key": {m[1]}}
	// A double click: two posts of the same form at once.
	var (
		wg   sync.WaitGroup
		locs [2]string
	)
	for i := range locs {
		wg.Go(func() {
			res, _ := e.postForm(c, issuePath+"/send", form)
			if res.StatusCode == http.StatusSeeOther {
				locs[i] = res.Header.Get("Location")
			}
		})
	}
	wg.Wait()
	if locs[0] == "" || locs[0] != locs[1] {
		t.Fatalf("a double click: redirected to %q and %q, want the same send", locs[0], locs[1])
	}
	var id int64
	fmt.Sscanf(locs[0], "/admin/sends/%d", &id)
	waitSend(t, e, id, queue.Done)
	if list, _ := e.svc.List(e.ctx, 10); len(list) != 1 {
		t.Fatalf("%d sends after a double click, want 1", len(list))
	}
	if n := len(e.smtp.Messages()); n != 1 {
		t.Errorf("%d copies after a double click, want 1", n)
	}

	// The confirmation page now names send #1 and offers the box.
	_, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}})
	earlier := between(t, body, `id="earlier-sends"`, "</div>")
	if !strings.Contains(earlier, fmt.Sprintf("この号は、リスト「monthly」に配信 #%d（完了、", id)) || !strings.Contains(earlier, "1 通が届いています。") ||
		!strings.Contains(earlier, "もう一度送る場合は、下の「まだ受け取っていない読者にだけ送る」に印を付けてください。") ||
		!strings.Contains(body, `name="again" value="yes"`) {
		t.Errorf("confirmation page after a send:\n%s", earlier)
	}
	// The same in English, on the toggle.
	_, bodyEN := e.postForm(c, issuePath+"/plan?lang=en", url.Values{"csrf": {csrf}})
	if earlierEN := between(t, bodyEN, `id="earlier-sends"`, "</div>"); !strings.Contains(earlierEN,
		fmt.Sprintf("This issue went to list monthly in send #%d (done, ", id)) {
		t.Errorf("confirmation page in English after a send:\n%s", earlierEN)
	}
	e.do(c, "GET", issuePath+"?lang=ja", nil) // the console remembers the language: back to Japanese
	key := keyRE.FindStringSubmatch(body)[1]
	// Without the box: refused, nothing recorded.
	res, body := e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}, "key": {key}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(between(t, body, `id="again-refused"`, "</div>"),
		"この号はすでに送っているため、送りませんでした。もう一度送る場合は、「まだ受け取っていない読者にだけ送る」に印を付けてください。") {
		t.Errorf("a second send without the box: %d\n%s", res.StatusCode, body)
	}
	// With it: the new reader only.
	e.addActive("second@example.jp")
	res, _ = e.postForm(c, issuePath+"/send", url.Values{"csrf": {csrf}, "list": {testList}, "key": {key}, "again": {"yes"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") == locs[0] {
		t.Fatalf("send again: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	fmt.Sscanf(res.Header.Get("Location"), "/admin/sends/%d", &id)
	if c := waitSend(t, e, id, queue.Done).Counts; c.Sent != 1 || c.AlreadyHad != 1 {
		t.Errorf("send again: %+v", c)
	}
	if n := len(e.smtp.MessagesTo("first@example.jp")); n != 1 {
		t.Errorf("the first reader got %d copies", n)
	}

	// A list that does not exist.
	res, body = e.postForm(c, issuePath+"/plan", url.Values{"csrf": {csrf}, "list": {"monthy"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "リスト「monthy」はありません。リスト名を確かめてください。何も送っていません。") {
		t.Errorf("an unknown list: %d\n%s", res.StatusCode, body)
	}
}
