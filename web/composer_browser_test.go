package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/tayori-news/tayori/subscribers"
)

// js evaluates a script expression in the page.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// liveText reads the text of the element with the given id as the page
// has it now ("" while there is none): for polling an element the page's
// script re-renders, where a node id taken a moment before may be gone.
func liveText(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return js[string](t, ctx, `(document.getElementById(`+strconv.Quote(id)+`) || {}).textContent || ""`)
}

// evalJS runs a script in the page as a step.
func evalJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](`(() => { `+expr+`; return null })()`)(ctx, t)
		return err
	})
}

// selectValue chooses an option as a person would (the change event
// fires).
func selectValue(name, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.querySelector('#composer [name=%q]');
			el.value = %q; el.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, name, value))(ctx, t)
		return err
	})
}

// field is the composer field named name.
func field(name string) chromedp.CSS { return chromedp.CSS(`#composer [name="` + name + `"]`) }

// typeIn types text at the end of a field through key events.
func typeIn(name, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(field(name), text)
}

// clearField empties a field as select-all and delete would.
func clearField(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.querySelector('#composer [name=%q]');
			el.value = ""; el.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, name))(ctx, t)
		return err
	})
}

// headRevision is the number of the newest revision of slug.
func (e *env) headRevision(slug string) int {
	e.t.Helper()
	r, err := e.store.HeadRevision(e.ctx, slug)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Number
}

// An editor composes a complete issue in the browser: three sections, five
// items with links, one lint error shown and fixed, Japanese typed through
// the input method, items reordered by keys and by drag; previews two
// readers, saves, reopens, restores a revision, merges a conflict with a
// second editor, test-sends and sends. Then the console on a 390 px phone.
func TestBrowserComposerJourney(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	ctx := newBrowser(t)
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"r1@example.jp", "r2@example.jp", "r3@example.jp"} {
		e.addActive(a)
	}
	jp := e.addActive("kokunai@example.jp")
	if _, err := e.subs.Update(e.ctx, jp.ID, subscribers.Update{Prefs: ptr(prefsOf("jp", "policy"))}); err != nil {
		t.Fatal(err)
	}
	const slug = "2025-12"
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues"), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#name"), "hanako"),
		chromedp.SendKeys(chromedp.CSS("#password"), editorPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#new-issue")),
		chromedp.Click(chromedp.CSS("#new-issue")),
		chromedp.WaitVisible(chromedp.CSS("#start-blank")),
		chromedp.Click(chromedp.CSS("#start-blank")),
		chromedp.SetValue(chromedp.CSS("#slug"), slug),
		chromedp.SendKeys(chromedp.CSS("#title"), "AI政策動向マンスリー情報 2025年12月号"),
		chromedp.SendKeys(chromedp.CSS("#newsletter"), "AI政策動向マンスリー情報"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
	)

	// Three sections, five items, links.
	do(t, ctx, typeIn("intro", "AIセーフティに関する国内外の主な動きをお届けします。"),
		typeIn("period", "12月1日~12月31日"),
		chromedp.Click(chromedp.CSS("#add-section")), chromedp.Click(chromedp.CSS("#add-section")), chromedp.Click(chromedp.CSS("#add-section")))
	sections := []struct{ heading, region, kind string }{
		{"国内AI政策動向(12月1日~12月31日)", "jp", "policy"},
		{"【欧州】(12月1日~12月31日)", "eu", "policy"},
		{"海外の主要なAI関連レポート等(12月1日~12月31日)", "intl", "reports"},
	}
	for i, s := range sections {
		p := fmt.Sprintf("s%d.", i)
		do(t, ctx, typeIn(p+"heading", s.heading), selectValue(p+"region", s.region), selectValue(p+"kind", s.kind))
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(`#sec-0 button[data-op="add-item"]`)), chromedp.Click(chromedp.CSS(`#sec-1 button[data-op="add-item"]`)))
	items := []struct{ name, dates, headline, body, url, label string }{
		{"s0.i0", "2025/12/02", "総務省、AIセキュリティ分科会の第6回会合を開催", "総務省は第6回会合を開催した。", "https://www.soumu.go.jp/main_sosiki/kenkyu/ai_security.html", "総務省の開催案内"},
		{"s0.i1", "2025/12/10", "内閣府、AI基本計画の骨子案を公表", "骨子案への意見を募集している。", "https://www8.cao.go.jp/cstp/ai/index.html", ""},
		{"s1.i0", "2025/12/03", "欧州委員会、AI法の実施ガイドラインを公表", "汎用AIモデルの義務を説明している。", "https://digital-strategy.ec.europa.eu/en/policies/ai-act", "欧州委員会の発表"},
		{"s1.i1", "2025/12/15", "英国AISI、評価報告書を公開", "", "https://www.aisi.gov.uk/work", ""},
		{"s2.i0", "2025/12/20", "OECD、AIインシデント報告の共通枠組みを公表", "加盟国の報告様式をそろえる。", "htp://oecd.ai/en/incidents", ""},
	}
	for _, it := range items {
		steps := []chromedp.Action[chromedp.Void]{typeIn(it.name+".dates", it.dates), typeIn(it.name+".headline", it.headline),
			typeIn(it.name+".l0.url", it.url)}
		if it.body != "" {
			steps = append(steps, typeIn(it.name+".body", it.body))
		}
		if it.label != "" {
			steps = append(steps, typeIn(it.name+".l0.label", it.label))
		}
		do(t, ctx, steps...)
	}
	// The lint error is shown next to its field, in Japanese, with the
	// CLI's line on hover.
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#f-s2-i0-l0-url-problems")))
	if got := text(t, ctx, "#f-s2-i0-l0-url-problems"); !strings.Contains(got, `URL は http か https で始めてください: htp://oecd.ai/en/incidents`) {
		t.Errorf("lint next to the field: %q", got)
	}
	if got := js[string](t, ctx, `document.querySelector("#f-s2-i0-l0-url-problems li").title`); !strings.Contains(got, `URL "htp://oecd.ai/en/incidents" is not http or https`) {
		t.Errorf("the CLI's line on hover: %q", got)
	}
	if inv := js[string](t, ctx, `document.querySelector('[name="s2.i0.l0.url"]').getAttribute("aria-invalid")`); inv != "true" {
		t.Errorf("aria-invalid %q", inv)
	}
	do(t, ctx, clearField("s2.i0.l0.url"), typeIn("s2.i0.l0.url", "https://oecd.ai/en/incidents"))
	waitFor(t, 10*time.Second, func() bool {
		return js[bool](t, ctx, `!document.getElementById("f-s2-i0-l0-url-problems")`)
	})

	// Reorder by keys: the second item's ↑ button, pressed with Enter.
	do(t, ctx, chromedp.Focus(chromedp.CSS(`#item-0-1 button[data-op="up"]`)), chromedp.KeyEvent("\r"))
	if got := js[string](t, ctx, `document.querySelector('[name="s0.i0.headline"]').value`); got != items[1].headline {
		t.Fatalf("after ↑: first item %q", got)
	}
	if got := js[string](t, ctx, `document.activeElement.closest("[data-item]").id`); got != "item-0-0" {
		t.Errorf("focus after ↑ on %q, want the moved item's button", got)
	}
	// Reorder by drag: the European section's second item onto the top of
	// its list.
	drag(t, ctx, "#item-1-1 .item-handle", "#item-1-0 .item-handle")
	if got := js[string](t, ctx, `document.querySelector('[name="s1.i0.headline"]').value`); got != items[3].headline {
		t.Errorf("after the drag: first European item %q", got)
	}

	// Japanese through the input method: nothing is saved, linted or
	// redrawn while the composition is open.
	waitFor(t, 15*time.Second, func() bool { return js[string](t, ctx, `document.getElementById("status").textContent`) != "" })
	time.Sleep(2500 * time.Millisecond) // let the autosave of the typing above finish
	before := e.headRevision(slug)
	do(t, ctx, chromedp.Focus(field("s1.i1.body")), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(() => { const el = document.activeElement; window.__imeField = el;
			el.setSelectionRange(el.value.length, el.value.length); return true })()`)(ctx, tg)
		return err
	}))
	ime := func(s string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			n := int64(len([]rune(s)))
			_, err := cdp.Call(ctx, tg, input.ImeSetComposition, input.ImeSetCompositionParams{Text: s, SelectionStart: n, SelectionEnd: n})
			return err
		})
	}
	do(t, ctx, ime("ひょうか"), ime("ひょうかほうこく"))
	time.Sleep(3 * time.Second) // longer than the autosave's wait
	if got := e.headRevision(slug); got != before {
		t.Errorf("a revision was saved during the composition (%d → %d)", before, got)
	}
	if same := js[bool](t, ctx, `document.activeElement === window.__imeField && document.activeElement.value.endsWith("ひょうかほうこく")`); !same {
		t.Error("the field was disturbed during the composition")
	}
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: "評価報告"})
		return err
	}))
	// The drag put the item with the body on the guidelines second.
	wantBody := items[2].body + "評価報告"
	if got := js[string](t, ctx, `document.querySelector('[name="s1.i1.body"]').value`); got != wantBody {
		t.Errorf("after the composition: %q", got)
	}
	waitFor(t, 15*time.Second, func() bool {
		r, err := e.store.HeadRevision(e.ctx, slug)
		return err == nil && bytes.Contains(r.Source, []byte("評価報告"))
	})
	if same := js[bool](t, ctx, `document.activeElement === window.__imeField`); !same {
		t.Error("the focused field was replaced after the save")
	}

	// Preview two readers: Europe and policy by checkboxes, then a real
	// subscriber by address.
	for _, v := range []string{"jp", "us", "asia", "intl"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`#preview-reader input[name="pv.region"][value="`+v+`"]`)))
	}
	for _, v := range []string{"activities", "reports"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`#preview-reader input[name="pv.topic"][value="`+v+`"]`)))
	}
	waitFor(t, 10*time.Second, func() bool {
		s := js[string](t, ctx, `document.getElementById("preview-text").textContent`)
		return strings.Contains(s, "【欧州】") && !strings.Contains(s, "国内AI政策動向")
	})
	if got := text(t, ctx, "#preview-size"); !strings.Contains(got, "KB") {
		t.Errorf("preview size %q", got)
	}
	time.Sleep(500 * time.Millisecond) // the frame loads
	do(t, ctx, evalJS(`document.getElementById("sec-1").scrollIntoView()`))
	shotView(t, ctx, "composer")
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#pv-email"), "kokunai@example.jp"))
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(js[string](t, ctx, `document.getElementById("preview-reader-label").textContent`), "kokunai@example.jp")
	})
	if s := js[string](t, ctx, `document.getElementById("preview-text").textContent`); !strings.Contains(s, "国内AI政策動向") || strings.Contains(s, "【欧州】") {
		t.Errorf("the subscriber's copy:\n%s", s)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#tab-text")), chromedp.WaitVisible(chromedp.CSS("#preview-text")),
		evalJS(`document.getElementById("preview-size").scrollIntoView()`))
	shotView(t, ctx, "composer-preview")
	do(t, ctx, chromedp.Click(chromedp.CSS("#tab-html")))

	// Save, reopen.
	do(t, ctx, chromedp.Click(chromedp.CSS("#save")))
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(liveText(t, ctx, "status"), "保存しました") })
	saved := e.headRevision(slug)
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues/"+slug+"/edit"), chromedp.WaitVisible(chromedp.CSS("#composer")))
	if got := js[string](t, ctx, `document.querySelector('[name="s1.i1.body"]').value`); got != wantBody {
		t.Errorf("reopened: %q", got)
	}
	if got := js[string](t, ctx, `document.querySelector('[name="s0.i0.l0.label"]').value`); got != "" {
		t.Errorf("reopened: the moved item's label %q", got)
	}

	// Restore the revision before the last.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues/"+slug+"/revisions"), chromedp.WaitVisible(chromedp.CSS("#revisions")))
	shot(t, ctx, "composer-revisions")
	do(t, ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf("#restore-%d-button", saved-1))), chromedp.WaitVisible(chromedp.CSS("#notice")))
	if r := must[*webRevision](t)(e.store.HeadRevision(e.ctx, slug)); r.Kind != "restore" || r.Number != saved+1 {
		t.Errorf("after restore: %+v", r)
	}

	// A second editor saves meanwhile; this editor's next autosave is
	// refused and the two versions are merged.
	c2, csrf2 := e.loginAs("taro")
	v := e.composerValues(c2, slug)
	v.Set("title", "AI政策動向マンスリー情報 2025年12月号（確定）")
	var a saveAnswer
	if e.postScript(c2, csrf2, "/admin/issues/"+slug+"/edit", withAction(v, "save"), &a); a.Revision != saved+2 {
		t.Fatalf("taro's save: %+v", a)
	}
	do(t, ctx, typeIn("s0.i1.body", "花子が追記した。"))
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS("#resolve-conflict")))
	do(t, ctx, chromedp.Click(chromedp.CSS("#resolve-conflict")), chromedp.WaitVisible(chromedp.CSS("#merge-form")))
	shot(t, ctx, "composer-conflict")
	do(t, ctx, chromedp.Click(chromedp.CSS("#merge")), chromedp.WaitVisible(chromedp.CSS("#composer")))
	merged := must[*webRevision](t)(e.store.HeadRevision(e.ctx, slug))
	if merged.Kind != "merge" || !bytes.Contains(merged.Source, []byte("（確定）")) || !bytes.Contains(merged.Source, []byte("花子が追記した。")) {
		t.Fatalf("merged revision %d (%s):\n%s", merged.Number, merged.Kind, merged.Source)
	}

	// Test send, then send.
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues/"+slug), chromedp.WaitVisible(chromedp.CSS("#to")),
		chromedp.SendKeys(chromedp.CSS("#to"), "editor@example.jp"),
		chromedp.Click(chromedp.CSS("#test-form button")), chromedp.WaitVisible(chromedp.CSS("#test-sent")))
	waitFor(t, 15*time.Second, func() bool { return len(e.smtp.MessagesTo("editor@example.jp")) == 1 })
	do(t, ctx, chromedp.Click(chromedp.CSS("#plan-form button")), chromedp.WaitVisible(chromedp.CSS("#send-now")))
	if got := text(t, ctx, "#plan-total"); got != "4" {
		t.Errorf("plan total %q", got)
	}
	if labels := js[string](t, ctx, `[...document.querySelectorAll(".variant-label")].map(e => e.textContent).join("|")`); !strings.Contains(labels, "日本 / 政策動向") {
		t.Errorf("variant labels %q", labels)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#send-now")), chromedp.WaitVisible(chromedp.CSS("#progress")))
	waitFor(t, 30*time.Second, func() bool {
		return js[string](t, ctx, `document.getElementById("progress").dataset.state`) == "done"
	})
	if shown := js[int](t, ctx, `[...document.querySelectorAll("#send-actions button")].filter(b => b.offsetParent !== null).length`); shown != 0 {
		t.Errorf("a finished send still shows %d buttons (pause, cancel)", shown)
	}
	if got := text(t, ctx, "#state-help"); !strings.Contains(got, "すべての読者") {
		t.Errorf("state help %q", got)
	}
	sendURL := js[string](t, ctx, `location.pathname`)

	// The console on a 390 px phone: no sideways scrolling.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
	for _, path := range []string{"/admin/issues", "/admin/issues/" + slug, "/admin/issues/" + slug + "/edit", "/admin/issues/" + slug + "/revisions", sendURL, "/admin/sends"} {
		do(t, ctx, chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("main")), chromedp.Sleep(200*time.Millisecond))
		if w := js[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s is %d px wide on a 390 px phone", path, w)
		}
		if path == "/admin/issues/"+slug+"/edit" {
			shotView(t, ctx, "composer-phone")
		}
	}
}

// drag drags the element from onto the element to with the mouse, in
// steps, as SortableJS expects.
func drag(t *testing.T, ctx context.Context, from, to string) {
	t.Helper()
	xy0 := js[[]float64](t, ctx, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.scrollIntoView({block: "center"});
		const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] })()`, from))
	x0, y0 := xy0[0], xy0[1]
	xy := js[[]float64](t, ctx, fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] })()`, to))
	x1, y1 := xy[0], xy[1]-4
	held := func(p *input.DispatchMouseEventParams) { p.Button, p.Buttons = input.MouseButtonLeft, 1 }
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0, y0),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y0, held, chromedp.ClickCount(1)),
		chromedp.Sleep(50 * time.Millisecond),
	}
	for i := 1; i <= 12; i++ {
		f := float64(i) / 12
		steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0+(x1-x0)*f, y0+(y1-y0)*f, held),
			chromedp.Sleep(40*time.Millisecond))
	}
	steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x1, y1, held, chromedp.ClickCount(1)), chromedp.Sleep(400*time.Millisecond))
	do(t, ctx, steps...)
}

// shotView saves a screenshot of the window as web-NAME.png.
func shotView(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	writeShot(t, screenshotDir(t), name, png)
}

// Without script the composer is plain forms: a field changed and saved,
// the page shown again with it. With script, typing while the server is
// down (restarting) is kept in the browser and saved once it is back, and
// typing the server never got is offered again when the page is opened.
func TestBrowserComposerFallbacks(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := newBrowser(t)
	c := e.browser()
	csrf := e.login(c)
	e.newIssue(c, csrf, sampleIssue(t, "aisi-monthly-2025-11.txt"), "")
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues/2025-11/edit"), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#name"), "hanako"),
		chromedp.SendKeys(chromedp.CSS("#password"), editorPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#composer")),
		chromedp.SendKeys(field("title"), "（改）"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if is := must[*webIssue](t)(e.storeIssue("2025-11")); !strings.Contains(is.Title, "（改）") {
		t.Errorf("after the save without script: %q", is.Title)
	}
	// "Save and preview" shows the issue page's preview.
	do(t, ctx, chromedp.Click(chromedp.CSS("#preview-nojs")), chromedp.WaitVisible(chromedp.CSS("#text-preview")))

	// With script: the server goes down while the editor types.
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		return err
	}), chromedp.Navigate(e.srv.URL+"/admin/issues/2025-11/edit"), chromedp.WaitVisible(chromedp.CSS("#composer")))
	waitFor(t, 10*time.Second, func() bool { return liveText(t, ctx, "preview-size") != "" })
	var down http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	})
	e.active.Store(&down)
	do(t, ctx, typeIn("s0.i0.body", "サーバーが止まっている間に書いた。"))
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(liveText(t, ctx, "status"), "サーバーに接続できません")
	})
	if kept := js[string](t, ctx, `localStorage.getItem("tayori:draft:2025-11") || ""`); !strings.Contains(kept, url.QueryEscape("サーバーが止まっている間に書いた。")) {
		t.Errorf("the browser does not keep the typing: %q", kept)
	}
	e.restartWeb()
	waitFor(t, 20*time.Second, func() bool {
		r, err := e.store.HeadRevision(e.ctx, "2025-11")
		return err == nil && bytes.Contains(r.Source, []byte("サーバーが止まっている間に書いた。"))
	})
	waitFor(t, 5*time.Second, func() bool { return js[bool](t, ctx, `localStorage.getItem("tayori:draft:2025-11") === null`) })

	// Typing left in the browser (closed before it reached the server) is
	// offered when the composer opens again.
	form := js[string](t, ctx, `(() => { const f = new FormData(document.getElementById("composer")); f.delete("csrf"); f.delete("base");
		f.set("s0.i0.headline", "ブラウザに残っていた見出し"); return new URLSearchParams(f).toString() })()`)
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues"), chromedp.WaitVisible(chromedp.CSS("#issues")),
		evalJS(fmt.Sprintf(`localStorage.setItem("tayori:draft:2025-11", JSON.stringify({base: "0", form: %q, at: Date.now()}))`, form)),
		chromedp.Navigate(e.srv.URL+"/admin/issues/2025-11/edit"),
		chromedp.WaitVisible(chromedp.CSS("#restore-local")), chromedp.Click(chromedp.CSS("#restore-local-yes")))
	if got := js[string](t, ctx, `document.querySelector('[name="s0.i0.headline"]').value`); got != "ブラウザに残っていた見出し" {
		t.Errorf("restored field %q", got)
	}
	waitFor(t, 15*time.Second, func() bool {
		is, err := e.storeIssue("2025-11")
		return err == nil && is.Sections[0].Items[0].Headline == "ブラウザに残っていた見出し"
	})
}
