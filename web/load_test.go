package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/web"
)

// LoadEnv turns on TestLoad: TAYORI_LOAD=N runs N requests per endpoint.
const loadEnv = "TAYORI_LOAD"

// TestLoad is a bounded load test of the subscribe and one-click
// unsubscribe endpoints over loopback: a fixed number of requests from 16
// concurrent clients, each phase cut off after 2 minutes. It reports the
// throughput and latency percentiles (the README's figures) and checks
// that every request succeeded. Figures: TAYORI_LOAD=2000 go test -v -run TestLoad ./web
func TestLoad(t *testing.T) {
	// A small load always runs (every request must succeed under
	// concurrency); TAYORI_LOAD=N scales it up for the figures.
	n, _ := strconv.Atoi(os.Getenv(loadEnv))
	if n <= 0 {
		n = 200
	}
	e := newEnv(t, envOpts{cfg: web.Config{SignupPerIP: 1 << 30, ConfirmPerAddress: 10}})
	const workers = 16
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	phase := func(name string, req func(i int) (*http.Request, error)) {
		lat := make([]time.Duration, n)
		var failed sync.Map
		next := make(chan int)
		deadline := time.Now().Add(2 * time.Minute)
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for i := range next {
					r, err := req(i)
					if err != nil {
						failed.Store(i, err.Error())
						continue
					}
					t0 := time.Now()
					res, err := c.Do(r)
					lat[i] = time.Since(t0)
					if err != nil {
						failed.Store(i, err.Error())
						continue
					}
					res.Body.Close()
					if res.StatusCode != 200 {
						failed.Store(i, res.Status)
					}
				}
			})
		}
		sent := 0
		for i := 0; i < n && time.Now().Before(deadline); i++ {
			next <- i
			sent++
		}
		close(next)
		wg.Wait()
		elapsed := time.Since(start)
		nf := 0
		failed.Range(func(k, v any) bool {
			if nf < 3 {
				t.Errorf("%s request %v: %v", name, k, v)
			}
			nf++
			return true
		})
		if sent < n {
			t.Errorf("%s: only %d of %d requests within the time limit", name, sent, n)
		}
		lat = lat[:sent]
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
		line := fmt.Sprintf("%-22s %6d requests  %3d failed  %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms",
			name, sent, nf, float64(sent)/elapsed.Seconds(), ms(pct(0.50)), ms(pct(0.99)), ms(lat[len(lat)-1]))
		t.Log(line)
		fmt.Println(line)
	}

	phase("POST /subscribe", func(i int) (*http.Request, error) {
		v := signupForm(fmt.Sprintf("load%06d@example.jp", i))
		r, err := http.NewRequest("POST", e.srv.URL+"/subscribe", strings.NewReader(v.Encode()))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return r, err
	})
	if q := len(e.queuedMessages()); q != n {
		t.Errorf("%d confirmation mails queued, want %d", q, n)
	}

	toks := make([]string, n)
	for i := range n {
		s := e.addActive(fmt.Sprintf("reader%06d@example.jp", i))
		toks[i] = must[string](t)(e.subs.UnsubscribeToken(s.PublicID, testList))
	}
	body := url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()
	phase("POST /u/{token}", func(i int) (*http.Request, error) {
		r, err := http.NewRequest("POST", e.srv.URL+"/u/"+toks[i], strings.NewReader(body))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return r, err
	})
	for i := 0; i < n; i += max(1, n/20) {
		if s := e.subscriber(fmt.Sprintf("reader%06d@example.jp", i)); s.Sendable(testList) {
			t.Errorf("reader %d still subscribed", i)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
