package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/queue"
)

// TestConsoleSendShowsRelayDown: while the workers report the relay
// unreachable, the page of a send still going says so, in Japanese (and
// in English on the toggle), without the relay's address or error text; once it is back,
// or for a finished send, it says nothing.
func TestConsoleSendShowsRelayDown(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.browser()
	csrf := e.login(c)
	e.upload(c, csrf, "aisi-monthly-2025-11.txt", readTestdata(t, "aisi-monthly-2025-11.txt"))
	list, _ := e.store.Issues(e.ctx)
	at := time.Now().Add(48 * time.Hour).In(time.FixedZone("JST", 9*3600)).Format("2006-01-02T15:04")
	res, _ := e.postForm(c, "/admin/issues/"+list[0].Slug+"/send", url.Values{"csrf": {csrf}, "at": {at}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("schedule: %d", res.StatusCode)
	}
	sendPath := res.Header.Get("Location")

	since := time.Date(2026, 2, 3, 3, 4, 0, 0, time.UTC) // 12:04 JST
	if err := e.svc.SetRelayState(e.ctx, queue.RelayState{Relay: "127.0.0.1:2525", Down: true, Since: since,
		Kind: "refused", Cause: "connection refused"}); err != nil {
		t.Fatal(err)
	}
	// Japanese first: ?lang=en keeps English for the session's later pages,
	// so the order matters (a map's order is random: this test failed
	// whenever the English page came first).
	for _, p := range []struct{ path, want string }{
		{sendPath, "2026-02-03 12:04 JST から接続できません（接続を拒否されています）"},
		{sendPath + "?lang=en", "unreachable since 2026-02-03 12:04 JST (connection refused)"},
	} {
		path, want := p.path, p.want
		_, body := e.do(c, "GET", path, nil)
		for _, want := range []string{`id="relay-down"`, want} {
			if !strings.Contains(body, want) {
				t.Errorf("%s with the relay down lacks %q", path, want)
			}
		}
		if strings.Contains(body, "127.0.0.1:2525") {
			t.Errorf("%s shows the relay's address", path)
		}
	}

	if err := e.svc.SetRelayState(e.ctx, queue.RelayState{Relay: "127.0.0.1:2525", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, body := e.do(c, "GET", sendPath, nil); strings.Contains(body, "relay-down") {
		t.Error("the send page says the relay is down after it came back")
	}
}
