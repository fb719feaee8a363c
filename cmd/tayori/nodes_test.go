package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/chaos"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/web"
)

var (
	nodesReaders = flag.Int("nodes.readers", 20000, "TestSeveralNodes: readers the issue is sent to")
	nodesEngine  = flag.String("nodes.engine", "postgres", "TestSeveralNodes: the shared store, postgres or sqlite (one shared file)")
)

// TestSeveralNodes is issue 19's several-nodes test: one `tayori serve`
// and two `tayori worker` processes built from this tree, each with a
// data directory of its own, sharing only Redis and the store
// (PostgreSQL; -nodes.engine=sqlite shares one SQLite file instead). An
// issue goes to -nodes.readers readers; a quarter of the way in one
// worker is SIGKILLed and started again, half way the web server is
// SIGKILLed and started again. Every reader gets one copy, except copies
// in flight at the kill (counted: a second copy is allowed only to a
// reader whose first the relay accepted on one of the killed worker's
// connections in the 30 s before the kill); the console's counts (the API, over
// HTTP) are the relay's; signups while the web server is down fail with
// a refused connection (nothing half done), and every signup after its
// restart is kept and gets its confirmation mail.
func TestSeveralNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	repo, err := chaos.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := chaos.Build(ctx, repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := *nodesReaders
	var dsn string
	for _, e := range testutil.Engines() {
		if string(e.Name) == *nodesEngine {
			dsn = e.URL(t)
		}
	}
	if dsn == "" {
		t.Fatalf("-nodes.engine=%s: want postgres or sqlite", *nodesEngine)
	}
	relay := testutil.StartSMTP(t, testutil.WithoutBodies())
	_, rdbN := testutil.RedisDBNumber(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	base := "http://" + httpAddr
	work := t.TempDir()
	shared := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + work,
		"TAYORI_DB=" + dsn,
		"TAYORI_REDIS_URL=" + testutil.RedisDBURL(t, rdbN),
		"TAYORI_SMTP_URL=" + relay.URL(),
		"TAYORI_SECRET=nodes:0123456789abcdef0123456789abcdef",
		"TAYORI_BASE_URL=" + base,
		"TAYORI_HTTP_ADDR=" + httpAddr,
		"TAYORI_FROM=AI政策動向 <newsletter@nodes.example.jp>",
		"TAYORI_POSTAL_ADDRESS=東京都港区六本木1-1-1",
		"TAYORI_CONTACT=https://nodes.example.jp/contact",
		"TAYORI_TRUST_PROXY=true", // signups come from many addresses (X-Forwarded-For)
		// About 40 s of sending, so that the kills fall inside it.
		"TAYORI_RATE=" + strconv.Itoa(max(n/40, 20)),
		"TAYORI_SHUTDOWN_TIMEOUT=5s",
		"TAYORI_LOG_LEVEL=info",
	}
	// Each process has its own data directory, as on its own machine.
	envOf := func(name string) []string {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return append(append([]string(nil), shared...), "TAYORI_DATA_DIR="+dir)
	}
	cliEnv := envOf("cli")
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = cliEnv
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("tayori %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}

	// The store, the readers, the issue and an editor's API token.
	cli("", "init")
	csvPath := filepath.Join(work, "readers.csv")
	writeAllRegionsReaders(t, csvPath, n)
	t.Logf("import: %s", strings.TrimSpace(cli("", "subscribers", "import", csvPath, "--list", "monthly")))
	issue := filepath.Join(work, "2025-11.md")
	cli("", "compose", "import", filepath.Join(repo, "testdata", "aisi-monthly-2025-11.txt"), "-o", issue)
	md, err := os.ReadFile(issue)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(issue, bytes.ReplaceAll(md, []byte("®="), []byte("&reg=")), 0o644); err != nil {
		t.Fatal(err)
	}
	cli("correct horse battery staple\n", "editors", "add", "hanako")
	apiToken := strings.TrimSpace(cli("", "editors", "token", "hanako"))

	serve := &nodeProc{t: t, name: "serve", bin: bin, args: []string{"serve"}, env: envOf("serve"), dir: work}
	workers := []*nodeProc{
		{t: t, name: "worker-1", bin: bin, args: []string{"worker"}, env: envOf("worker-1"), dir: work},
		{t: t, name: "worker-2", bin: bin, args: []string{"worker"}, env: envOf("worker-2"), dir: work},
	}
	for _, p := range append([]*nodeProc{serve}, workers...) {
		p.start()
		t.Cleanup(p.stop)
	}
	waitHealthy(t, ctx, base)

	out := cli("", "send", issue, "--list", "monthly")
	m := regexp.MustCompile(`(?m)^send (\d+):`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("tayori send: no send id in\n%s", out)
	}
	sendID := m[1]
	start := time.Now()
	t.Logf("send %s to %d readers started", sendID, n)

	var snd struct {
		State  string
		Counts struct{ Planned, Queued, Retrying, Sent, Skipped, FailedTemp, FailedPerm, Cancelled int64 }
	}
	accepted := func() int { return len(relay.Messages()) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v (accepted %d of %d; the console: %+v)", what, ctx.Err(), accepted(), n, snd)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A quarter of the way: SIGKILL worker 1, start it again a second later.
	waitFor("a quarter of the copies", func() bool { return accepted() >= n/4 })
	// The worker's connections to the relay, just before the kill: the
	// copies the relay accepted on them in the 30 s before are the ones
	// that may have been in flight (accepted, not yet recorded).
	var ports map[int]bool
	for deadline := time.Now().Add(5 * time.Second); len(ports) == 0 && time.Now().Before(deadline); {
		if ports, err = chaos.RelayPorts(workers[0].pid(), relay.Port()); err != nil {
			t.Fatal(err)
		}
	}
	killedAt := time.Now()
	workers[0].kill()
	// Copies on the killed worker's connections are its copies in flight,
	// whenever the relay finishes reading them: a chunk already in the
	// socket at the kill is accepted a moment later, so the count is taken
	// after the connections have closed, not at the kill itself.
	time.Sleep(time.Second)
	inFlight := map[string]int{} // reader → copies on the killed worker's connections
	nInFlight := 0
	for _, msg := range relay.Messages() {
		_, p, _ := net.SplitHostPort(msg.Remote)
		port, _ := strconv.Atoi(p)
		if ports[port] && msg.Received.After(killedAt.Add(-30*time.Second)) {
			for _, to := range msg.To {
				inFlight[strings.ToLower(to)]++
				nInFlight++
			}
		}
	}
	t.Logf("worker-1 SIGKILLed at %.1f s with %d connections to the relay, %d copies accepted; %d on its connections in the 30 s before",
		killedAt.Sub(start).Seconds(), len(ports), accepted(), nInFlight)
	workers[0].start()

	// Half way: SIGKILL the web server. Signups while it is down fail
	// with a refused connection; it is started again two seconds later.
	waitFor("half the copies", func() bool { return accepted() >= n/2 })
	serve.kill()
	for i := range 5 {
		if _, err := signup(base, fmt.Sprintf("down%d@signup.example.jp", i), i); err == nil {
			t.Errorf("a signup while the web server is down succeeded")
		}
	}
	time.Sleep(2 * time.Second)
	serve.start()
	waitHealthy(t, ctx, base)
	var signups []string
	for i := range 20 {
		addr := fmt.Sprintf("after%02d@signup.example.jp", i)
		status, err := signup(base, addr, 100+i)
		if err != nil || status != http.StatusOK {
			t.Errorf("signup %s after the restart: %d %v", addr, status, err)
			continue
		}
		signups = append(signups, addr)
	}

	// The end: the console says done, and its counts are the relay's.
	waitFor("the send to be done", func() bool {
		var body struct {
			Send json.RawMessage `json:"send"`
		}
		if err := apiGet(ctx, base+"/api/v1/sends/"+sendID, apiToken, &body); err != nil {
			t.Logf("GET /api/v1/sends/%s: %v", sendID, err)
			return false
		}
		if err := json.Unmarshal(body.Send, &snd); err != nil {
			t.Logf("GET /api/v1/sends/%s: %v", sendID, err)
			return false
		}
		return snd.State == "done" || snd.State == "failed" || snd.State == "cancelled"
	})
	took := time.Since(start)
	time.Sleep(time.Second) // copies still on their way
	copies := map[string]int{}
	for _, msg := range relay.Messages() {
		for _, to := range msg.To {
			copies[strings.ToLower(to)]++
		}
	}
	missing, dups, unexplained := 0, 0, 0
	for i := 1; i <= n; i++ {
		a := nodeReader(i)
		c := copies[a]
		if c == 0 {
			missing++
		}
		dups += max(c-1, 0)
		if c > 1 && inFlight[a] == 0 {
			unexplained++ // a second copy whose first was not the killed worker's
		}
	}
	t.Logf("send %s: %s after %.1f s; %d readers, %d without a copy, %d second copies (of %d copies the killed worker's connections carried in the 30 s before the kill); console: %+v",
		sendID, snd.State, took.Seconds(), n, missing, dups, nInFlight, snd.Counts)
	if snd.State != "done" {
		t.Errorf("the send ended %s", snd.State)
	}
	if missing != 0 {
		t.Errorf("%d readers got no copy", missing)
	}
	if dups > nInFlight || unexplained > 0 {
		t.Errorf("%d second copies, %d of them to readers whose copy was not on the killed worker's connections (%d copies were)",
			dups, unexplained, nInFlight)
	}
	if snd.Counts.Planned != int64(n) || snd.Counts.Sent != int64(n) || snd.Counts.Queued+snd.Counts.Retrying != 0 {
		t.Errorf("the console's counts %+v, want %d planned and sent, none waiting", snd.Counts, n)
	}

	// Every signup after the restart is kept: its confirmation mail goes.
	waitFor("the confirmation mails", func() bool {
		for _, a := range signups {
			if len(relay.MessagesTo(a)) == 0 {
				return false
			}
		}
		return true
	})
	for i := range 5 {
		if got := relay.MessagesTo(fmt.Sprintf("down%d@signup.example.jp", i)); len(got) != 0 {
			t.Errorf("a signup refused while the web server was down got mail")
		}
	}
}

func nodeReader(i int) string { return fmt.Sprintf("r%05d@nodes.example.jp", i) }

// writeAllRegionsReaders writes n active readers of every region and
// topic, so that each gets the issue.
func writeAllRegionsReaders(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	regions := make([]string, len(audience.Regions))
	for i, r := range audience.Regions {
		regions[i] = string(r)
	}
	topics := make([]string, len(audience.StandardTopics))
	for i, tp := range audience.StandardTopics {
		topics[i] = string(tp)
	}
	_ = w.Write([]string{"email", "name", "regions", "topics", "consent_at", "consent_method", "consent_version"})
	for i := 1; i <= n; i++ {
		_ = w.Write([]string{nodeReader(i), fmt.Sprintf("読者 %05d", i), strings.Join(regions, ","),
			strings.Join(topics, ","), "2025-10-01", "import", "nodes"})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
}

// signup posts the public signup form as a reader at 198.51.100.i would
// (through the proxy that TAYORI_TRUST_PROXY trusts).
func signup(base, addr string, i int) (int, error) {
	form := url.Values{"email": {addr}, "name": {"山田 太郎"}, "region": {"jp"}, "topic": {"policy"},
		"consent": {"yes"}, "lang": {"ja"}, "consent_version": {web.ConsentVersion}}
	req, err := http.NewRequest("POST", base+"/subscribe", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", 100+i/250, i%250+1))
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func apiGet(ctx context.Context, u, tok string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func waitHealthy(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the web server did not answer on %s/healthz", base)
}

// nodeProc is one long-running tayori process, logging into dir/name.log.
type nodeProc struct {
	t         *testing.T
	name, bin string
	args, env []string
	dir       string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
}

func (p *nodeProc) start() {
	p.t.Helper()
	log, err := os.OpenFile(filepath.Join(p.dir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

func (p *nodeProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// kill SIGKILLs the process and waits for it to end.
func (p *nodeProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends the process gracefully (SIGTERM), or kills it after 10 s.
func (p *nodeProc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
	if data, err := os.ReadFile(filepath.Join(p.dir, p.name+".log")); err == nil && p.t.Failed() {
		p.t.Logf("%s's log (end):\n%s", p.name, lastLines(string(data), 30))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
