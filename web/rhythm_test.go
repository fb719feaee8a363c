package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/rhythm"
)

// rhythmRunner opens package rhythm on the test's database and queue; an
// issue is ready when the editors stored it under the month's slug.
func (e *env) rhythmRunner() *rhythm.Runner {
	e.t.Helper()
	st := store.Rhythm(e.sdb)
	load := func(ctx context.Context, slug string) (*compose.Issue, error) {
		is, err := e.store.Issue(ctx, slug)
		if err != nil {
			return nil, err
		}
		return is.Issue, nil
	}
	ready := func(ctx context.Context, slug string) (bool, error) {
		_, err := load(ctx, slug)
		return err == nil, nil
	}
	return rhythm.NewRunner(st, e.svc, ready, load, rhythm.Config{BaseURL: e.cfg.BaseURL, Now: e.clock.Now}, nil)
}

// TestRhythmConsole: the editor sets "the first Tuesday at 10:00" in
// Japanese, sees the next run with its issue not ready, skips that month
// and sees the run after; a bad time is refused naming the field.
func TestRhythmConsole(t *testing.T) {
	e := newEnv(t, envOpts{rhythm: true})
	c := e.browser()
	csrf := e.login(c)
	res, body := e.do(c, "GET", "/admin/rhythm", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "毎月の配信の予定") || !strings.Contains(body, `id="lang-toggle"`) {
		t.Fatalf("GET /admin/rhythm: %d\n%s", res.StatusCode, body)
	}
	if _, en := e.do(c, "GET", "/admin/rhythm?lang=en", nil); !strings.Contains(en, "Monthly schedule") {
		t.Error("no English page")
	}
	res, body = e.postForm(c, "/admin/rhythm?lang=ja", url.Values{"csrf": {csrf}, "list": {testList}, "enabled": {"on"},
		"nth": {"1"}, "weekday": {"2"}, "time": {"25:00"}, "remind_days": {"3"}, "remind_to": {"editor@example.jp"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="time-error"`) {
		t.Fatalf("bad time: %d", res.StatusCode)
	}
	res, _ = e.postForm(c, "/admin/rhythm", url.Values{"csrf": {csrf}, "list": {testList}, "enabled": {"on"},
		"nth": {"1"}, "weekday": {"2"}, "time": {"10:00"}, "remind_days": {"3"}, "remind_to": {"editor@example.jp"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	rule := rhythm.Rule{List: testList, Nth: 1, Weekday: time.Tuesday, Hour: 10}
	next := rule.Next(e.clock.Now())
	_, body = e.do(c, "GET", "/admin/rhythm", nil)
	want := next.In(tokyoZone(t)).Format("2006-01-02 15:04 MST")
	if !strings.Contains(body, `<b id="next-run">`+want+`</b>（火曜日）`) || !strings.Contains(body, "まだ準備できていません") {
		t.Fatalf("the page does not show the next run %s, not ready:\n%s", want, body)
	}
	res, _ = e.postForm(c, "/admin/rhythm/skip", url.Values{"csrf": {csrf}, "list": {testList}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("skip: %d", res.StatusCode)
	}
	after := rule.Next(next)
	_, body = e.do(c, "GET", res.Header.Get("Location"), nil)
	if !strings.Contains(body, after.In(tokyoZone(t)).Format("2006-01-02 15:04 MST")) || !strings.Contains(body, next.In(tokyoZone(t)).Format("2006-01")+" は配信を休みます") {
		t.Errorf("after skipping %s the page does not show %s:\n%s", next.Format("2006-01"), after, body)
	}
}
