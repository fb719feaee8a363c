package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkComposerLoad is five editors typing at once, each in the July
// issue (the larger sample) of their own: every round an editor changes a
// body, and the composer's script sends what it sends after a pause in the
// typing, the lint, the preview and the autosave. The preview endpoint's
// latencies are reported as p50-ms and p99-ms (target: p99 ≤ 150 ms), with
// the CPU time a round costs; b.N is the number of previews. `make
// bench-composer` runs it.
func BenchmarkComposerLoad(b *testing.B) {
	const editors = 5
	e := newEnv(b, envOpts{})
	july := sampleIssue(b, "aisi-monthly-2025-07.txt")
	type editor struct {
		c    *http.Client
		csrf string
		slug string
		v    url.Values
	}
	eds := make([]*editor, editors)
	for i := range eds {
		c, csrf := e.loginAs(fmt.Sprintf("editor%d", i))
		slug := fmt.Sprintf("2025-07-%d", i)
		e.newIssue(c, csrf, july, slug)
		eds[i] = &editor{c: c, csrf: csrf, slug: slug, v: e.composerValues(c, slug)}
	}
	var mu sync.Mutex
	var lat []time.Duration
	work := make(chan int, b.N)
	for i := range b.N {
		work <- i
	}
	close(work)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, ed := range eds {
		wg.Go(func() {
			base := "/admin/issues/" + ed.slug
			for i := range work {
				ed.v.Set("s1.i0.body", fmt.Sprintf("本文を書いている途中 %d。", i))
				var lint struct{ Valid bool }
				if res := e.postScript(ed.c, ed.csrf, base+"/lint", ed.v, &lint); res.StatusCode != 200 || !lint.Valid {
					b.Errorf("lint: %d", res.StatusCode)
					return
				}
				pv := cloneValues(ed.v)
				pv["pv.region"] = []string{"jp", "eu"}
				pv["pv.topic"] = []string{"policy", "reports"}
				var p struct{ OK bool }
				start := time.Now()
				res := e.postScript(ed.c, ed.csrf, base+"/preview", pv, &p)
				d := time.Since(start)
				if res.StatusCode != 200 || !p.OK {
					b.Errorf("preview: %d %+v", res.StatusCode, p)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				var a saveAnswer
				if res := e.postScript(ed.c, ed.csrf, base+"/edit", withAction(ed.v, "autosave"), &a); res.StatusCode != 200 {
					b.Errorf("autosave: %d %+v", res.StatusCode, a)
					return
				}
				ed.v.Set("base", fmt.Sprint(a.Revision))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	// The process's CPU time per round (lint, preview and autosave, the
	// server's work and the test client's): what the machine's load does
	// not change.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/round")
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
