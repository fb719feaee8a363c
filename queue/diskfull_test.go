package queue_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after the test's other clean-ups). The tests run
// as root; without the right to mount, the test fails and says so.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0750", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount a %d-byte tmpfs on %s for the disk-full test: %v: %s\n"+
			"(the test needs to mount a small file system: run it as root, or in a container with CAP_SYS_ADMIN)", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system has no room left, and
// returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for chunk := 1 << 20; chunk >= 512; chunk /= 4 {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", path, err)
				}
				break
			}
		}
	}
	return path
}

// Issue 18, disk full: the store's disk fills during a send, then is freed.
// A copy whose outcome cannot be recorded stops the sending before the
// next copy; the unrecorded outcomes are kept and written once there is
// room, so nothing the relay accepted is sent again, and nobody is left
// out. The SMTP server's own record is the judge.
func TestDiskFullDuringSend(t *testing.T) {
	const readers = 1500
	dir := mountTmpfs(t, 48<<20)
	slow := testutil.FailFunc(func(string, int) *testutil.Fault { f := testutil.Slow(time.Millisecond); return &f })
	e := newEnv(t, envOpts{dbDir: dir, noWorker: true, smtp: []testutil.SMTPOption{slow}, cfg: queue.Config{BatchSize: 50}})
	is := loadIssue(t, "aisi-monthly-2025-11.txt")
	e.importReaders(testList, 0, readers)
	snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	deadline := time.Now().Add(30 * time.Second)
	for len(e.smtp.Messages()) < readers/6 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages sent", len(e.smtp.Messages()))
		}
		time.Sleep(time.Millisecond)
	}
	// Fill the disk. The write-ahead log is emptied first, so that the
	// next commits must grow it (a log that has room in it already would
	// take a few more commits before the disk shows it is full).
	if _, err := e.db.ExecContext(e.ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)
	atFull := len(e.smtp.Messages())

	// The sending stops: nothing more goes out for a while.
	var stopped int
	for start, last, lastN := time.Now(), time.Now(), -1; ; time.Sleep(20 * time.Millisecond) {
		n := len(e.smtp.Messages())
		if n != lastN {
			last, lastN = time.Now(), n
		}
		if time.Since(last) > time.Second {
			stopped = n
			break
		}
		if time.Since(start) > 15*time.Second || n == readers {
			t.Errorf("the sending went on with the disk full: %d copies when it filled, %d now", atFull, n)
			stopped = n
			break
		}
	}
	t.Logf("disk full after %d copies; the sending stopped at %d", atFull, stopped)
	if stopped == readers {
		t.Fatal("the send finished before the disk was full")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// With the race detector on a busy machine the rest takes a while.
	done := e.waitState(snd.ID, queue.Done, 4*time.Minute)
	lost, dups := 0, 0
	for i := range readers {
		switch n := len(e.smtp.MessagesTo(fmt.Sprintf("r%05d@example.jp", i))); {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("after the disk was freed: %d copies in all, %d lost, %d duplicates; counts %+v", len(e.smtp.Messages()), lost, dups, done.Counts)
	if lost != 0 || dups != 0 {
		t.Errorf("%d readers lost, %d duplicate copies: want none", lost, dups)
	}
	if done.Counts.Sent != readers {
		t.Errorf("the ledger records %d sent, the relay accepted %d copies for %d readers", done.Counts.Sent, len(e.smtp.Messages()), readers)
	}
}
