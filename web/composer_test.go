package web_test

import (
	"bytes"
	"encoding/json"
	"html"
	"mime"
	"mime/multipart"
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

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
	"github.com/tayori-news/tayori/web"
)

// composerForm reads the named fields of the composer page (inputs,
// selects and textareas) as a browser would post them.
var (
	inputRE    = regexp.MustCompile(`<input type="(?:text|hidden)"[^>]*?name="([^"]+)"[^>]*?value="([^"]*)"`)
	inputRE2   = regexp.MustCompile(`<input type="(?:text|hidden)" id="[^"]*" name="([^"]+)"[^>]*? value="([^"]*)"`)
	textareaRE = regexp.MustCompile(`(?s)<textarea rows="3" id="[^"]*" name="([^"]+)"[^>]*>(.*?)</textarea>`)
	selectRE   = regexp.MustCompile(`(?s)<select id="[^"]*" name="([^"]+)"[^>]*>(.*?)</select>`)
	selectedRE = regexp.MustCompile(`<option value="([^"]*)" selected>`)
)

func composerForm(t testing.TB, page string) url.Values {
	t.Helper()
	// Only the composer form, not the templates for new sections.
	form := between(t, page, `<form id="composer"`, `</form>`)
	v := url.Values{}
	for _, re := range []*regexp.Regexp{inputRE, inputRE2} {
		for _, m := range re.FindAllStringSubmatch(form, -1) {
			if v.Has(m[1]) {
				continue
			}
			v.Set(m[1], html.UnescapeString(m[2]))
		}
	}
	for _, m := range textareaRE.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	for _, m := range selectRE.FindAllStringSubmatch(form, -1) {
		sel := ""
		if s := selectedRE.FindStringSubmatch(m[2]); s != nil {
			sel = html.UnescapeString(s[1])
		}
		v.Set(m[1], sel)
	}
	return v
}

// uploadMD posts a file to the issues list (creating or replacing).
func sampleIssue(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postJSON posts form values as the composer's script does and decodes
// the JSON answer.
func (e *env) postScript(c *http.Client, csrf, path string, v url.Values, out any) *http.Response {
	e.t.Helper()
	res, body := e.postForm(c, path, v, "X-CSRF-Token", csrf, "Accept", "application/json")
	if out != nil && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			e.t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
	return res
}

type saveAnswer struct {
	Revision int    `json:"revision"`
	Kind     string `json:"kind"`
	Valid    bool   `json:"valid"`
	Head     int    `json:"head"`
	Author   string `json:"author"`
	Login    string `json:"login"`
	Problems []struct {
		Field, Severity, Message, Text string
		Line                           int
	} `json:"problems"`
	Error struct{ Code, Message string } `json:"error"`
}

// newIssue starts an issue in the composer from pasted text.
func (e *env) newIssue(c *http.Client, csrf string, paste []byte, slug string) string {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	mw.WriteField("start", "paste")
	mw.WriteField("slug", slug)
	mw.WriteField("paste", string(paste))
	mw.Close()
	res, body := e.do(c, "POST", "/admin/issues/new", &buf, "Content-Type", mw.FormDataContentType())
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("new issue: %d\n%s", res.StatusCode, body)
	}
	return res.Header.Get("Location")
}

func TestComposerSaveLintPreview(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	loc := e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	if loc != "/admin/issues/2025-11/edit" {
		t.Fatalf("after new: %q", loc)
	}
	res, page := e.do(c, "GET", loc, nil)
	if res.StatusCode != 200 {
		t.Fatalf("composer: %d\n%s", res.StatusCode, page)
	}
	// The sample's ® URL is an error, shown next to its link field in
	// Japanese (the line `tayori compose check` prints on hover), and
	// focused.
	if !strings.Contains(page, `</span> URL に「®」があります。`) || !strings.Contains(page, `title="2025-11.md:`) ||
		!strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, " autofocus") {
		t.Errorf("the lint error is not next to its field in Japanese")
	}
	v := composerForm(t, page)
	if v.Get("base") != "1" || v.Get("s0.i0.headline") == "" || v.Get("title") != "AI政策動向マンスリー情報 2025年11月号" {
		t.Fatalf("form: base %q headline %q title %q", v.Get("base"), v.Get("s0.i0.headline"), v.Get("title"))
	}

	// Lint as the editor types: the same problems as `compose check`.
	var lint struct {
		Valid    bool
		Errors   int
		Problems []struct {
			Field, Text, Message string
			Japanese             string `json:"message_ja"`
		}
	}
	e.postScript(c, csrf, "/admin/issues/2025-11/lint", v, &lint)
	md := e.download(c, "/admin/issues/2025-11/download")
	parsed, err := compose.ParseMarkdown("2025-11.md", md)
	if err != nil {
		t.Fatal(err)
	}
	want := compose.Check(parsed)
	if len(lint.Problems) != len(want) || lint.Errors != 2 || !lint.Valid {
		t.Fatalf("lint %+v, want %v", lint, want)
	}
	for i, p := range want {
		if got := lint.Problems[i]; got.Text != p.String() || got.Field == "" || got.Message != p.Message || got.Japanese != p.Japanese || got.Japanese == "" {
			t.Errorf("problem %d: %+v, want %q (%s)", i, got, p.String(), p.Japanese)
		}
	}
	// On the English toggle the same problem reads as the CLI prints it.
	if _, en := e.do(c, "GET", loc+"?lang=en", nil); !strings.Contains(en, `</span> URL contains &#34;®&#34;`) {
		t.Errorf("the lint error is not in English on the English console")
	}
	e.do(c, "GET", loc+"?lang=ja", nil)
	// Fix the URL: the error is gone.
	var fixed string
	for k, vals := range v {
		if strings.HasSuffix(k, ".url") && strings.Contains(vals[0], "®") {
			fixed = k
			v.Set(k, strings.ReplaceAll(vals[0], "®", "&reg"))
		}
	}
	if fixed == "" {
		t.Fatal("no ® URL in the form")
	}
	e.postScript(c, csrf, "/admin/issues/2025-11/lint", v, &lint)
	if lint.Errors != 0 {
		t.Errorf("after the fix: %+v", lint)
	}

	// Autosave, then an explicit save: revisions 2 and 3 by hanako.
	v.Set("title", "AI政策動向マンスリー情報 2025年11月号（改）")
	var a saveAnswer
	if res := e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "autosave"), &a); res.StatusCode != 200 || a.Revision != 2 || a.Kind != "autosave" {
		t.Fatalf("autosave: %d %+v", res.StatusCode, a)
	}
	v.Set("base", "2")
	v.Set("s0.i0.body", "本文を書き直した。")
	if res := e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "save"), &a); res.StatusCode != 200 || a.Revision != 3 || a.Kind != "save" {
		t.Fatalf("save: %d %+v", res.StatusCode, a)
	}
	// The same form again: no new revision.
	v.Set("base", "3")
	if e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "autosave"), &a); a.Revision != 3 {
		t.Errorf("unchanged autosave made revision %d", a.Revision)
	}
	is := must[*webIssue](t)(e.storeIssue("2025-11"))
	if is.Title != "AI政策動向マンスリー情報 2025年11月号（改）" || is.Sections[0].Items[0].Body[0] != "本文を書き直した。" {
		t.Errorf("stored issue %q %q", is.Title, is.Sections[0].Items[0].Body)
	}

	// Preview of the draft for a reader of Europe and policy: the bytes of
	// the queue's copy.
	pv := cloneValues(v)
	pv["pv.region"] = []string{"eu"}
	pv["pv.topic"] = []string{"policy"}
	var p struct {
		OK       bool
		HTMLURL  string `json:"html_url"`
		Text     string
		Size     int
		HTMLSize int `json:"html_size"`
		Clip     string
		Nothing  bool
		Message  string
	}
	e.postScript(c, csrf, "/admin/issues/2025-11/preview", pv, &p)
	if !p.OK || p.HTMLURL == "" || !strings.Contains(p.Text, "【欧州】") || strings.Contains(p.Text, "【米国】") || p.Size <= p.HTMLSize || p.Clip != "" {
		t.Fatalf("preview: %+v", p)
	}
	res, frame := e.do(c, "GET", p.HTMLURL, nil)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "style-src 'unsafe-inline'") || len(frame) != p.HTMLSize {
		t.Errorf("preview frame: %d %q %d bytes, want %d", res.StatusCode, res.Header.Get("Content-Security-Policy"), len(frame), p.HTMLSize)
	}
	issue, _ := compose.ParseMarkdown("x.md", e.download(c, "/admin/issues/2025-11/download"))
	cp, err := e.svc.PreviewCopy(e.ctx, issue, testList, queue.PreviewReader{Prefs: prefsOf("eu", "policy"), Name: "山田 太郎"})
	if err != nil {
		t.Fatal(err)
	}
	if frame != string(cp.HTML) || p.Text != string(cp.Text) {
		t.Error("the composer's preview is not the queue's copy")
	}
	// A reader who gets nothing.
	pv["pv.region"] = []string{"asia"}
	pv["pv.topic"] = []string{"activities"}
	e.postScript(c, csrf, "/admin/issues/2025-11/preview", pv, &p)
	if !p.Nothing {
		t.Errorf("asia/activities: %+v", p)
	}
	// An unknown address is named, not an error page.
	pv.Set("pv.email", "nobody@example.jp")
	if res := e.postScript(c, csrf, "/admin/issues/2025-11/preview", pv, &p); res.StatusCode != 200 || p.OK || !strings.Contains(p.Message, "購読者はいません") {
		t.Errorf("unknown reader: %d %+v", res.StatusCode, p)
	}
}

func withAction(v url.Values, action string) url.Values {
	w := cloneValues(v)
	w.Set("action", action)
	return w
}

func cloneValues(v url.Values) url.Values {
	w := url.Values{}
	for k, vs := range v {
		w[k] = append([]string(nil), vs...)
	}
	return w
}

type webIssue = compose.Issue

func (e *env) storeIssue(slug string) (*compose.Issue, error) {
	is, err := e.store.Issue(e.ctx, slug)
	if err != nil {
		return nil, err
	}
	return is.Issue, nil
}

// download GETs a Markdown download.
func (e *env) download(c *http.Client, path string) []byte {
	e.t.Helper()
	res, body := e.do(c, "GET", path, nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/markdown") ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment;") {
		e.t.Fatalf("download %s: %d %q %q", path, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	return []byte(body)
}

// uploadTo posts a file to an issue's composer as a new revision.
func (e *env) uploadTo(c *http.Client, csrf, slug string, base int, name string, data []byte) (*http.Response, string) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	mw.WriteField("base", strconv.Itoa(base))
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	return e.do(c, "POST", "/admin/issues/"+slug+"/upload", &buf, "Content-Type", mw.FormDataContentType())
}

// loginAs signs a new browser in as another editor.
func (e *env) loginAs(name string) (*http.Client, string) {
	e.t.Helper()
	if _, err := e.store.AddEditor(e.ctx, name, editorPassword); err != nil && !strings.Contains(err.Error(), "exists") {
		e.t.Fatal(err)
	}
	c := e.browser()
	res, _ := e.postForm(c, "/admin/login", url.Values{"name": {name}, "password": {editorPassword}, "next": {"/admin/issues"}})
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login %s: %d", name, res.StatusCode)
	}
	_, body := e.do(c, "GET", "/admin/issues", nil)
	return c, csrfRE.FindStringSubmatch(body)[1]
}

func (e *env) composerValues(c *http.Client, slug string) url.Values {
	e.t.Helper()
	res, page := e.do(c, "GET", "/admin/issues/"+slug+"/edit", nil)
	if res.StatusCode != 200 {
		e.t.Fatalf("composer %s: %d", slug, res.StatusCode)
	}
	v := composerForm(e.t, page)
	v.Del("csrf")
	return v
}

// Every sample and fixture: started in the composer, edited and saved
// there, downloaded, uploaded and downloaded again: the same bytes, and
// the Markdown reads and writes back to itself.
func TestComposerRoundTrip(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	doc := string(must[[]byte](t)(os.ReadFile("../docs/issue-format.md")))
	_, rest, _ := strings.Cut(doc, "```markdown\n")
	example, _, _ := strings.Cut(rest, "```")
	sources := map[string][]byte{
		"2025-07":     sampleIssue(t, "aisi-monthly-2025-07.txt"),
		"2025-11":     sampleIssue(t, "aisi-monthly-2025-11.txt"),
		"fixture-07":  must[[]byte](t)(os.ReadFile("../compose/testdata/aisi-monthly-2025-07.md")),
		"fixture-11":  must[[]byte](t)(os.ReadFile("../compose/testdata/aisi-monthly-2025-11.md")),
		"format-docs": []byte(example),
	}
	for slug, src := range sources {
		t.Run(slug, func(t *testing.T) {
			e.newIssue(c, csrf, src, slug)
			v := e.composerValues(c, slug)
			v.Set("title", v.Get("title")+" 編集済み")
			v.Set("s0.i0.l0.label", "一つ目のリンク")
			v.Set("closing", "今月もお読みいただき、ありがとうございました。")
			var a saveAnswer
			if res := e.postScript(c, csrf, "/admin/issues/"+slug+"/edit", withAction(v, "save"), &a); res.StatusCode != 200 || a.Revision != 2 {
				t.Fatalf("save: %d %+v", res.StatusCode, a)
			}
			first := e.download(c, "/admin/issues/"+slug+"/download")
			if !bytes.Contains(first, []byte("- [一つ目のリンク](")) || !bytes.Contains(first, []byte("\n---\n\n今月もお読みいただき")) {
				t.Errorf("the label or the closing is not in the Markdown")
			}
			is, err := compose.ParseMarkdown(slug+".md", first)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			compose.WriteMarkdown(&again, is)
			if !bytes.Equal(again.Bytes(), first) {
				t.Error("the downloaded Markdown does not write back to itself")
			}
			if res, body := e.uploadTo(c, csrf, slug, 2, slug+".md", first); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("upload: %d\n%s", res.StatusCode, body)
			}
			second := e.download(c, "/admin/issues/"+slug+"/download")
			if !bytes.Equal(first, second) {
				t.Errorf("download → upload → download changed the bytes")
			}
			// Opening the composer on the uploaded revision and saving
			// without a change makes no revision.
			v = e.composerValues(c, slug)
			e.postScript(c, csrf, "/admin/issues/"+slug+"/edit", withAction(v, "save"), &a)
			if got := e.download(c, "/admin/issues/"+slug+"/download"); !bytes.Equal(got, first) {
				t.Error("saving the unchanged form changed the Markdown")
			}
		})
	}
}

// Two editors on one issue: the later save on the older revision is
// refused, never written over; the conflict page shows both versions and
// merges them, each place preset to whoever changed it.
func TestComposerConflict(t *testing.T) {
	e := newEnv(t, envOpts{})
	c1 := e.browser()
	csrf1 := e.login(c1)
	c2, csrf2 := e.loginAs("taro")
	e.newIssue(c1, csrf1, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	v1 := e.composerValues(c1, "2025-11")
	v2 := e.composerValues(c2, "2025-11")
	v1.Set("title", "十一月号（花子の題）")
	var a saveAnswer
	if e.postScript(c1, csrf1, "/admin/issues/2025-11/edit", withAction(v1, "save"), &a); a.Revision != 2 {
		t.Fatalf("hanako's save: %+v", a)
	}
	v2.Set("s1.i0.body", "太郎が書いた本文。")
	res := e.postScript(c2, csrf2, "/admin/issues/2025-11/edit", withAction(v2, "autosave"), &a)
	if res.StatusCode != http.StatusConflict || a.Head != 2 || a.Author != "hanako" || !strings.Contains(a.Error.Message, "hanako") {
		t.Fatalf("taro's stale autosave: %d %+v", res.StatusCode, a)
	}
	if is := must[*webIssue](t)(e.storeIssue("2025-11")); is.Title != "十一月号（花子の題）" {
		t.Fatalf("the stale save overwrote: %q", is.Title)
	}
	// Without script, the save shows the conflict page.
	w := cloneValues(v2)
	w.Set("csrf", csrf2)
	w.Set("action", "save")
	res, page := e.postForm(c2, "/admin/issues/2025-11/edit", w)
	if res.StatusCode != http.StatusConflict || !strings.Contains(page, `id="merge-form"`) || !strings.Contains(page, "hanako") {
		t.Fatalf("conflict page: %d\n%s", res.StatusCode, page)
	}
	if !strings.Contains(page, "十一月号（花子の題）") || !strings.Contains(page, "太郎が書いた本文。") {
		t.Error("the conflict page does not show both versions")
	}
	// Merge with the preset choices: both changes are kept.
	mf := url.Values{"csrf": {csrf2}}
	for _, name := range []string{"head", "mine"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(page)
		mf.Set(name, html.UnescapeString(m[1]))
	}
	for _, m := range regexp.MustCompile(`name="(take\d+)" value="(mine|theirs)" checked`).FindAllStringSubmatch(page, -1) {
		mf.Set(m[1], m[2])
	}
	res, _ = e.postForm(c2, "/admin/issues/2025-11/merge", mf)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("merge: %d", res.StatusCode)
	}
	is := must[*webIssue](t)(e.storeIssue("2025-11"))
	if is.Title != "十一月号（花子の題）" || is.Sections[1].Items[0].Body[0] != "太郎が書いた本文。" {
		t.Errorf("merged: title %q, body %q", is.Title, is.Sections[1].Items[0].Body)
	}
	head := must[*webRevision](t)(e.store.HeadRevision(e.ctx, "2025-11"))
	if head.Number != 3 || head.Kind != "merge" || head.Author != "taro" {
		t.Errorf("merge revision %+v", head)
	}
}

type webRevision = web.Revision

func TestComposerRevisionsDiffRestore(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	v := e.composerValues(c, "2025-11")
	orig := v.Get("s0.i0.headline")
	v.Set("s0.i0.headline", "書き換えた見出し")
	var a saveAnswer
	e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "save"), &a)
	_, page := e.do(c, "GET", "/admin/issues/2025-11/revisions", nil)
	for _, want := range []string{`id="rev-1"`, `id="rev-2"`, "新規作成", "保存", "hanako", "最新"} {
		if !strings.Contains(page, want) {
			t.Errorf("revisions page lacks %q", want)
		}
	}
	res, page := e.do(c, "GET", "/admin/issues/2025-11/diff?a=1&b=2", nil)
	if res.StatusCode != 200 || !strings.Contains(page, "書き換えた見出し") || !strings.Contains(page, html.EscapeString(orig)) ||
		!strings.Contains(page, `class="op del"`) || !strings.Contains(page, `class="op ins"`) {
		t.Fatalf("diff: %d", res.StatusCode)
	}
	if r1 := e.download(c, "/admin/issues/2025-11/revisions/1/download"); !bytes.Contains(r1, []byte(orig)) {
		t.Error("revision 1's download is not revision 1")
	}
	// Restore with a stale base is refused; with the head it is a new revision.
	if res, _ := e.postForm(c, "/admin/issues/2025-11/revisions/1/restore", url.Values{"csrf": {csrf}, "base": {"1"}}); res.StatusCode != http.StatusConflict {
		t.Errorf("stale restore: %d", res.StatusCode)
	}
	res, _ = e.postForm(c, "/admin/issues/2025-11/revisions/1/restore", url.Values{"csrf": {csrf}, "base": {"2"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", res.StatusCode)
	}
	head := must[*webRevision](t)(e.store.HeadRevision(e.ctx, "2025-11"))
	if head.Number != 3 || head.Kind != "restore" || head.Note != "第1版から復元" {
		t.Errorf("restored revision %+v", head)
	}
	if is := must[*webIssue](t)(e.storeIssue("2025-11")); is.Sections[0].Items[0].Headline != orig {
		t.Errorf("restored headline %q", is.Sections[0].Items[0].Headline)
	}
}

// After a send the issue is locked: a save is refused until the editor
// saves it as a correction, which the archive then shows, the sent
// version a link away.
func TestComposerLockAndCorrection(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	csrf := e.login(c)
	e.addActive("r1@example.jp")
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-07.txt"), "")
	res, _ := e.postForm(c, "/admin/issues/2025-07/send", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("send: %d", res.StatusCode)
	}
	var id int64
	fmtSscan(t, strings.TrimPrefix(res.Header.Get("Location"), "/admin/sends/"), &id)
	waitSend(t, e, id, queue.Done)

	v := e.composerValues(c, "2025-07")
	_, page := e.do(c, "GET", "/admin/issues/2025-07/edit", nil)
	if !strings.Contains(page, `id="locked"`) || !strings.Contains(page, `name="correction"`) {
		t.Fatal("the composer does not say the issue is locked")
	}
	old := v.Get("s0.i0.headline")
	v.Set("s0.i0.headline", "訂正した見出し")
	var a saveAnswer
	if res := e.postScript(c, csrf, "/admin/issues/2025-07/edit", withAction(v, "save"), &a); res.StatusCode != http.StatusConflict || a.Error.Code != "locked" {
		t.Fatalf("save on a sent issue: %d %+v", res.StatusCode, a)
	}
	v.Set("correction", "yes")
	v.Set("note", "見出しの誤記")
	if res := e.postScript(c, csrf, "/admin/issues/2025-07/edit", withAction(v, "save"), &a); res.StatusCode != 200 || a.Kind != "correction" {
		t.Fatalf("correction: %d %+v", res.StatusCode, a)
	}
	res, body := e.do(e.client(), "GET", "/archive/2025-07", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "訂正した見出し") || !strings.Contains(body, `id="correction"`) ||
		!strings.Contains(body, "見出しの誤記") || strings.Contains(body, old) {
		t.Errorf("archive after the correction: %d", res.StatusCode)
	}
	res, body = e.do(e.client(), "GET", "/archive/2025-07?v=sent", nil)
	if res.StatusCode != 200 || !strings.Contains(body, old) || strings.Contains(body, "訂正した見出し") {
		t.Errorf("the sent version: %d", res.StatusCode)
	}
	_, page = e.do(c, "GET", "/admin/issues/2025-07/revisions", nil)
	if !strings.Contains(page, "配信した版") || !strings.Contains(page, "訂正") {
		t.Error("the revisions page does not mark the sent revision and the correction")
	}
}

// A session that expires while the editor types: the work is kept on the
// server and saved, under their name, once they sign in again.
func TestComposerSessionExpiry(t *testing.T) {
	e := newEnv(t, envOpts{cfg: web.Config{SessionTTL: time.Hour}})
	c := e.browser()
	csrf := e.login(c)
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	v := e.composerValues(c, "2025-11")
	e.clock.Advance(2 * time.Hour)
	v.Set("s0.i0.body", "期限切れの後に書いた本文。")
	var a saveAnswer
	res := e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "autosave"), &a)
	if res.StatusCode != http.StatusUnauthorized || a.Login != "/admin/login?next=%2Fadmin%2Fissues%2F2025-11%2Fresume" {
		t.Fatalf("expired autosave: %d %+v", res.StatusCode, a)
	}
	// More typing, still signed out: the kept copy follows it.
	v.Set("s0.i0.body", "期限切れの後に書いた本文。続き。")
	e.postScript(c, csrf, "/admin/issues/2025-11/edit", withAction(v, "autosave"), &a)
	if n := must[int](t)(countRows(e, "web_pending")); n != 1 {
		t.Errorf("%d kept copies, want 1", n)
	}
	// Sign in again (the sign-in page says the work will be saved).
	_, page := e.do(c, "GET", "/admin/login?next=%2Fadmin%2Fissues%2F2025-11%2Fresume", nil)
	if !strings.Contains(page, `id="resume-note"`) {
		t.Error("the sign-in page does not say the work will be saved")
	}
	res, _ = e.postForm(c, "/admin/login", url.Values{"name": {"hanako"}, "password": {editorPassword}, "next": {"/admin/issues/2025-11/resume"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/issues/2025-11/resume" {
		t.Fatalf("login: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = e.do(c, "GET", "/admin/issues/2025-11/resume", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/issues/2025-11/edit?resumed=") {
		t.Fatalf("resume: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	head := must[*webRevision](t)(e.store.HeadRevision(e.ctx, "2025-11"))
	if head.Author != "hanako" || !bytes.Contains(head.Source, []byte("期限切れの後に書いた本文。続き。")) {
		t.Errorf("resumed revision %d by %q", head.Number, head.Author)
	}
	// Without script, the form's save goes to the sign-in page.
	e.clock.Advance(2 * time.Hour)
	w := cloneValues(v)
	w.Set("csrf", csrf)
	w.Set("base", strconv.Itoa(head.Number))
	res, _ = e.postForm(c, "/admin/issues/2025-11/edit", w)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/admin/login?next=") {
		t.Errorf("expired form save: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// A cross-site post keeps nothing.
	if res, _ := e.postForm(e.browser(), "/admin/issues/2025-11/edit", w, "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site post: %d", res.StatusCode)
	}
}

func countRows(e *env, table string) (int, error) {
	var n int
	err := e.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n)
	return n, err
}

// Without script: sections and items are added, moved and removed by the
// form's buttons, every change saved.
func TestComposerWithoutScript(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	res, body := e.postForm(c, "/admin/issues/new", url.Values{"csrf": {csrf}, "start": {"blank"}, "slug": {"2026-01"},
		"title": {"一月号"}, "newsletter": {"便り"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("new blank: %d\n%s", res.StatusCode, body)
	}
	post := func(v url.Values, op string) {
		t.Helper()
		w := cloneValues(v)
		w.Set("csrf", csrf)
		w.Set("op", op)
		if res, body := e.postForm(c, "/admin/issues/2026-01/edit", w); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", op, res.StatusCode, body)
		}
	}
	v := e.composerValues(c, "2026-01")
	post(v, "add-section")
	v = e.composerValues(c, "2026-01")
	v.Set("s0.heading", "国内AI政策動向")
	v.Set("s0.region", "jp")
	v.Set("s0.kind", "policy")
	v.Set("s0.i0.headline", "一つ目")
	v.Set("s0.i0.dates", "2026/01/05")
	post(v, "add-item:s0")
	v = e.composerValues(c, "2026-01")
	v.Set("s0.i1.headline", "二つ目")
	v.Set("s0.i1.dates", "(2026/01/06)")
	v.Set("s0.i1.l0.url", "https://www.soumu.go.jp/")
	v.Set("s0.i1.l0.label", "総務省")
	post(v, "up:s0.i1")
	is := must[*webIssue](t)(e.storeIssue("2026-01"))
	if len(is.Sections) != 1 || len(is.Sections[0].Items) != 2 || is.Sections[0].Items[0].Headline != "二つ目" ||
		is.Sections[0].Items[0].Dates.Text != "2026/01/06" || is.Sections[0].Items[0].LinkLabels[0] != "総務省" {
		t.Fatalf("after moving: %+v", is.Sections)
	}
	v = e.composerValues(c, "2026-01")
	post(v, "del:s0.i0")
	if is := must[*webIssue](t)(e.storeIssue("2026-01")); len(is.Sections[0].Items) != 1 || is.Sections[0].Items[0].Headline != "一つ目" {
		t.Fatalf("after deleting: %+v", is.Sections[0].Items)
	}
	// A bad date: saved as typed, shown next to its field and focused;
	// the issue that would be sent stays the last one that reads.
	v = e.composerValues(c, "2026-01")
	v.Set("s0.i0.dates", "2026/13/45")
	w := cloneValues(v)
	w.Set("csrf", csrf)
	w.Set("action", "save")
	res, _ = e.postForm(c, "/admin/issues/2026-01/edit", w)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	_, page := e.do(c, "GET", res.Header.Get("Location"), nil)
	field := between(t, page, `data-field="s0.i0.dates"`, `</div>`)
	if !strings.Contains(field, `value="2026/13/45"`) || !strings.Contains(field, `aria-invalid="true"`) || !strings.Contains(field, "autofocus") ||
		!strings.Contains(field, "2026/13/45") || !strings.Contains(field, "field-problems") {
		t.Errorf("the bad date is not shown as typed with its problem:\n%s", field)
	}
	st := must[web.IssueState](t)(e.store.IssueState(e.ctx, "2026-01"))
	if st.Head == st.Valid {
		t.Errorf("state %+v: the broken draft became the issue", st)
	}
	// "Save and preview" goes to the issue page, whose preview and send
	// say the newest revision must be fixed first.
	w.Set("action", "preview")
	w.Set("base", strconv.Itoa(st.Head))
	res, _ = e.postForm(c, "/admin/issues/2026-01/edit", w)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/issues/2026-01" {
		t.Fatalf("save and preview: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, page = e.do(c, "GET", "/admin/issues/2026-01", nil)
	if !strings.Contains(page, `id="head-invalid"`) || strings.Contains(page, `id="plan-form"`) {
		t.Error("the issue page offers to send an issue whose newest revision does not read")
	}
}

func TestComposerNewIssue(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	_, page := e.do(c, "GET", "/admin/issues/new", nil)
	if !strings.Contains(page, `value="2025-12"`) {
		t.Error("the new-issue page does not offer the next month")
	}
	res, _ := e.postForm(c, "/admin/issues/new", url.Values{"csrf": {csrf}, "start": {"previous"}, "from": {"2025-11"}, "slug": {"2025-12"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("from previous: %d", res.StatusCode)
	}
	prev := must[*webIssue](t)(e.storeIssue("2025-11"))
	is := must[*webIssue](t)(e.storeIssue("2025-12"))
	if is.Title != "AI政策動向マンスリー情報 2025年12月号" || len(is.Sections) != len(prev.Sections) || len(is.Intro) != len(prev.Intro) {
		t.Fatalf("from previous: %q, %d sections", is.Title, len(is.Sections))
	}
	for i, s := range is.Sections {
		if len(s.Items) != 0 || s.Region != prev.Sections[i].Region || s.Kind != prev.Sections[i].Kind || s.Group != prev.Sections[i].Group {
			t.Errorf("section %d: %+v", i, s)
		}
	}
	if h := is.Sections[0].Heading; !strings.Contains(h, "12月1日~12月31日") {
		t.Errorf("heading %q: the period did not move on", h)
	}
	// Problems stay next to their fields, the first focused.
	res, page = e.postForm(c, "/admin/issues/new", url.Values{"csrf": {csrf}, "start": {"previous"}, "from": {"2025-11"}, "slug": {"2025-12"}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(page, "2025-12 の号はすでにあります") ||
		!strings.Contains(between(t, page, `id="slug"`, `>`), "autofocus") {
		t.Errorf("existing slug: %d", res.StatusCode)
	}
	res, page = e.postForm(c, "/admin/issues/new", url.Values{"csrf": {csrf}, "start": {"paste"}, "paste": {"---\nslug: x\n---\n## 謎の節\n"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "pasted.md:4: unknown section heading") ||
		!strings.Contains(between(t, page, `id="paste"`, `>`), "autofocus") {
		t.Errorf("bad paste: %d", res.StatusCode)
	}
}

// The console speaks Japanese; ?lang=en switches to English and is
// remembered; errors never show codes or Go errors.
func TestConsoleLanguage(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	e.login(c)
	_, page := e.do(c, "GET", "/admin/issues", nil)
	if !strings.Contains(page, `<html lang="ja">`) || !strings.Contains(page, "号の一覧") || !strings.Contains(page, `href="?lang=en"`) {
		t.Error("the console is not Japanese with an English toggle")
	}
	e.do(c, "GET", "/admin/issues?lang=en", nil)
	_, page = e.do(c, "GET", "/admin/issues", nil)
	if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "Start a new issue") {
		t.Error("English is not remembered")
	}
	res, page := e.do(c, "GET", "/admin/issues/nope/edit?lang=ja", nil)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(page, "お探しのものが見つかりません") || strings.Contains(page, "not_found") || strings.Contains(page, `"nope"`) {
		t.Errorf("not found: %d\n%s", res.StatusCode, between(t, page, "<main>", "</main>"))
	}
}

// mailPart returns the decoded part of type mt of a message, with CRLF
// line ends turned into LF.
func mailPart(t testing.TB, raw []byte, want string) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("no %s part: %v", want, err)
		}
		if pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); pt == want {
			return strings.ReplaceAll(decodePart(t, p.Header.Get("Content-Transfer-Encoding"), p), "\r\n", "\n")
		}
	}
}

var tokenRE = regexp.MustCompile(`v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// tokenPurpose is the purpose of a token by the link it is in.
func tokenPurpose(tok, text string) token.Purpose {
	if strings.Contains(text, "/u/"+tok) {
		return token.Unsubscribe
	}
	return token.Preferences
}

// The preview of a subscriber's copy is the copy the worker sends them:
// the same HTML and text, byte for byte but for the second in which the
// tokens of their links were minted, and about the same size (Date and
// Message-ID differ).
func TestComposerPreviewIsTheSentCopy(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	c := e.browser()
	csrf := e.login(c)
	r := e.addActive("yomu@example.jp")
	if _, err := e.subs.Update(e.ctx, r.ID, subscribers.Update{Prefs: ptr(prefsOf("jp,eu", "policy,reports"))}); err != nil {
		t.Fatal(err)
	}
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-07.txt"), "")
	v := e.composerValues(c, "2025-07")
	v.Set("pv.email", "yomu@example.jp")
	var p struct {
		OK             bool
		HTMLURL        string `json:"html_url"`
		Text           string
		Size, HTMLSize int
		Reader         string
	}
	e.postScript(c, csrf, "/admin/issues/2025-07/preview", v, &p)
	if !p.OK || p.Reader != "yomu@example.jp" {
		t.Fatalf("preview: %+v", p)
	}
	_, previewHTML := e.do(c, "GET", p.HTMLURL, nil)
	e.clock.Advance(2 * time.Second) // the send's tokens are of a later second
	res, _ := e.postForm(c, "/admin/issues/2025-07/send", url.Values{"csrf": {csrf}, "list": {testList}})
	var id int64
	fmtSscan(t, strings.TrimPrefix(res.Header.Get("Location"), "/admin/sends/"), &id)
	waitSend(t, e, id, queue.Done)
	msgs := e.smtp.MessagesTo("yomu@example.jp")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	raw := msgs[0].Raw
	// The reader's links carry tokens minted when the copy is built, which
	// hold the second they were minted in: the same links, but a later
	// second gives other bytes. The preview's are the reader's own.
	toks := tokenRE.FindAllString(p.Text, -1)
	if len(toks) != 2 {
		t.Fatalf("%d tokens in the preview's text", len(toks))
	}
	for _, tok := range toks {
		sub, _, err := e.subs.VerifyToken(e.ctx, tok, tokenPurpose(tok, p.Text))
		if err != nil || sub.ID != r.ID {
			t.Errorf("preview link token: %v (subscriber %d, want %d)", err, sub.ID, r.ID)
		}
	}
	same := func(s string) string { return tokenRE.ReplaceAllString(strings.ReplaceAll(s, "\r\n", "\n"), "TOKEN") }
	if got := mailPart(t, raw, "text/html"); same(got) != same(previewHTML) {
		t.Error("the sent HTML is not the preview's")
	}
	if got := mailPart(t, raw, "text/plain"); same(got) != same(p.Text) {
		t.Errorf("the sent text is not the preview's:\n%s\n---\n%s", got, p.Text)
	}
	if d := len(raw) - p.Size; d < -200 || d > 200 {
		t.Errorf("sent %d bytes, preview said %d", len(raw), p.Size)
	}
}
