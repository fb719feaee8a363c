package web_test

import (
	"bytes"
	"encoding/json"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
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
	// The sample's ® URL is an error, shown next to its link field with
	// the wording of `tayori compose check`, and focused.
	if !strings.Contains(page, `URL contains &#34;®&#34;`) || !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, " autofocus") {
		t.Errorf("the lint error is not next to its field")
	}
	v := composerForm(t, page)
	if v.Get("base") != "1" || v.Get("s0.i0.headline") == "" || v.Get("title") != "AI政策動向マンスリー情報 2025年11月号" {
		t.Fatalf("form: base %q headline %q title %q", v.Get("base"), v.Get("s0.i0.headline"), v.Get("title"))
	}

	// Lint as the editor types: the same problems as `compose check`.
	var lint struct {
		Valid    bool
		Errors   int
		Problems []struct{ Field, Text string }
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
		if lint.Problems[i].Text != p.String() || lint.Problems[i].Field == "" {
			t.Errorf("problem %d: %+v, want %q", i, lint.Problems[i], p.String())
		}
	}
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
