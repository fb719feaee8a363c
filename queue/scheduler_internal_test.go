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
