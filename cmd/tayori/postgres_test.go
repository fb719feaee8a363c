package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
)

// pgURLWithPassword is the test's own PostgreSQL database with a password
// in its URL (the test server trusts loopback, so any password works),
// for checking that no message shows it.
func pgURLWithPassword(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testutil.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "secretpw")
	return u.String()
}

// tayori init creates the tables in an existing PostgreSQL database, and
// the editors' commands then work on it.
func TestInitAndEditorsOnPostgres(t *testing.T) {
	dsn := pgURLWithPassword(t)
	getenv := testEnv(t, "TAYORI_DB", dsn)
	out, _, err := runCLI(t, getenv, "init")
	if err != nil || !strings.Contains(out, "exists; its tables are up to date") || strings.Contains(out, "secretpw") {
		t.Fatalf("init on PostgreSQL: %v\n%q", err, out)
	}
	if out, _, err = runCLI(t, getenv, "init"); err != nil {
		t.Fatalf("init again: %v\n%s", err, out)
	}
	if out, _, err := runCLIWithStdin(t, getenv, []byte("パスワード correct horse\n"), "editors", "add", "花子"); err != nil {
		t.Fatalf("editors add: %v\n%s", err, out)
	}
	if _, _, err := runCLIWithStdin(t, getenv, []byte("パスワード correct horse\n"), "editors", "add", "花子"); err == nil ||
		!strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second editors add of one name: %v", err)
	}
	out, _, err = runCLI(t, getenv, "editors", "list")
	if err != nil || !strings.Contains(out, "花子") {
		t.Fatalf("editors list: %v\n%s", err, out)
	}
	tok, _, err := runCLI(t, getenv, "editors", "token", "花子")
	if err != nil || !strings.HasPrefix(tok, "tyr_") {
		t.Fatalf("editors token: %q %v", tok, err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM web_api_tokens t JOIN web_editors e ON e.id = t.editor_id WHERE e.name = $1`, "花子").Scan(&n); err != nil || n != 1 {
		t.Errorf("tokens of 花子 in PostgreSQL: %d, %v", n, err)
	}
}

// pgProxy forwards TCP connections from a loopback port to PostgreSQL,
// refusing them (nothing listens) until up is called: a server that is
// still starting.
type pgProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{addr: ln.Addr().String(), target: target}
	ln.Close() // down until up
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ln != nil {
			p.ln.Close()
		}
	})
	return p
}

func (p *pgProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", p.target)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
}

// A PostgreSQL server that does not answer at start is tried again with
// backoff: a command started before it succeeds once it answers, and one
// that never answers ends with a message naming TAYORI_DB, not the
// password.
func TestPostgresDownAtStartIsRetried(t *testing.T) {
	dsn := pgURLWithPassword(t)
	if _, _, err := runCLI(t, testEnv(t, "TAYORI_DB", dsn), "init"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	proxy := newPGProxy(t, u.Host)
	u.Host = proxy.addr
	getenv := testEnv(t, "TAYORI_DB", u.String())

	start := time.Now()
	timer := time.AfterFunc(1500*time.Millisecond, func() { proxy.up(t) })
	defer timer.Stop()
	out, _, err := runCLI(t, getenv, "editors", "list")
	if err != nil || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("editors list against a server that answers after 1.5 s: %v\n%s", err, out)
	}
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Errorf("the command ended after %v, before the server answered", d)
	}

	// A server that never answers: an error after store.ConnectTimeout.
	old := store.ConnectTimeout
	store.ConnectTimeout = 1500 * time.Millisecond
	defer func() { store.ConnectTimeout = old }()
	down := newPGProxy(t, u.Host)
	u.Host = down.addr
	start = time.Now()
	_, _, err = runCLI(t, testEnv(t, "TAYORI_DB", u.String()), "worker")
	d := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "TAYORI_DB") || !strings.Contains(err.Error(), "does not answer") ||
		!strings.Contains(err.Error(), down.addr) {
		t.Fatalf("worker against a server that never answers: %v; want a message naming TAYORI_DB and the server", err)
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Errorf("the message shows the password: %v", err)
	}
	if d < time.Second || d > 20*time.Second {
		t.Errorf("gave up after %v; want about store.ConnectTimeout (1.5 s) of retries", d)
	}
}

// A database whose schema a newer tayori wrote is refused by the
// long-running commands and by init, with a message that says so.
func TestNewerSchemaIsRefused(t *testing.T) {
	for _, e := range testutil.Engines() {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := e.URL(t)
			getenv := testEnv(t, "TAYORI_DB", dsn)
			if _, _, err := runCLI(t, getenv, "init"); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.SQL.Exec(`INSERT INTO ` + store.VersionTable + ` (version_id, is_applied) VALUES (99999, true)`)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range []string{"worker", "serve", "run", "init"} {
				_, _, err := runCLI(t, getenv, cmd)
				if !errors.Is(err, store.ErrNewerSchema) || !strings.Contains(err.Error(), "TAYORI_DB") ||
					!strings.Contains(err.Error(), "run the newer binary") {
					t.Errorf("tayori %s on a newer schema: %v", cmd, err)
				}
			}
		})
	}
}
