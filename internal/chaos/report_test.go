package chaos

import (
	"strings"
	"testing"
	"time"
)

// The pass rules: each broken rule is named, and a clean report passes.
func TestReportRules(t *testing.T) {
	clean := Report{DryRun: 100, Planned: 100, Expected: 95, ExactlyOnce: 95, Answered5xx: 2, Recorded5xx: 2,
		ExtraCopies: 3, InFlightKills: 2, InFlightOutage: 1, UnsubTried: 3, Unsubscribed: 3, Finished: true,
		LateTolerance: time.Second}
	if f := clean.rules(); len(f) != 0 {
		t.Fatalf("a clean run fails: %v", f)
	}
	for _, tc := range []struct {
		name   string
		change func(*Report)
		want   string
	}{
		{"lost", func(r *Report) { r.Lost = 4; r.LostByLedger = map[string]int{"retry": 4} }, "4 readers lost"},
		{"5xx", func(r *Report) { r.Recorded5xx = 1 }, "1 of the 2 readers the relay answered 5xx"},
		{"duplicates", func(r *Report) { r.ExtraCopies = 4 }, "4 duplicate copies, more than the 3 in flight"},
		{"unexplained duplicates", func(r *Report) { r.UnexplainedExtra = 1 }, "1 extra copies were not in flight"},
		{"late", func(r *Report) { r.Late = []LateCopy{{Addr: "a", After: 15800 * time.Millisecond}} }, "up to 15.8s"},
		{"unsubscribe refused", func(r *Report) { r.Unsubscribed = 2 }, "1 of 3 one-click unsubscribes"},
		{"planned", func(r *Report) { r.Planned = 90 }, "planned 90 readers; the dry run counted 100"},
		{"unfinished", func(r *Report) { r.Finished = false; r.FinalState = "sending" }, `did not finish: the store says "sending"`},
		{"void", func(r *Report) { r.NotPlayed = []string{"kill at 3m"} }, "void for 1 faults"},
	} {
		r := clean
		tc.change(&r)
		f := r.rules()
		r.Failures = f
		if len(f) != 1 || !strings.Contains(f[0], tc.want) {
			t.Errorf("%s: rules = %q, want one containing %q", tc.name, f, tc.want)
		}
		if r.Pass() {
			t.Errorf("%s: passes", tc.name)
		}
	}
}

func TestDurationsRoundTrip(t *testing.T) {
	ds, err := ParseDurations("10s, 45s,1m30s")
	if err != nil || len(ds) != 3 || ds[2] != 90*time.Second {
		t.Fatalf("ParseDurations = %v, %v", ds, err)
	}
	if s := FormatDurations(ds); s != "10s,45s,1m30s" {
		t.Errorf("FormatDurations = %q", s)
	}
	if ds, err := ParseDurations("none"); err != nil || len(ds) != 0 {
		t.Errorf("none: %v, %v", ds, err)
	}
	if _, err := ParseDurations("10s,soon"); err == nil || !strings.Contains(err.Error(), `item 2 "soon"`) {
		t.Errorf("a bad item: %v", err)
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10000: "10,000", 1234567: "1,234,567", -4063: "-4,063"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}

// The scenario line names the faults played and leaves out the others.
func TestDescribe(t *testing.T) {
	got := Full().describe()
	for _, want := range []string{"10,000 readers, TAYORI_RATE 40", "10% of RCPTs 451 (an address's first 2)", "1% of readers 550 5.1.1",
		"refused chunks as-commands", "SIGKILL of a worker at 10s,45s,1m45s,3m0s,3m20s", "Redis replaced by an empty one at 3m40s",
		"relay down at 1m50s for 1m0s", "100 one-click unsubscribes", "data disk (64 MiB) full at 55s for 15s", "seed 18"} {
		if !strings.Contains(got, want) {
			t.Errorf("Full().describe() = %q\nlacks %q", got, want)
		}
	}
	if got := Short().describe(); strings.Contains(got, "disk") || strings.Contains(got, "empty") {
		t.Errorf("Short().describe() = %q: names faults the short scenario does not play", got)
	}
}
