package testutil

import (
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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name under which StartRedisSentinel's Sentinel
// monitors its primary.
const SentinelMaster = "tayori"

// RedisSentinel is a replicated Redis of a test's own: a primary, a
// replica and one Sentinel monitoring them, each a redis-server process on
// a spare loopback port, without persistence. The Sentinel declares a
// primary down after 1 s without an answer, so a failover takes a few
// seconds. Everything is stopped and removed when the test ends.
//
// Two of the Sentinel's timings are shortened for a loaded test machine
// (SENTINEL DEBUG, see sentinelTimings): a Sentinel process that stalls
// for 2 s (starved of CPU, or blocked in the fsync of its config file,
// which it rewrites at each step of a failover) enters TILT mode and by
// default does nothing for 30 s, failover included; and it reads a
// replica's INFO only every 10 s outside a failover, while it refuses to
// promote a replica whose INFO is older than 5 s once the primary looks
// down. Its directory is on tmpfs when there is one (/dev/shm), so those
// fsyncs do not wait for the disk.
type RedisSentinel struct {
	tb       testing.TB
	dir      string
	sentinel string // host:port

	mu    sync.Mutex
	procs map[string]*serverProc // by host:port
}

type serverProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedisSentinel starts the primary, the replica and the Sentinel, and
// returns once the Sentinel knows the replica (so that it can fail over).
// It fails the test, never skips it, when redis-server is missing.
func StartRedisSentinel(tb testing.TB) *RedisSentinel {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (%v): the Sentinel tests run real redis-server processes; "+
			"`make test` installs it when run as root (Debian package redis-server)", err)
	}
	s := &RedisSentinel{tb: tb, dir: sentinelDir(tb), procs: map[string]*serverProc{}}
	tb.Cleanup(s.stopAll)
	primary := s.startServer("primary")
	s.startServer("replica", "--replicaof", "127.0.0.1", port(primary))
	s.startSentinel(primary)

	ctx := context.Background()
	sc := s.sentinelClient()
	defer sc.Close()
	args := []any{"SENTINEL", "DEBUG"}
	for _, kv := range sentinelTimings {
		args = append(args, kv[0], kv[1])
	}
	if err := sc.Process(ctx, redis.NewStatusCmd(ctx, args...)); err != nil {
		tb.Fatalf("set the Sentinel's timings (%v): %v", args, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		reps, err := sc.Replicas(ctx, SentinelMaster).Result()
		if err == nil && len(reps) == 1 && reps[0]["master-link-status"] == "ok" && !strings.Contains(reps[0]["flags"], "down") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the Sentinel does not see a healthy replica after 30s (replicas %v, err %v); its log:\n%s", reps, err, s.sentinelLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The replica's link is up once it has loaded the primary's data, but
	// the primary streams writes to it only from the replica's first
	// acknowledgement, up to a second later: a write made meanwhile, then
	// a SIGKILL of the primary, would be lost. So a write (removed again)
	// and WAIT, which returns once the replica has acknowledged it.
	pc := redis.NewClient(&redis.Options{Addr: primary})
	defer pc.Close()
	const probe = "testutil:sentinel:streamed"
	n, err := 0, pc.Set(ctx, probe, 1, 0).Err()
	if err == nil {
		err = pc.Del(ctx, probe).Err()
	}
	if err == nil {
		n, err = pc.Do(ctx, "WAIT", 1, 10000).Int()
	}
	if err != nil || n != 1 {
		tb.Fatalf("the primary streams to %d replicas after 10s (err %v); its log:\n%s", n, err, s.sentinelLog())
	}
	return s
}

// sentinelTimings are the Sentinel's SENTINEL DEBUG settings (Redis 7.0
// and later; milliseconds).
var sentinelTimings = [][2]string{
	// INFO from the replica every second, as during a failover, so that
	// its INFO is never too old for the replica to be promoted (within 5 s
	// once the primary looks down, 30 s before).
	{"info-period", "1000"},
	// After a stall of its own of more than 2 s (tilt-trigger), act again
	// after 3 s rather than 30: three rounds of PING and INFO, enough to
	// see the servers afresh before judging them (the point of TILT mode),
	// and short enough that a failover under way does not time out
	// (failover-timeout is 10 s).
	{"tilt-period", "3000"},
}

// sentinelDir returns a directory for the servers' files and logs, on
// tmpfs if /dev/shm is one, removed when the test ends.
func sentinelDir(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "tayori-sentinel-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}

// URL returns TAYORI_REDIS_URL in the Sentinel form for database db.
func (s *RedisSentinel) URL(db int) string {
	return fmt.Sprintf("redis+sentinel://%s/%s/%d", s.sentinel, SentinelMaster, db)
}

// Primary returns the address the Sentinel gives for the primary now.
func (s *RedisSentinel) Primary(ctx context.Context) (string, error) {
	sc := s.sentinelClient()
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(a[0], a[1]), nil
}

// KillPrimary sends SIGKILL to the primary's process, as a crashed machine
// would, and returns its address. The Sentinel then promotes the replica.
func (s *RedisSentinel) KillPrimary(ctx context.Context) (string, error) {
	addr, err := s.Primary(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	p := s.procs[addr]
	s.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("no process of ours listens at %s", addr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return "", err
	}
	<-p.exited
	return addr, nil
}

// Failover asks the Sentinel to fail the primary over to the replica now
// (SENTINEL FAILOVER, an operator's switch-over) and returns the old
// primary's address. With pause > 0 it first pauses writes on the primary
// for that long (CLIENT PAUSE … WRITE), so that no client writes to it
// while the replica is promoted and before the clients follow: Sentinel
// does not, and writes in that second would be lost.
func (s *RedisSentinel) Failover(ctx context.Context, pause time.Duration) (string, error) {
	addr, err := s.Primary(ctx)
	if err != nil {
		return "", err
	}
	if pause > 0 {
		pc := redis.NewClient(&redis.Options{Addr: addr})
		err := pc.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err()
		pc.Close()
		if err != nil {
			return "", fmt.Errorf("pause writes on %s: %w", addr, err)
		}
	}
	sc := s.sentinelClient()
	defer sc.Close()
	return addr, sc.Failover(ctx, SentinelMaster).Err()
}

// WaitPrimaryChange waits until the Sentinel names a primary other than
// old, and that server answers as a primary; it returns the new address.
func (s *RedisSentinel) WaitPrimaryChange(ctx context.Context, old string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		a, err := s.Primary(ctx)
		if err == nil && a != old {
			c := redis.NewClient(&redis.Options{Addr: a})
			role, err := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the Sentinel still names %s as the primary after %v (last err %v); its log:\n%s",
				old, timeout, err, s.sentinelLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sentinelLog returns the Sentinel's log from its start (its events:
// +sdown, +tilt, +failover-state-…, -failover-abort-…), for a failure
// message: the directory is gone once the test ends.
func (s *RedisSentinel) sentinelLog() string {
	data, err := os.ReadFile(filepath.Join(s.dir, "sentinel.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	return strings.Join(lines, "\n")
}

func (s *RedisSentinel) sentinelClient() *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.sentinel})
}

// startServer starts one redis-server on a spare loopback port and waits
// until it answers; it returns host:port.
func (s *RedisSentinel) startServer(name string, args ...string) string {
	s.tb.Helper()
	for try := 0; ; try++ {
		p := sparePort(s.tb)
		addr := "127.0.0.1:" + strconv.Itoa(p)
		// No wait before a full sync (repl-diskless-sync-delay is 5 s by
		// default, to serve several replicas at once): the replica is in
		// sync, and the Sentinel sees it so, within a second of its start.
		full := append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(p), "--save", "", "--appendonly", "no",
			"--maxmemory-policy", "noeviction", "--repl-diskless-sync-delay", "0", "--dir", s.dir, "--dbfilename", name + ".rdb",
			"--logfile", filepath.Join(s.dir, name+".log")}, args...)
		if err := s.start(addr, "redis-server", full...); err == nil {
			return addr
		} else if try == 4 {
			s.tb.Fatalf("start redis-server (%s): %v", name, err)
		}
	}
}

func (s *RedisSentinel) startSentinel(primary string) {
	s.tb.Helper()
	for try := 0; ; try++ {
		p := sparePort(s.tb)
		addr := "127.0.0.1:" + strconv.Itoa(p)
		conf := filepath.Join(s.dir, "sentinel.conf")
		text := fmt.Sprintf(`bind 127.0.0.1
port %d
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %s 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, p, s.dir, filepath.Join(s.dir, "sentinel.log"), SentinelMaster, port(primary),
			SentinelMaster, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			s.tb.Fatal(err)
		}
		if err := s.start(addr, "redis-server", conf, "--sentinel"); err == nil {
			s.sentinel = addr
			return
		} else if try == 4 {
			s.tb.Fatalf("start the Sentinel: %v", err)
		}
	}
}

// start runs a redis-server process that should listen at addr and waits
// until it answers PING.
func (s *RedisSentinel) start(addr, bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s at %s exited at start (port taken?); logs in %s", bin, addr, s.dir)
		default:
		}
		if err := c.Ping(context.Background()).Err(); err == nil {
			s.mu.Lock()
			s.procs[addr] = &serverProc{cmd: cmd, exited: exited}
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return errors.New(bin + " at " + addr + " does not answer after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *RedisSentinel) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, p := range s.procs {
		p.cmd.Process.Kill()
		<-p.exited // reaped, and done writing into the directory
		delete(s.procs, addr)
	}
}

// sparePort returns a loopback port that was free a moment ago.
func sparePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
