package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
)

// TestClicksJourney: the editor turns counting on for the list in the
// console (Japanese first), an issue goes to two readers through the
// queue and the in-process SMTP server, links followed from their copies
// redirect to the item's URL and are counted (HEAD is not), forged and
// unknown tokens get the Japanese 404 page and no redirect, and the send
// page shows the counts per section and item with the privacy note.
func TestClicksJourney(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, webURL: true})
	c := e.browser()
	csrf := e.login(c)

	// The list settings form: off by default, Japanese first.
	_, page := e.do(c, "GET", "/admin/lists", nil)
	for _, want := range []string{"リストの設定", "記事リンクのクリック数を数える（集計のみ）", "どの読者がクリックしたかは記録しません", `id="count-clicks-monthly">`} {
		if !strings.Contains(page, want) {
			t.Errorf("/admin/lists lacks %q", want)
		}
	}
	if strings.Contains(page, `id="count-clicks-monthly" checked`) {
		t.Error("counting is on by default")
	}
	if _, en := e.do(c, "GET", "/admin/lists?lang=en", nil); !strings.Contains(en, "Count clicks on item links (aggregate only)") {
		t.Error("/admin/lists?lang=en is not in English")
	}
	e.do(c, "GET", "/admin/lists?lang=ja", nil) // back to Japanese (the toggle is kept in a cookie)
	if res, _ := e.postForm(c, "/admin/lists/monthly", url.Values{"csrf": {csrf}, "count_clicks": {"on"}, "nothing": {"bogus"}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad nothing-this-month choice: %d, want 400", res.StatusCode)
	}
	res, _ := e.postForm(c, "/admin/lists/monthly", url.Values{"csrf": {csrf}, "count_clicks": {"on"}, "nothing": {"skip"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving the list settings: %d", res.StatusCode)
	}
	if on, _ := e.subs.ListCountsClicks(e.ctx, testList); !on {
		t.Fatal("count_clicks not saved")
	}
	if skip, _ := e.subs.ListSkipsNothing(e.ctx, testList); !skip {
		t.Error("the nothing-this-month setting not saved from the same form")
	}
	if _, audit := e.do(c, "GET", "/admin/audit", nil); !strings.Contains(audit, "リスト設定の変更") || !strings.Contains(audit, "クリック数を数える（集計のみ）") {
		t.Error("the audit log lacks the change of list settings")
	}
	if res, _ := e.postForm(c, "/admin/lists/monthly", url.Values{"count_clicks": {"on"}, "nothing": {"send"}}); res.StatusCode == http.StatusSeeOther {
		t.Error("the form was taken without its CSRF token")
	}
	if err := e.subs.SetListSkipsNothing(e.ctx, testList, false); err != nil {
		t.Fatal(err)
	}

	is, err := compose.Parse("aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.addActive("clicker-a@example.jp"), e.addActive("clicker-b@example.jp")
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)

	linkRE := regexp.MustCompile(regexp.QuoteMeta(e.srv.URL) + `(/c/[A-Za-z0-9_-]+)`)
	var paths [2][]string
	for i, to := range []string{"clicker-a@example.jp", "clicker-b@example.jp"} {
		msgs := e.waitMessages(to, 1)
		text := decodedBody(t, msgs[0].Raw)
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			paths[i] = append(paths[i], m[1])
		}
		for _, sub := range []string{a.PublicID, b.PublicID} {
			if strings.Contains(strings.Join(paths[i], " "), sub) {
				t.Errorf("a counted link carries the public id %s", sub)
			}
		}
		if !strings.Contains(text, e.srv.URL+"/u/") || !strings.Contains(text, e.srv.URL+"/issues/") {
			t.Error("the unsubscribe or web-copy link is missing or rewritten")
		}
	}
	if len(paths[0]) < 3 || !slices.Equal(paths[0], paths[1]) {
		t.Fatalf("counted links %v and %v: want the same links in both copies", paths[0], paths[1])
	}
	links, err := e.clicks.SendLinks(e.ctx, snd.ID)
	if err != nil {
		t.Fatal(err)
	}

	reader := e.client() // no cookies, no redirects followed
	for i, p := range []string{paths[0][0], paths[1][0], paths[0][2]} {
		res, body := e.do(reader, "GET", p, nil)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("click %d: %d %s", i, res.StatusCode, body)
		}
		loc := res.Header.Get("Location")
		if !strings.HasPrefix(loc, "https://") || strings.HasPrefix(loc, e.srv.URL) {
			t.Errorf("click %d went to %q", i, loc)
		}
		if res.Header.Get("Set-Cookie") != "" {
			t.Errorf("the redirect sets a cookie: %q", res.Header.Get("Set-Cookie"))
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("the redirect may be cached: %q", res.Header.Get("Cache-Control"))
		}
	}
	if res, _ := e.do(reader, "HEAD", paths[0][1], nil); res.StatusCode != http.StatusNoContent || res.Header.Get("Location") != "" {
		t.Errorf("HEAD: %d %q, want 204 without a destination", res.StatusCode, res.Header.Get("Location"))
	}
	got, _ := e.clicks.SendLinks(e.ctx, snd.ID)
	for i, l := range got {
		want := int64(0)
		switch i {
		case 0:
			want = 2
		case 2:
			want = 1
		}
		if l.Clicks != want || l.URL != links[i].URL {
			t.Errorf("link %d (%s): %d clicks, want %d", i, l.URL, l.Clicks, want)
		}
	}

	// Forged, unknown and malformed tokens: the Japanese 404 page.
	tok := strings.TrimPrefix(paths[0][0], "/c/")
	forged := []byte(tok)
	if forged[5] == 'A' {
		forged[5] = 'B'
	} else {
		forged[5] = 'A'
	}
	unknown := strings.TrimPrefix(e.clicks.URL(clicks.Ref{SendID: snd.ID, Seq: 999}), e.srv.URL+"/c/")
	for _, p := range []string{"/c/" + string(forged), "/c/" + unknown, "/c/not-a-token", "/c/" + strings.Repeat("A", 200),
		"/c/" + tok + "/x", "/c/"} {
		res, body := e.do(reader, "GET", p, nil)
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Location") != "" {
			t.Errorf("GET %s: %d %q, want 404 and no redirect", p, res.StatusCode, res.Header.Get("Location"))
			continue
		}
		if !strings.Contains(body, "お探しのページは見つかりませんでした") || strings.Contains(body, "clicks:") || strings.Contains(body, "token") {
			t.Errorf("GET %s: not the public 404 page, or developer text:\n%s", p, body)
		}
	}
	if after, _ := e.clicks.SendLinks(e.ctx, snd.ID); after[0].Clicks != 2 {
		t.Errorf("bad tokens changed the count: %d", after[0].Clicks)
	}
	// A query string cannot choose the destination.
	if res, _ := e.do(reader, "GET", paths[0][0]+"?u=https://evil.example/&url=https://evil.example/", nil); res.StatusCode != http.StatusFound || res.Header.Get("Location") != got[0].URL {
		t.Errorf("with a query: %d %q, want 302 to %s", res.StatusCode, res.Header.Get("Location"), got[0].URL)
	}

	// The send page: counts per section and item, and the note.
	_, sp := e.do(c, "GET", "/admin/sends/"+itoa(snd.ID), nil)
	for _, want := range []string{"記事リンクのクリック数", "どの読者がクリックしたかは記録していません", `id="clicks-total">4<`,
		got[0].Headline, got[0].SectionTitle, got[0].URL} {
		if !strings.Contains(sp, want) {
			t.Errorf("the send page lacks %q", want)
		}
		if t.Failed() {
			t.Logf("send page:\n%s", sp)
			break
		}
	}
	if strings.Contains(sp, "clicker-a@example.jp") || strings.Contains(sp, a.PublicID) {
		t.Error("the clicks section names a reader")
	}
	if _, en := e.do(c, "GET", "/admin/sends/"+itoa(snd.ID)+"?lang=en", nil); !strings.Contains(en, "nothing records which reader clicked") {
		t.Error("the send page's note is not in English on the toggle")
	}

	// The API's send: the same aggregate counts, per section, item and
	// link, and nothing about readers.
	tok2 := e.apiToken()
	var raw json.RawMessage
	if res := e.api(tok2, "GET", "/api/v1/sends/"+itoa(snd.ID), "", &raw); res.StatusCode != 200 {
		t.Fatalf("GET /api/v1/sends/%d: %d", snd.ID, res.StatusCode)
	}
	var api struct {
		Clicks *struct {
			Total    int64 `json:"total"`
			Sections []struct {
				Title  string `json:"title"`
				Clicks int64  `json:"clicks"`
				Items  []struct {
					Headline string `json:"headline"`
					Clicks   int64  `json:"clicks"`
					Links    []struct {
						URL      string `json:"url"`
						Clicks   int64  `json:"clicks"`
						FirstDay string `json:"first_day"`
						LastDay  string `json:"last_day"`
					} `json:"links"`
				} `json:"items"`
			} `json:"sections"`
		} `json:"clicks"`
	}
	if err := json.Unmarshal(raw, &api); err != nil || api.Clicks == nil {
		t.Fatalf("the API's send has no clicks: %v\n%s", err, raw)
	}
	got, err = e.clicks.SendLinks(e.ctx, snd.ID) // with the click of the query-string check
	if err != nil {
		t.Fatal(err)
	}
	var n, sum int64
	for _, sec := range api.Clicks.Sections {
		var secSum int64
		for _, it := range sec.Items {
			var itSum int64
			for _, l := range it.Links {
				if l.URL != got[n].URL || l.Clicks != got[n].Clicks || it.Headline != got[n].Headline || sec.Title != got[n].SectionTitle {
					t.Errorf("API link %d: %q %q %q %d clicks; the store has %q %q %q %d", n, sec.Title, it.Headline, l.URL, l.Clicks,
						got[n].SectionTitle, got[n].Headline, got[n].URL, got[n].Clicks)
				}
				if (l.Clicks > 0) != (l.FirstDay != "" && l.LastDay >= l.FirstDay) {
					t.Errorf("API link %d: %d clicks, first day %q, last day %q", n, l.Clicks, l.FirstDay, l.LastDay)
				}
				itSum += l.Clicks
				n++
			}
			if it.Clicks != itSum {
				t.Errorf("item %q: %d clicks, its links add up to %d", it.Headline, it.Clicks, itSum)
			}
			secSum += it.Clicks
		}
		if sec.Clicks != secSum {
			t.Errorf("section %q: %d clicks, its items add up to %d", sec.Title, sec.Clicks, secSum)
		}
		sum += sec.Clicks
	}
	if n != int64(len(got)) || api.Clicks.Total != 4 || sum != 4 {
		t.Errorf("the API lists %d links of %d, total %d (sections add up to %d), want total 4", n, len(got), api.Clicks.Total, sum)
	}
	for _, leak := range []string{"clicker-a@example.jp", a.PublicID, b.PublicID, `"seq"`, "subscriber", "/c/"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the API's send shows %q:\n%s", leak, raw)
		}
	}
}

// TestClicksNotShownWhenOff: a send of a list that does not count clicks
// has no clicks section, and /c/ paths are unknown.
func TestClicksNotShownWhenOff(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	e.login(c)
	is := e.sendIssue()
	_ = is
	sends, err := e.svc.List(e.ctx, 1)
	if err != nil || len(sends) != 1 {
		t.Fatalf("sends: %v", err)
	}
	_, sp := e.do(c, "GET", "/admin/sends/"+itoa(sends[0].ID), nil)
	if strings.Contains(sp, "記事リンクのクリック数") || strings.Contains(sp, `id="clicks"`) {
		t.Error("a send without counting shows a clicks section")
	}
	var raw map[string]json.RawMessage
	if res := e.api(e.apiToken(), "GET", "/api/v1/sends/"+itoa(sends[0].ID), "", &raw); res.StatusCode != 200 || raw["send"] == nil {
		t.Fatalf("GET /api/v1/sends/%d: %d", sends[0].ID, res.StatusCode)
	}
	if _, ok := raw["clicks"]; ok {
		t.Errorf("the API's send of a list that does not count clicks has clicks: %s", raw["clicks"])
	}
	text := decodedBody(t, e.waitMessages("first-reader@example.jp", 1)[0].Raw)
	if strings.Contains(text, "/c/") {
		t.Error("a copy of a list that does not count clicks has a counting link")
	}
}
