package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// proc is a child process of the run: a tayori command or redis-server.
// It gets a process group of its own (so a Ctrl-C at the terminal reaches
// only the chaos command, which then stops it) and dies with the chaos
// command (Pdeathsig) should that be killed.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string // appended to, across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "---- %s: start %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "---- %s: exit %v\n", time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// pid returns the running process's id, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return 0
	}
	return p.cmd.Process.Pid
}

// running reports whether the process is alive.
func (p *proc) running() bool { return p.pid() != 0 }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// spare returns a free TCP port on 127.0.0.1.
func spare() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// redisServer is the run's private Redis: AOF on, in a directory of the
// work directory, on a spare loopback port that stays the same across a
// restart and a replacement.
type redisServer struct {
	p    *proc
	port int
	dir  string // the first Redis's directory
	cur  string // the running Redis's directory
	gen  int    // 0, then 1 after a replacement by an empty Redis
}

func newRedis(workDir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server): the chaos run needs a Redis of its own to restart and replace")
	}
	port, err := spare()
	if err != nil {
		return nil, err
	}
	r := &redisServer{port: port, dir: filepath.Join(workDir, "redis")}
	r.p = &proc{name: "redis", path: bin, log: filepath.Join(workDir, "redis.log"), env: []string{"PATH=" + os.Getenv("PATH")}}
	r.setArgs()
	return r, nil
}

func (r *redisServer) setArgs() {
	dir := r.dir
	if r.gen > 0 {
		dir = fmt.Sprintf("%s-empty%d", r.dir, r.gen)
	}
	r.cur = dir
	r.p.args = []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
		"--maxmemory-policy", "noeviction", "--protected-mode", "no"}
}

// url is TAYORI_REDIS_URL.
func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start starts redis-server and waits for it to answer PING.
func (r *redisServer) start(ctx context.Context) error {
	if err := os.MkdirAll(r.cur, 0o755); err != nil {
		return err
	}
	if err := r.p.start(); err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		// Loading the AOF answers LOADING: wait for it too.
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !r.p.running() {
			return fmt.Errorf("redis-server on port %d did not answer (%v); see %s", r.port, err, r.p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart stops Redis with SIGTERM (it writes its AOF and exits) and starts
// it again on its data after down.
func (r *redisServer) restart(ctx context.Context, down time.Duration) error {
	r.p.stop(10 * time.Second)
	sleep(ctx, down)
	return r.start(ctx)
}

// replace kills Redis and starts an empty one on the same port.
func (r *redisServer) replace(ctx context.Context) error {
	r.p.kill()
	r.gen++
	r.setArgs()
	return r.start(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// relayPorts returns the local ports of pid's TCP connections to
// 127.0.0.1:remotePort, read from /proc before the process is killed: the
// socket inodes among its open files, looked up in its network
// namespace's TCP table.
func relayPorts(pid, remotePort int) (map[int]bool, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			if table == "tcp6" {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // the header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			_, rport, ok1 := hexAddr(f[2])
			_, lport, ok2 := hexAddr(f[1])
			if ok1 && ok2 && rport == remotePort {
				ports[lport] = true
			}
		}
	}
	return ports, nil
}

// hexAddr parses /proc/net/tcp's "0100007F:9C40".
func hexAddr(s string) (ip string, port int, ok bool) {
	h, p, found := strings.Cut(s, ":")
	if !found {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", 0, false
	}
	return h, int(n), true
}

// portOf returns the port of "ip:port".
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// RelayPorts returns the local ports of process pid's TCP connections to
// remotePort, read from /proc: for other tests that tell which copies a
// killed worker had on its connections (cmd/tayori's TestSeveralNodes).
func RelayPorts(pid, remotePort int) (map[int]bool, error) { return relayPorts(pid, remotePort) }
