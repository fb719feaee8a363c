package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The data directory is a tmpfs of a fixed size, mounted for the run, so
// that filling it is quick and touches no real disk. Mounting needs root
// (CAP_SYS_ADMIN); a refusal ends the run with a message saying so.

// mountTmpfs mounts a tmpfs of size bytes on dir.
func mountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := syscall.Mount("tayori-chaos", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		fmt.Sprintf("size=%d,mode=0755", size))
	if err != nil {
		how := "run it as root, or in a container with CAP_SYS_ADMIN"
		if errors.Is(err, syscall.EPERM) {
			how = "mounting needs root (CAP_SYS_ADMIN): " + how
		}
		return fmt.Errorf("mount a %d MiB tmpfs for the data directory on %s: %w (%s)", size>>20, dir, err, how)
	}
	return nil
}

// unmount unmounts dir, lazily if it is still busy after a few tries.
func unmount(dir string) error {
	var err error
	for range 20 {
		if err = syscall.Unmount(dir, 0); err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
		return fmt.Errorf("unmount %s: %w (and detached: %w)", dir, err, err2)
	}
	return nil
}

// fillDisk writes a file into dir until the filesystem is full and
// returns its path and how many bytes it holds.
func fillDisk(dir string) (string, int64, error) {
	path := filepath.Join(dir, "chaos-fill")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return path, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for len(buf) >= 512 {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				buf = buf[:len(buf)/2] // fill the last pages too
				continue
			}
			return path, n, err
		}
	}
	return path, n, nil
}

// freeSpace returns the bytes free on dir's filesystem.
func freeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return -1
	}
	return int64(st.Bavail) * st.Bsize
}

// runMark is the file in a work directory that names the chaos process
// using it.
const runMark = "chaos.pid"

// reapStale unmounts the data directories of earlier runs whose process is
// gone (killed before it could clean up), under base, and returns what it
// did.
func reapStale(base string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var done []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "tayori-chaos" || fields[2] != "tmpfs" {
			continue
		}
		mnt := fields[1]
		work := filepath.Dir(mnt)
		if filepath.Dir(work) != filepath.Clean(base) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(work, runMark))
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && syscall.Kill(pid, 0) == nil {
				continue // that run is alive
			}
		}
		if err := unmount(mnt); err == nil {
			done = append(done, "unmounted the data disk of an earlier run that did not finish: "+mnt)
		}
	}
	return done
}
