package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store/sqlite"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// listKey is the list the readers join and the issue goes to.
const listKey = "monthly"

// run is one chaos run's state.
type run struct {
	cfg     Config
	log     io.Writer
	work    string // the work directory
	data    string // the tmpfs: TAYORI_DATA_DIR
	ownWork bool   // work was created by the run

	env      []string
	redis    *redisServer
	relay    *relay
	serve    *proc
	workers  [2]*proc
	httpBase string
	issue    string // the issue file

	db    *sql.DB
	store *subscribers.Store
	led   ledger
	ids   map[string]int64 // address → reader id
	addrs map[int64]string // reader id → address

	dryRun int
	sendID int64
	t0     time.Time // the send command

	mu       sync.Mutex // guards what the monitor writes
	doneAt   time.Time  // when the store first said the send is over (done, cancelled, failed)
	state    string
	lastMove time.Time // when the relay last accepted a copy
	accepted int

	faults  []faultRecord
	kills   []*killRecord
	killed  []*proc // killed workers waiting to be started again
	outage  *outageRecord
	unsubs  []unsubRecord
	skipped []string // faults not played because the send had finished

	diskFull, diskFreed time.Time
	emptied             time.Time // when Redis was replaced by an empty one
	resumed             string    // what resumeIfStuck did

	cleanups []func()
}

// faultRecord is one fault as it was played.
type faultRecord struct {
	At     time.Duration
	Fault  string
	Detail string
}

// killRecord is one SIGKILL of a worker, with the local ports of its
// connections to the relay, read from /proc just before.
type killRecord struct {
	N      int
	Worker string
	Pid    int
	At     time.Time
	Ports  map[int]bool
}

// outageRecord is the relay's outage and the connections it dropped.
type outageRecord struct {
	At   time.Time
	Open map[int]bool // the connections open when it went down (Message.Conn)
}

// unsubRecord is one one-click unsubscribe.
type unsubRecord struct {
	ID       int64
	Addr     string
	Posted   time.Time
	Answered time.Time
	Status   int
	Err      string
}

// Run runs the scenario and returns its report. The error is for a run
// that could not be set up or was interrupted; the report says whether
// the product passed. Whatever happens, Run stops every process it
// started and unmounts the data disk before it returns.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, log: cfg.Log}
	if r.log == nil {
		r.log = io.Discard
	}
	defer func() {
		r.cleanup(rep)
	}()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.startSend(ctx); err != nil {
		return nil, err
	}
	r.play(ctx)
	rep, err = r.report(context.WithoutCancel(ctx))
	if err == nil && ctx.Err() != nil {
		rep.Failures = append([]string{fmt.Sprintf("the run was interrupted at t+%.0f s: the figures are partial", time.Since(r.t0).Seconds())}, rep.Failures...)
		err = fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return rep, err
}

func (r *run) logf(format string, a ...any) {
	prefix := "chaos: "
	if !r.t0.IsZero() {
		prefix = fmt.Sprintf("chaos: t+%5.1fs ", time.Since(r.t0).Seconds())
	}
	fmt.Fprintf(r.log, prefix+format+"\n", a...)
}

func (r *run) onCleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// cleanup stops everything, newest first, and removes the work directory
// unless it is to be kept.
func (r *run) cleanup(rep *Report) {
	keep := r.cfg.Keep || rep == nil || !rep.Pass()
	if keep && r.relay != nil && r.work != "" {
		if err := r.dumpRelay(filepath.Join(r.work, "relay.csv")); err != nil {
			r.logf("relay record: %v", err)
		}
	}
	if r.cfg.Keep && r.db != nil {
		// VACUUM INTO: a consistent copy, the WAL's commits included.
		dst := filepath.Join(r.work, "tayori.db")
		_ = os.Remove(dst)
		if _, err := r.db.Exec(`VACUUM INTO ?`, dst); err != nil {
			r.logf("copy the store: %v", err)
		} else {
			r.logf("kept the store: %s", dst)
		}
	}
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
	if r.work == "" {
		return
	}
	if keep || !r.ownWork {
		r.logf("logs: %s", r.work)
		return
	}
	_ = os.RemoveAll(r.work)
}

// setup builds the world: work directory, tmpfs, Redis, relay, readers,
// issue, web server and two workers.
func (r *run) setup(ctx context.Context) error {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		return fmt.Errorf("the chaos run reads /proc to find a worker's connections and needs Linux: %w", err)
	}
	tayori, err := filepath.Abs(r.cfg.Tayori)
	if err != nil {
		return err
	}
	if st, err := os.Stat(tayori); err != nil || st.IsDir() {
		return fmt.Errorf("the tayori binary %s: not found (build it with make build)", r.cfg.Tayori)
	}
	r.cfg.Tayori = tayori
	sample := filepath.Join(r.cfg.Repo, "testdata", "aisi-monthly-2025-11.txt")
	if _, err := os.Stat(sample); err != nil {
		return fmt.Errorf("the November sample: %w (is %s the repository's root?)", err, r.cfg.Repo)
	}

	if r.cfg.WorkDir == "" {
		for _, msg := range reapStale(os.TempDir()) {
			r.logf("%s", msg)
		}
		r.work, err = os.MkdirTemp("", "tayori-chaos-")
		if err != nil {
			return err
		}
		r.ownWork = true
	} else {
		r.work = r.cfg.WorkDir
		if err := os.MkdirAll(r.work, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(r.work, runMark), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	r.logf("work directory %s", r.work)

	r.data = filepath.Join(r.work, "data")
	if err := mountTmpfs(r.data, r.cfg.DiskSize); err != nil {
		return err
	}
	r.onCleanup(func() {
		if err := unmount(r.data); err != nil {
			r.logf("%v", err)
		}
	})
	r.logf("data directory: a %d MiB tmpfs on %s", r.cfg.DiskSize>>20, r.data)

	if r.redis, err = newRedis(r.work); err != nil {
		return err
	}
	r.onCleanup(func() { r.redis.p.stop(5 * time.Second) })
	if err := r.redis.start(ctx); err != nil {
		return err
	}
	r.logf("redis-server (AOF) on 127.0.0.1:%d", r.redis.port)

	if r.relay, err = startRelay(r.cfg); err != nil {
		return err
	}
	r.onCleanup(r.relay.close)
	r.logf("fault relay on %s", r.relay.srv.Addr())

	httpPort, err := spare()
	if err != nil {
		return err
	}
	r.httpBase = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	vars := map[string]string{
		"PATH":                    os.Getenv("PATH"),
		"HOME":                    r.work,
		"TAYORI_DATA_DIR":         r.data,
		"TAYORI_REDIS_URL":        r.redis.url(),
		"TAYORI_SMTP_URL":         r.relay.srv.URL(),
		"TAYORI_BASE_URL":         r.httpBase,
		"TAYORI_HTTP_ADDR":        fmt.Sprintf("127.0.0.1:%d", httpPort),
		"TAYORI_SECRET":           "chaos:" + hex.EncodeToString(secret),
		"TAYORI_FROM":             "AI政策動向 <newsletter@chaos.example.jp>",
		"TAYORI_RATE":             strconv.Itoa(r.cfg.Rate),
		"TAYORI_SHUTDOWN_TIMEOUT": "5s",
		"TAYORI_LOG_FORMAT":       "text",
		"TAYORI_LOG_LEVEL":        "info",
		"TAYORI_TIMEZONE":         "Asia/Tokyo",
	}
	if r.cfg.Concurrency > 0 {
		vars["TAYORI_CONCURRENCY"] = strconv.Itoa(r.cfg.Concurrency)
	}
	for k, v := range vars {
		r.env = append(r.env, k+"="+v)
	}

	// The store, created as on a fresh installation.
	if _, err := r.tayori(ctx, "init"); err != nil {
		return err
	}

	// The issue: the November sample, imported as an editor would, with
	// the two links the lint catches repaired as the demo does.
	r.issue = filepath.Join(r.work, "2025-11.md")
	if _, err := r.tayori(ctx, "compose", "import", sample, "-o", r.issue); err != nil {
		return err
	}
	md, err := os.ReadFile(r.issue)
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.issue, bytes.ReplaceAll(md, []byte("®="), []byte("&reg=")), 0o644); err != nil {
		return err
	}
	if _, err := r.tayori(ctx, "compose", "check", r.issue); err != nil {
		return err
	}

	csvPath := filepath.Join(r.work, "readers.csv")
	if err := writeReaders(csvPath, r.cfg.Readers, r.cfg.Seed); err != nil {
		return err
	}
	out, err := r.tayori(ctx, "subscribers", "import", csvPath, "--list", listKey)
	if err != nil {
		return err
	}
	r.logf("imported %d readers: %s", r.cfg.Readers, strings.TrimSpace(out))

	out, err = r.tayori(ctx, "send", r.issue, "--list", listKey, "--dry-run")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`to list \S+: (\d+) readers? in`).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("tayori send --dry-run: no reader count in its output:\n%s", out)
	}
	r.dryRun, _ = strconv.Atoi(m[1])
	r.logf("dry run: %d readers get the issue", r.dryRun)

	// The store, read-only except for minting tokens as the product does.
	if r.db, err = sqlitedb.Open(ctx, filepath.Join(r.data, "tayori.db")); err != nil {
		return err
	}
	r.onCleanup(func() { _ = r.db.Close() })
	r.led = ledger{db: r.db}
	pcfg, err := config.Load(func(k string) string { return vars[k] }, "")
	if err != nil {
		return err
	}
	keys := make([]token.Key, len(pcfg.Secrets))
	for i, s := range pcfg.Secrets {
		keys[i] = token.Key{ID: s.ID, Secret: s.Key}
	}
	ring, err := token.NewKeyring(time.Now, keys...)
	if err != nil {
		return err
	}
	if r.store, err = subscribers.Open(ctx, sqlite.NewSubscribers(r.db), subscribers.Options{Keyring: ring}); err != nil {
		return err
	}
	if r.ids, err = r.led.readers(ctx); err != nil {
		return err
	}
	r.addrs = make(map[int64]string, len(r.ids))
	for a, id := range r.ids {
		r.addrs[id] = a
	}

	r.serve = r.tayoriProc("serve", "serve")
	for i := range r.workers {
		r.workers[i] = r.tayoriProc(fmt.Sprintf("worker-%d", i+1), "worker")
	}
	r.onCleanup(func() {
		var wg sync.WaitGroup
		for _, p := range []*proc{r.serve, r.workers[0], r.workers[1]} {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(10 * time.Second) }()
		}
		wg.Wait()
	})
	if err := r.serve.start(); err != nil {
		return err
	}
	if err := r.waitHealthy(ctx); err != nil {
		return err
	}
	for _, w := range r.workers {
		if err := w.start(); err != nil {
			return err
		}
	}
	sleep(ctx, 2*time.Second) // let the workers connect to Redis
	for _, w := range r.workers {
		if !w.running() {
			return fmt.Errorf("%s exited at start; see %s", w.name, w.log)
		}
	}
	r.logf("tayori serve on %s and two tayori workers are up", r.httpBase)
	return ctx.Err()
}

// tayoriProc is a long-running tayori command logging into the work
// directory.
func (r *run) tayoriProc(name string, args ...string) *proc {
	return &proc{name: name, path: r.cfg.Tayori, args: args, env: r.env, log: filepath.Join(r.work, name+".log")}
}

// tayori runs a tayori command to its end and returns its standard
// output; its output is also appended to cli.log.
func (r *run) tayori(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.cfg.Tayori, args...)
	cmd.Env = r.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if f, ferr := os.OpenFile(filepath.Join(r.work, "cli.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "---- %s: tayori %s (%v)\n%s%s", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
		f.Close()
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("tayori %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// waitHealthy waits for the web server's /healthz.
func (r *run) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.httpBase+"/healthz", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !r.serve.running() {
			return fmt.Errorf("tayori serve did not answer on %s/healthz; see %s", r.httpBase, r.serve.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var sendIDRE = regexp.MustCompile(`(?m)^send (\d+):`)

// startSend sends the issue with the CLI.
func (r *run) startSend(ctx context.Context) error {
	r.t0 = time.Now()
	r.lastMove = r.t0
	out, err := r.tayori(ctx, "send", r.issue, "--list", listKey)
	if err != nil {
		return err
	}
	m := sendIDRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("tayori send: no send id in its output:\n%s", out)
	}
	r.sendID, _ = strconv.ParseInt(m[1], 10, 64)
	r.logf("%s", strings.TrimSpace(out))
	return nil
}

// dumpRelay writes the relay's record of accepted messages as CSV, for
// looking into a failed run: sequence number, connection, client address,
// seconds since the send command, recipients.
func (r *run) dumpRelay(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"seq", "conn", "remote", "at_s", "to"})
	for i, m := range r.relay.srv.Messages() {
		_ = w.Write([]string{strconv.Itoa(i + 1), strconv.Itoa(m.Conn), m.Remote,
			strconv.FormatFloat(m.Received.Sub(r.t0).Seconds(), 'f', 3, 64), strings.Join(m.To, " ")})
	}
	w.Flush()
	return w.Error()
}
