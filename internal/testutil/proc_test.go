package testutil_test

import (
	"os"
	"testing"

	"github.com/tayori-news/tayori/internal/testutil"
)

func TestProcStatusKiB(t *testing.T) {
	rss, err := testutil.ProcStatusKiB(0, "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("own VmRSS: %d, %v", rss, err)
	}
	hwm, err := testutil.ProcStatusKiB(os.Getpid(), "VmHWM")
	if err != nil || hwm < rss {
		t.Errorf("own VmHWM by pid: %d, %v; want at least VmRSS %d", hwm, err, rss)
	}
	if _, err := testutil.ProcStatusKiB(0, "NoSuchField"); err == nil {
		t.Error("a missing field: no error")
	}
}
