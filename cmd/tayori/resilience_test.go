package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// `tayori send resume ID` re-creates from the store the tasks of a send
// that Redis lost (here: Redis emptied before any worker planned it),
// and says what it did; the send then goes out once to each reader.
func TestSendResumeRecreatesWhatRedisLost(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	getenv := sendTestEnv(t, smtp)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	out, _, err := runCLI(t, getenv, "send", issue, "--force")
	if err != nil || !strings.HasPrefix(out, "send 1: ") {
		t.Fatalf("send: %v\n%s", err, out)
	}
	opt, err := redis.ParseURL(getenv("TAYORI_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, getenv, "send", "resume", "1")
	// The command queued the first batch itself (so that the first copies
	// go at once), then the planning of the rest: Redis lost both.
	if err != nil || out != "send 1: re-queued its planning and 1 batch of readers still to send, which Redis had lost\n" {
		t.Fatalf("send resume after Redis lost the send's tasks: %v\n%q", err, out)
	}
	out, _, err = runCLI(t, getenv, "send", "resume", "1")
	if err != nil || out != "send 1: every task is in Redis; nothing to re-queue\n" {
		t.Fatalf("send resume again: %v\n%q", err, out)
	}
	startWorker(t, getenv)
	out, _, err = runCLI(t, getenv, "send", "wait", "1")
	if err != nil || !strings.Contains(out, "sent:     3") {
		t.Fatalf("send wait: %v\n%s", err, out)
	}
	if n := len(smtp.Messages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	if _, _, err := runCLI(t, getenv, "send", "resume", "1"); err == nil || !strings.Contains(err.Error(), "it is done") {
		t.Errorf("resume of a done send: %v", err)
	}
}

// A missing store is a loud error for every command but `tayori init`,
// which creates it; nothing else creates a database file.
func TestMissingStoreIsAnErrorExceptForInit(t *testing.T) {
	dir := t.TempDir()
	getenv := testEnv(t, "TAYORI_DATA_DIR", dir)
	dbPath := filepath.Join(dir, "tayori.db")
	csv := filepath.Join(t.TempDir(), "readers.csv")
	if err := os.WriteFile(csv, []byte("email,consent_at,consent_method,consent_text\na@example.jp,2025-10-01,api,同意\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"subscribers", "list"}, {"subscribers", "import", csv}, {"sends"},
		{"send", "status", "1"}, {"editors", "list"}, {"worker"}, {"serve"}, {"run"},
	} {
		_, _, err := runCLI(t, getenv, args...)
		want := "database " + dbPath + " does not exist"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "tayori init") {
			t.Errorf("tayori %s without a store: %v; want an error saying %q and naming `tayori init`", strings.Join(args, " "), err, want)
		}
		if _, err := os.Stat(dbPath); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("tayori %s created %s", strings.Join(args, " "), dbPath)
		}
	}
	// A file that is no database is named too.
	if err := os.WriteFile(dbPath, []byte("not a database at all, just some bytes to fill a page......"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "list"); err == nil || !strings.Contains(err.Error(), dbPath) {
		t.Errorf("a store that is not a database: %v", err)
	}
	os.Remove(dbPath)

	out, _, err := runCLI(t, getenv, "init")
	if err != nil || out != "created the database "+dbPath+"\n" {
		t.Fatalf("init: %v\n%q", err, out)
	}
	if _, _, err := runCLI(t, getenv, "subscribers", "import", csv); err != nil {
		t.Fatalf("import after init: %v", err)
	}
	out, _, err = runCLI(t, getenv, "init")
	if err != nil || out != "the database "+dbPath+" exists; its tables are up to date\n" {
		t.Fatalf("init again: %v\n%q", err, out)
	}
	out, _, err = runCLI(t, getenv, "subscribers", "list")
	if err != nil || !strings.Contains(out, "a@example.jp") {
		t.Errorf("list after a second init: %v\n%s", err, out)
	}
}

// A running worker whose database file is deleted stops sending within
// about a second, with an error that says why.
func TestWorkerStopsWhenItsStoreIsDeleted(t *testing.T) {
	slow := testutil.FailFunc(func(string, int) *testutil.Fault { f := testutil.Slow(20 * time.Millisecond); return &f })
	smtp := testutil.StartSMTP(t, slow)
	getenv := sendTestEnv(t, smtp)
	dbPath := filepath.Join(getenv("TAYORI_DATA_DIR"), "tayori.db")
	addReaders(t, dbPath, 300)
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")
	if _, _, err := runCLI(t, getenv, "send", issue, "--force"); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"worker"}, getenv, strings.NewReader(""), &strings.Builder{}, &syncWriter{w: &stderr})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(smtp.Messages()) < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages", len(smtp.Messages()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.Remove(dbPath); err != nil {
		t.Fatal(err)
	}
	removed, atRemoval := time.Now(), len(smtp.Messages())
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the worker still runs 20 s after its database was deleted (%d messages sent since)", len(smtp.Messages())-atRemoval)
	}
	stopped, atStop := time.Since(removed), len(smtp.Messages())
	if err == nil || !strings.Contains(err.Error(), "database "+dbPath+" was deleted") {
		t.Errorf("worker: %v; want an error saying the database was deleted", err)
	}
	time.Sleep(time.Second)
	if n := len(smtp.Messages()); n != atStop {
		t.Errorf("%d messages after the worker stopped", n-atStop)
	}
	t.Logf("worker stopped %v after the deletion, having sent %d more copies; %s", stopped.Round(time.Millisecond), atStop-atRemoval, err)
	// Per connection, what was written before the stop (mailer.MaxInFlight).
	if n := atStop - atRemoval; n > 4*(mailer.MaxInFlight+1)+60 {
		t.Errorf("%d copies sent after the deletion", n)
	}
}

// addReaders adds n active readers of the default list to the database.
func addReaders(t *testing.T, dbPath string, n int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "t1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	all := audience.All()
	for i := range n {
		if _, err := store.Add(ctx, subscribers.NewSubscriber{Email: fmt.Sprintf("r%03d@example.jp", i), Prefs: &all,
			Method: subscribers.API, Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, Text: "同意"},
			Cause: "test"}); err != nil {
			t.Fatal(err)
		}
	}
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// initEnv is testEnv with the database created, as `tayori init` does on
// a new machine.
func initEnv(t *testing.T, kv ...string) func(string) string {
	t.Helper()
	getenv := testEnv(t, kv...)
	if _, _, err := runCLI(t, getenv, "init"); err != nil {
		t.Fatalf("tayori init: %v", err)
	}
	return getenv
}
