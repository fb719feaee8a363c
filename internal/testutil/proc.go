package testutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStatusKiB reads one "Name:   N kB" line of /proc/PID/status (pid 0:
// this process), such as VmRSS or VmHWM (peak resident set), in KiB.
func ProcStatusKiB(pid int, name string) (int64, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", name, path)
}
