package subscribers

import (
	"strings"
	"testing"
)

// TestAllowed is the status state machine as a table: rows are the current
// status, columns the target, for an ordinary change and for a fresh
// double opt-in.
func TestAllowed(t *testing.T) {
	P, A, U, B, C := Pending, Active, Unsubscribed, Bounced, Complained
	cases := []struct {
		from, to        Status
		ordinary, optIn bool
	}{
		{P, P, true, true}, {P, A, true, true}, {P, U, true, true}, {P, B, true, true}, {P, C, true, true},
		{A, P, false, false}, {A, A, true, true}, {A, U, true, true}, {A, B, true, true}, {A, C, true, true},
		{U, P, false, false}, {U, A, false, true}, {U, U, true, true}, {U, B, true, true}, {U, C, true, true},
		{B, P, false, false}, {B, A, false, true}, {B, U, false, false}, {B, B, true, true}, {B, C, true, true},
		{C, P, false, false}, {C, A, false, true}, {C, U, false, false}, {C, B, false, false}, {C, C, true, true},
	}
	if len(cases) != len(Statuses)*len(Statuses) {
		t.Fatalf("table covers %d of %d pairs", len(cases), len(Statuses)*len(Statuses))
	}
	for _, c := range cases {
		if got := allowed(c.from, c.to, false); got != c.ordinary {
			t.Errorf("allowed(%s → %s) = %v, want %v", c.from, c.to, got, c.ordinary)
		}
		if got := allowed(c.from, c.to, true); got != c.optIn {
			t.Errorf("allowed(%s → %s, fresh opt-in) = %v, want %v", c.from, c.to, got, c.optIn)
		}
	}
}

func TestPrefsMaskRoundTrip(t *testing.T) {
	for r := range 1 << 5 {
		for tp := range 1 << 3 {
			p := prefsOf(int64(r), int64(tp), []string{"gpu", "semis"})
			gr, gt, custom := maskOf(p)
			if gr != int64(r) || gt != int64(tp) || len(custom) != 2 || custom[0] != "gpu" {
				t.Fatalf("masks %d,%d → %v → %d,%d,%v", r, tp, p, gr, gt, custom)
			}
		}
	}
}

func TestIsHexSHA256(t *testing.T) {
	ok := strings.Repeat("0123456789abcdef", 4)
	for s, want := range map[string]bool{
		ok:                      true,
		strings.ToUpper(ok):     false, // the import lower-cases first; the API does not
		ok[:63]:                 false,
		ok + "0":                false,
		ok[:63] + "g":           false,
		ok[:63] + "/":           false, // just below '0'
		ok[:63] + ":":           false, // just above '9'
		ok[:63] + "`":           false, // just below 'a'
		ok[:62] + "é":           false, // two bytes, same length
		"":                      false,
		strings.Repeat("f", 64): true,
		strings.Repeat("0", 64): true,
	} {
		if got := isHexSHA256(s); got != want {
			t.Errorf("isHexSHA256(%q) = %v, want %v", s, got, want)
		}
	}
}
