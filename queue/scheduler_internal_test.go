package queue

import (
	"testing"
	"time"
)

func TestLastTick(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, tokyo)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		spec, now, want string // want "": no tick
	}{
		{"0 9 1 * *", "2026-05-01 10:00", "2026-05-01 09:00"},
		{"0 9 1 * *", "2026-05-01 09:00", "2026-05-01 09:00"},
		{"0 9 1 * *", "2026-05-01 08:59", ""},
		{"0 9 1 * *", "2026-05-01 15:30", ""}, // 6 h 30 ago: past NotAfter
		{"0 9 1 * *", "2026-05-20 10:00", ""},
		{"@every 1s", "2026-05-01 10:00", ""}, // too frequent to look back over
		{"not a spec", "2026-05-01 10:00", ""},
	} {
		got, ok := lastTick(c.spec, tokyo, at(c.now), 6*time.Hour)
		if c.want == "" {
			if ok {
				t.Errorf("%q at %s: tick %v, want none", c.spec, c.now, got)
			}
			continue
		}
		if !ok || !got.Equal(at(c.want)) {
			t.Errorf("%q at %s: %v (%v), want %s", c.spec, c.now, got, ok, c.want)
		}
	}
}

// TestMonthlyTick: a monthly task stands for its spec's latest tick, so a
// tick at 23:50 on the 30th handled at 00:10 on the 1st makes the month
// of the 30th; a task handled past NotAfter after its tick is late.
func TestMonthlyTick(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, tokyo)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		spec, now, wantTick string
		late                bool
	}{
		{"50 23 30 11 *", "2025-12-01 00:10", "2025-11-30 23:50", false},
		{"0 9 1 * *", "2026-05-01 09:00", "2026-05-01 09:00", false},
		{"0 9 1 * *", "2026-05-01 09:20", "2026-05-01 09:00", false},
		{"0 9 1 * *", "2026-05-01 16:00", "2026-05-01 09:00", true}, // 7 h after: past NotAfter
		{"0 9 1 * *", "2026-05-20 10:00", "2026-05-01 09:00", true},
		{"@every 1s", "2026-05-01 10:00", "2026-05-01 10:00", false}, // stands for now
		{"", "2026-05-01 10:00", "2026-05-01 10:00", false},
	} {
		tick, late := monthlyTick(c.spec, tokyo, at(c.now), 6*time.Hour)
		if !tick.Equal(at(c.wantTick)) || late != c.late {
			t.Errorf("%q handled at %s: tick %v late %v, want %s late %v", c.spec, c.now, tick, late, c.wantTick, c.late)
		}
		if got := tick.Format("2006-01"); got != c.wantTick[:7] {
			t.Errorf("%q handled at %s: month %s, want %s", c.spec, c.now, got, c.wantTick[:7])
		}
	}
}
