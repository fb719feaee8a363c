package web_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The web server with a queue worker behind it, started, used (a
// sign-up that the worker delivers, the console, /readyz, /metrics) and
// stopped, leaves no goroutine behind.
func TestWebStartStopLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Run("serve", func(t *testing.T) {
		e := newEnv(t, envOpts{worker: true})
		c := e.browser()
		e.login(c)
		if res, _ := e.postForm(e.client(), "/subscribe", signupForm("leak@example.jp")); res.StatusCode != http.StatusOK {
			t.Fatalf("subscribe: %d", res.StatusCode)
		}
		e.smtp.WaitFor(1, 15*time.Second)
		for _, p := range []string{"/readyz", "/admin/ops", "/admin/audit"} {
			if res, _ := e.do(c, "GET", p, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s: %d", p, res.StatusCode)
			}
		}
		e.postForm(c, "/admin/logout", url.Values{})
	})
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}
