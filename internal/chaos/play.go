package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// step is one thing the timeline does at an offset from the send.
type step struct {
	at   time.Duration
	name string
	do   func(ctx context.Context) string // returns the detail to record
	// follow marks a step that ends or follows up a fault (a restart,
	// the relay back, the disk freed, a resume): left out without voiding
	// the run when the send has finished.
	follow bool
}

// timeline turns the configuration into steps in time order.
func (r *run) timeline() []step {
	var steps []step
	add := func(at time.Duration, name string, do func(ctx context.Context) string) {
		steps = append(steps, step{at: at, name: name, do: do})
	}
	follow := func(at time.Duration, name string, do func(ctx context.Context) string) {
		steps = append(steps, step{at: at, name: name, do: do, follow: true})
	}
	for i, at := range r.cfg.Kills {
		n := i + 1
		add(at, fmt.Sprintf("SIGKILL a worker (kill %d)", n), func(ctx context.Context) string { return r.kill(n, i%2) })
		follow(at+r.cfg.RestartAfter, "start the killed worker again", func(ctx context.Context) string {
			if len(r.killed) == 0 {
				return "nothing to start"
			}
			w := r.killed[0]
			r.killed = r.killed[1:]
			if err := w.start(); err != nil {
				return "failed: " + err.Error()
			}
			return fmt.Sprintf("%s: pid %d", w.name, w.pid())
		})
	}
	if r.cfg.RedisRestartAt > 0 {
		add(r.cfg.RedisRestartAt, "restart Redis with its data", func(ctx context.Context) string {
			if err := r.redis.restart(ctx, r.cfg.RedisDown); err != nil {
				return "failed: " + err.Error()
			}
			return fmt.Sprintf("SIGTERM (AOF written), down %v, started on its AOF", r.cfg.RedisDown)
		})
	}
	if r.cfg.RedisEmptyAt > 0 {
		add(r.cfg.RedisEmptyAt, "replace Redis by an empty one", func(ctx context.Context) string {
			if err := r.redis.replace(ctx); err != nil {
				return "failed: " + err.Error()
			}
			r.emptied = time.Now()
			return fmt.Sprintf("SIGKILL, an empty redis-server on the same port (%s)", r.redis.cur)
		})
		if r.cfg.ResumeAfter > 0 {
			follow(r.cfg.RedisEmptyAt+r.cfg.ResumeAfter, "tayori send resume, if the send is stuck", r.resumeIfStuck)
		}
	}
	if r.cfg.RelayDownAt > 0 {
		add(r.cfg.RelayDownAt, "take the relay down", func(ctx context.Context) string {
			o := &outageRecord{At: time.Now(), Open: map[int]bool{}}
			for _, id := range r.relay.srv.OpenConnectionIDs() {
				o.Open[id] = true
			}
			r.relay.srv.Refuse()
			r.outage = o
			return fmt.Sprintf("connections refused for %v; %d open connections dropped", r.cfg.RelayDownFor, len(o.Open))
		})
		follow(r.cfg.RelayDownAt+r.cfg.RelayDownFor, "bring the relay back", func(ctx context.Context) string {
			if err := r.relay.srv.Restore(); err != nil {
				return "failed: " + err.Error()
			}
			return "listening again on " + r.relay.srv.Addr()
		})
	}
	if r.cfg.DiskFullAt > 0 {
		var fill string
		add(r.cfg.DiskFullAt, "fill the data disk", func(ctx context.Context) string {
			r.diskFull = time.Now()
			path, n, err := fillDisk(r.data)
			fill = path
			if err != nil {
				return fmt.Sprintf("wrote %d MiB, then: %v", n>>20, err)
			}
			return fmt.Sprintf("wrote %.1f MiB; %d bytes free", float64(n)/(1<<20), freeSpace(r.data))
		})
		follow(r.cfg.DiskFullAt+r.cfg.DiskFullFor, "free the data disk", func(ctx context.Context) string {
			if fill == "" {
				return "nothing to free"
			}
			if err := os.Remove(fill); err != nil {
				return "failed: " + err.Error()
			}
			r.diskFreed = time.Now()
			return fmt.Sprintf("%.1f MiB free", float64(freeSpace(r.data))/(1<<20))
		})
	}
	if r.cfg.Unsubscribes > 0 {
		rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x0b5))
		waves := len(r.cfg.UnsubAt)
		for i, at := range r.cfg.UnsubAt {
			n := r.cfg.Unsubscribes / waves
			if i < r.cfg.Unsubscribes%waves {
				n++
			}
			add(at, fmt.Sprintf("one-click unsubscribe %d readers", n), func(ctx context.Context) string { return r.unsubscribe(ctx, n, rng) })
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	return steps
}

// play plays the timeline while a monitor follows the send, then waits
// for the send to finish, stall or time out.
func (r *run) play(ctx context.Context) {
	mctx, stop := context.WithCancel(ctx)
	monitored := make(chan struct{})
	go func() { defer close(monitored); r.monitor(mctx) }()
	defer func() { stop(); <-monitored }()

	steps := r.timeline()
	for i, s := range steps {
		sleep(ctx, time.Until(r.t0.Add(s.at)))
		if ctx.Err() != nil {
			return
		}
		if r.finished() {
			for _, s := range steps[i:] {
				if !s.follow {
					r.skipped = append(r.skipped, fmt.Sprintf("%s at %v", s.name, s.at))
				}
			}
			if len(r.skipped) > 0 {
				r.logf("the send finished before %d of the faults: not played", len(r.skipped))
			}
			break
		}
		r.logf("%s", s.name)
		at := time.Since(r.t0)
		detail := s.do(ctx)
		r.faults = append(r.faults, faultRecord{At: at, Fault: s.name, Detail: detail})
		r.logf("  %s", detail)
	}
	lastFault := time.Now()
	for ctx.Err() == nil {
		r.mu.Lock()
		doneAt, lastMove := r.doneAt, r.lastMove
		r.mu.Unlock()
		switch {
		case !doneAt.IsZero() && time.Since(doneAt) >= r.cfg.Settle:
			return
		case time.Since(r.t0) > r.cfg.Timeout:
			r.logf("timed out after %v", r.cfg.Timeout)
			return
		case doneAt.IsZero() && time.Since(lastFault) > r.cfg.Stall && time.Since(lastMove) > r.cfg.Stall:
			r.logf("stalled: no copy accepted for %v since the last fault", r.cfg.Stall)
			return
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// finalState reports whether a send in state st will not move any more:
// done, cancelled, or failed (a state a send that cannot go on may get).
func finalState(st string) bool { return st == "done" || st == "cancelled" || st == "failed" }

// finished reports whether the store says the send is over.
func (r *run) finished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.doneAt.IsZero()
}

// monitor follows the relay's count and the send's state, and logs the
// progress every 10 s.
func (r *run) monitor(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastLog := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := len(r.relay.srv.Messages())
		st, err := r.led.state(ctx, r.sendID)
		r.mu.Lock()
		if n != r.accepted {
			r.accepted, r.lastMove = n, time.Now()
		}
		if err == nil {
			r.state = st
			if finalState(st) && r.doneAt.IsZero() {
				r.doneAt = time.Now()
			}
		}
		r.mu.Unlock()
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			if err != nil {
				st = "? (" + err.Error() + ")"
			}
			r.logf("relay accepted %d copies (dry run: %d readers); send %d %s", n, r.dryRun, r.sendID, st)
		}
	}
}

// kill kills a worker with SIGKILL while it is sending: the preferred
// one (the two take turns) if it has connections to the relay, else the
// other if it has, waiting up to 10 s for one of them to connect. The
// connections are read from /proc just before the kill.
func (r *run) kill(n int, prefer int) string {
	start := time.Now()
	var w *proc
	var pid int
	var ports map[int]bool
	var lastErr error
	for w == nil {
		for _, i := range []int{prefer, 1 - prefer} {
			cand := r.workers[i]
			p := cand.pid()
			if p == 0 {
				continue
			}
			ps, err := relayPorts(p, r.relay.srv.Port())
			if err != nil {
				lastErr = err
				continue
			}
			if len(ps) > 0 {
				w, pid, ports = cand, p, ps
				break
			}
		}
		if w == nil && time.Since(start) > 10*time.Second {
			w = r.workers[prefer]
			if pid = w.pid(); pid == 0 {
				return fmt.Sprintf("neither worker had a connection to the relay for 10 s (%v) and %s is not running: nothing killed", lastErr, w.name)
			}
			break
		}
		if w == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	k := &killRecord{N: n, Worker: w.name, Pid: pid, Ports: ports}
	k.At = time.Now()
	w.kill()
	r.kills = append(r.kills, k)
	r.killed = append(r.killed, w)
	waited := ""
	if d := k.At.Sub(start); d > 100*time.Millisecond {
		waited = fmt.Sprintf(", after waiting %.1f s for a worker to connect", d.Seconds())
	}
	return fmt.Sprintf("%s (pid %d) killed with %d connections to the relay (local ports %s)%s", w.name, pid, len(ports), portList(ports), waited)
}

func portList(ports map[int]bool) string {
	ps := make([]int, 0, len(ports))
	for p := range ports {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

// unsubscribe unsubscribes n readers who have had no copy yet, by one-click
// POST to the web server with the token the product mints. The readers
// are drawn from the batches being sent right now (claimed by a worker
// and not done: their readers have been read for sending), and if those
// are too few, from the lowest ids the send has still to reach (planning
// goes by id, so their batches come next).
func (r *run) unsubscribe(ctx context.Context, n int, rng *rand.Rand) string {
	ds, err := r.led.deliveries(ctx, r.sendID)
	if err != nil {
		return "failed: " + err.Error()
	}
	running, err := r.led.runningBatches(ctx, r.sendID)
	if err != nil {
		r.logf("  %v: drawing from the lowest ids only", err)
	}
	got := map[string]bool{}
	for _, m := range r.relay.srv.Messages() {
		for _, to := range m.To {
			got[strings.ToLower(to)] = true
		}
	}
	done := map[int64]bool{}
	for _, u := range r.unsubs {
		done[u.ID] = true
	}
	var hot, rest []int64
	for id, d := range ds {
		a := r.addrs[id]
		if !d.open() || got[a] || r.relay.refuses(a) || done[id] {
			continue
		}
		if running[d.batch] {
			hot = append(hot, id)
		} else {
			rest = append(rest, id)
		}
	}
	slices.Sort(hot)
	slices.Sort(rest)
	rng.Shuffle(len(hot), func(i, j int) { hot[i], hot[j] = hot[j], hot[i] })
	rest = rest[:min(len(rest), max(4*n, 200))]
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	fromRunning := min(n, len(hot))
	cand := append(hot[:fromRunning], rest[:min(n-fromRunning, len(rest))]...)
	ok := 0
	for _, id := range cand {
		u := r.postUnsubscribe(ctx, id)
		if u.Status == http.StatusOK {
			ok++
		}
		r.unsubs = append(r.unsubs, u)
	}
	return fmt.Sprintf("%d readers without a copy yet (%d in batches being sent) unsubscribed; answered 200: %d",
		len(cand), fromRunning, ok)
}

// postUnsubscribe is one reader's RFC 8058 one-click POST.
func (r *run) postUnsubscribe(ctx context.Context, id int64) unsubRecord {
	u := unsubRecord{ID: id, Addr: r.addrs[id]}
	sub, err := r.store.Get(ctx, id)
	if err != nil {
		u.Err = err.Error()
		return u
	}
	tok, err := r.store.UnsubscribeToken(sub.PublicID, listKey)
	if err != nil {
		u.Err = err.Error()
		return u
	}
	body := url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, "POST", r.httpBase+"/u/"+tok, strings.NewReader(body))
	if err != nil {
		u.Err = err.Error()
		return u
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	u.Posted = time.Now()
	res, err := http.DefaultClient.Do(req)
	u.Answered = time.Now()
	if err != nil {
		u.Err = err.Error()
		return u
	}
	res.Body.Close()
	u.Status = res.StatusCode
	return u
}

// resumeIfStuck runs the documented recovery command, `tayori send resume
// ID`, when the send has not moved since Redis was replaced by an empty
// one (no copy accepted in the last 15 s): the issue allows the worker to
// notice by itself within a minute or the command to recover the send.
// The detail says which happened.
func (r *run) resumeIfStuck(ctx context.Context) string {
	r.mu.Lock()
	lastMove, accepted := r.lastMove, r.accepted
	r.mu.Unlock()
	if time.Since(lastMove) < 15*time.Second && lastMove.After(r.emptied) {
		r.resumed = "not needed: the workers went on by themselves"
		return fmt.Sprintf("not run: copies are being accepted (%d so far, the last %.1f s ago)", accepted, time.Since(lastMove).Seconds())
	}
	out, err := r.tayori(ctx, "send", "resume", strconv.FormatInt(r.sendID, 10))
	if err != nil {
		r.resumed = "failed: " + firstLine(err.Error())
		return "failed: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	r.resumed = "run: " + strings.TrimSpace(out)
	return "run: " + strings.TrimSpace(out)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
