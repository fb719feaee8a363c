package web_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// chromiumPath is Debian's headless Chromium; `make test` runs
// scripts/chromium.sh first, which installs it (and fonts-noto-cjk).
const chromiumPath = "/usr/bin/chromium"

// ScreenshotDirEnv names the directory the browser tests save their
// screenshots in (scripts/web-screenshots.sh sets docs/images); unset, they
// go to the test's temporary directory.
const screenshotDirEnv = "TAYORI_SCREENSHOTS"

// newBrowser starts headless Chromium for one test. It fails, never skips,
// when Chromium is missing.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): run scripts/chromium.sh (make test does) or apt-get install chromium fonts-noto-cjk", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "ja-JP"),
		chromedp.Flag("accept-lang", "ja-JP,ja"),
		chromedp.WindowSize(1200, 900),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1100, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shot saves a full-page PNG screenshot as web-NAME.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	writeShot(t, screenshotDir(t), name, png)
}

// screenshotDir is where screenshots go: TAYORI_SCREENSHOTS, else the
// test's temporary directory.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv(screenshotDirEnv); dir != "" {
		return dir
	}
	return t.TempDir()
}

func writeShot(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "web-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("browser at %s: %v\n%s", loc, err, html)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

var unsubURLRE = regexp.MustCompile(`<(https?://[^>]+/u/[^>]+)>`)

// A reader subscribes in the browser, the confirmation mail reaches the
// SMTP server, the reader opens its link and confirms, changes their
// preferences, gets a newsletter and unsubscribes through its
// List-Unsubscribe link.
func TestBrowserSubscriberJourney(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	ctx := newBrowser(t)
	const addr = "hanako.browser@example.jp"

	do(t, ctx, chromedp.Navigate(e.srv.URL+"/subscribe"), chromedp.WaitVisible(chromedp.CSS("#email")))
	shot(t, ctx, "subscribe")
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#email"), addr),
		chromedp.SendKeys(chromedp.CSS("#name"), "山田 花子"),
		chromedp.Click(chromedp.CSS(`input[name="consent"]`)),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".message.ok")),
	)
	if got := text(t, ctx, "h1"); !strings.Contains(got, "確認のメール") {
		t.Fatalf("after signup: %q", got)
	}
	shot(t, ctx, "subscribe-sent")
	if s := e.subscriber(addr); s.Status != subscribers.Pending || s.Name != "山田 花子" {
		t.Fatalf("after signup: %+v", s)
	}

	tok := e.confirmToken(addr, true)
	link := e.srv.URL + "/confirm/" + tok
	do(t, ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("form button.primary")))
	shot(t, ctx, "confirm")
	if s := e.subscriber(addr); s.Status != subscribers.Pending {
		t.Fatal("opening the confirm link changed the status")
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("form button.primary")), chromedp.WaitVisible(chromedp.CSS(".message.ok a.button")))
	shot(t, ctx, "confirmed")
	if s := e.subscriber(addr); s.Status != subscribers.Active {
		t.Fatalf("status %s after confirming", s.Status)
	}

	// Preferences: only Europe, only policy.
	do(t, ctx, chromedp.Click(chromedp.CSS(".message.ok a.button")), chromedp.WaitVisible(chromedp.CSS("#save")))
	for _, v := range []string{"jp", "us", "asia", "intl"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`input[name="region"][value="`+v+`"]`)))
	}
	for _, v := range []string{"activities", "reports"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`input[name="topic"][value="`+v+`"]`)))
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	shot(t, ctx, "preferences")
	if got := e.subscriber(addr).Prefs.Key(); got != "eu|policy" {
		t.Fatalf("prefs %q after saving, want eu|policy", got)
	}

	// A newsletter arrives; its List-Unsubscribe link unsubscribes.
	issue, err := compose.Load(filepath.Join("testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: issue, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	waitSend(t, e, snd.ID, queue.Done)
	msgs := e.smtp.MessagesTo(addr)
	if len(msgs) != 2 {
		t.Fatalf("%d messages to the reader, want confirmation + newsletter", len(msgs))
	}
	body := decodedBody(t, msgs[1].Raw)
	if strings.Contains(body, "【米国】") {
		t.Error("the newsletter contains the US section the reader deselected")
	}
	lu := header(t, msgs[1].Raw, "List-Unsubscribe")
	m := unsubURLRE.FindStringSubmatch(strings.Join(lu, ""))
	if m == nil {
		t.Fatalf("List-Unsubscribe %q", lu)
	}
	do(t, ctx, chromedp.Navigate(m[1]), chromedp.WaitVisible(chromedp.CSS("form button.primary")))
	shot(t, ctx, "unsubscribe")
	if s := e.subscriber(addr); s.Status != subscribers.Active {
		t.Fatal("opening the unsubscribe page unsubscribed")
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("form button.primary")), chromedp.WaitVisible(chromedp.CSS(".message.ok")))
	shot(t, ctx, "unsubscribed")
	if s := e.subscriber(addr); s.Status != subscribers.Unsubscribed {
		t.Fatalf("status %s after unsubscribing", s.Status)
	}
}

// An editor signs in, uploads an issue, previews a combination, test-sends,
// reviews the plan, sends to a small list and watches the progress reach
// 100% without reloading.
func TestBrowserEditorJourney(t *testing.T) {
	e := newEnv(t, envOpts{worker: true})
	ctx := newBrowser(t)
	if _, err := e.store.AddEditor(e.ctx, "hanako", editorPassword); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"r1@example.jp", "r2@example.jp", "r3@example.jp", "r4@example.jp"} {
		e.addActive(a)
	}
	if _, err := e.subs.Update(e.ctx, e.subscriber("r4@example.jp").ID, subscribers.Update{Prefs: ptr(prefsOf("eu", "policy"))}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/issues"), chromedp.WaitVisible(chromedp.CSS("#password")))
	shot(t, ctx, "admin-login")
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), "hanako"),
		chromedp.SendKeys(chromedp.CSS("#password"), editorPassword),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[type="file"]`)),
	)
	file, err := filepath.Abs(filepath.Join("testdata", "aisi-monthly-2025-11.txt"))
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.Click(chromedp.CSS(`form[enctype] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#lint-ok")),
	)
	// Preview Europe + policy only.
	for _, v := range []string{"jp", "us", "asia", "intl"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`#preview-form input[value="`+v+`"]`)))
	}
	for _, v := range []string{"activities", "reports"} {
		do(t, ctx, chromedp.Click(chromedp.CSS(`#preview-form input[value="`+v+`"]`)))
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#preview-form button")), chromedp.WaitVisible(chromedp.CSS("#text-preview")), chromedp.Sleep(300*time.Millisecond))
	preview := text(t, ctx, "#text-preview")
	if !strings.Contains(preview, "欧州") || strings.Contains(preview, "【米国】") {
		t.Errorf("EU/policy text preview:\n%s", preview)
	}
	shot(t, ctx, "admin-preview")

	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("#to"), "editor@example.jp"),
		chromedp.Click(chromedp.CSS("#test-form button")),
		chromedp.WaitVisible(chromedp.CSS("#test-sent")),
	)
	waitFor(t, 15*time.Second, func() bool { return len(e.smtp.MessagesTo("editor@example.jp")) == 1 })

	do(t, ctx, chromedp.Click(chromedp.CSS("#plan-form button")), chromedp.WaitVisible(chromedp.CSS("#send-now")))
	if got := text(t, ctx, "#plan-total"); got != "4" {
		t.Errorf("plan total %q, want 4", got)
	}
	shot(t, ctx, "admin-plan")
	do(t, ctx, chromedp.Click(chromedp.CSS("#send-now")), chromedp.WaitVisible(chromedp.CSS("#progress")))
	// admin.js polls and fills the figures in place; no reload.
	// Every copy is recorded (100%) a moment before the send is marked
	// done: wait for both.
	waitFor(t, 30*time.Second, func() bool {
		p, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-field="percent"]`)))
		if err != nil || p != "100" {
			return false
		}
		st, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("progress").dataset.state`))
		return err == nil && st == "done"
	})
	if got := text(t, ctx, `[data-field="sent"]`); got != "4" {
		t.Errorf("sent %q, want 4", got)
	}
	if got := text(t, ctx, `[data-field="state_label"]`); got != "完了" {
		t.Errorf("state %q", got)
	}
	// The page was drawn while sending; once done it offers no pause or
	// cancel.
	if shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#send-actions button")].filter(b => b.offsetParent !== null).length`)); err != nil || shown != 0 {
		t.Errorf("a finished send still shows %d buttons (pause, cancel): %v", shown, err)
	}
	shot(t, ctx, "admin-send")
	if n := len(e.smtp.Messages()); n != 5 {
		t.Errorf("%d messages in all, want 1 test + 4 newsletters", n)
	}
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/admin/subscribers/"+e.subscriber("r4@example.jp").PublicID), chromedp.WaitVisible(chromedp.CSS("#status")))
	shot(t, ctx, "admin-subscriber")
	do(t, ctx, chromedp.Navigate(e.srv.URL+"/archive"), chromedp.WaitVisible(chromedp.CSS("ul.issues")))
	shot(t, ctx, "archive")
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
