package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a private redis-server on a spare loopback port, for
// tests that crash, restart or replace Redis under a running send. It is
// killed, and its files removed, when the test ends.
type RedisServer struct {
	tb   testing.TB
	bin  string
	port int
	root string // a directory per server generation under it
	data string // the current generation's directory
	gen  int
	aof  bool
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (from PATH) on a spare 127.0.0.1 port.
// With aof, it keeps an append-only file (appendfsync everysec, as in
// production) that Restart reads back; without, it keeps nothing.
func StartRedis(tb testing.TB, aof bool) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (%v): install the redis-server package, or run `make test`, which does", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &RedisServer{tb: tb, bin: bin, port: port, root: tb.TempDir(), aof: aof}
	r.fresh()
	r.start()
	tb.Cleanup(r.kill)
	return r
}

// fresh makes a new, empty data directory current.
func (r *RedisServer) fresh() {
	r.gen++
	r.data = filepath.Join(r.root, strconv.Itoa(r.gen))
	if err := os.MkdirAll(r.data, 0o750); err != nil {
		r.tb.Fatal(err)
	}
}

// Client returns a new client of database 0; the test closes it.
func (r *RedisServer) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
}

func (r *RedisServer) start() {
	r.tb.Helper()
	appendonly := "no"
	if r.aof {
		appendonly = "yes"
	}
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.data,
		"--appendonly", appendonly, "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
		"--protected-mode", "no", "--maxmemory-policy", "noeviction", "--loglevel", "warning")
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	c := r.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server on port %d does not answer: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *RedisServer) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
	r.cmd = nil
}

// Crash kills the server with SIGKILL: what the append-only file holds
// survives, up to about the last second of writes.
func (r *RedisServer) Crash() { r.kill() }

// Restart starts the server again on the same port after Crash (or
// crashes it first): with an append-only file it comes back with its
// data, without one it comes back empty.
func (r *RedisServer) Restart() {
	r.tb.Helper()
	r.kill()
	r.start()
}

// Replace kills the server and starts an empty one on the same port, as
// when Redis is replaced by a new server.
func (r *RedisServer) Replace() {
	r.tb.Helper()
	r.kill()
	r.fresh()
	r.start()
}
