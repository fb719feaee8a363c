package chaos_test

import (
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/chaos"
)

// TestChaosShort is the short chaos run of make test: the real tayori
// binary (built from this tree), a Redis of its own with AOF, the fault
// relay and a tmpfs data disk (root needed: it fails, never skips,
// without), 1,500 readers, one SIGKILL of a worker, one Redis restart
// with its data, the relay down for 5 s, 5 one-click unsubscribes and
// the relay's error mix. It asserts the pass rules of make chaos: 0 lost,
// every 5xx recorded, duplicates within the copies in flight, no copy
// more than about a second after an unsubscribe, and a send that
// finishes.
func TestChaosShort(t *testing.T) {
	repo, err := chaos.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := chaos.Build(t.Context(), repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaos.Short()
	cfg.Tayori, cfg.Repo = bin, repo
	cfg.Log = logWriter{t}
	rep, err := chaos.Run(t.Context(), cfg)
	if rep != nil {
		var b strings.Builder
		rep.WriteMarkdown(&b, "Chaos run, short")
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Failures {
		t.Error(f)
	}
}

// logWriter passes the run's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
