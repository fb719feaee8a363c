package rhythm_test

import (
	"testing"
	"time"

	"github.com/tayori-news/tayori/rhythm"
)

var tokyo = func() *time.Location { l, _ := time.LoadLocation("Asia/Tokyo"); return l }()

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, tokyo)
	if err != nil {
		panic(err)
	}
	return t
}

// TestNext: the first Tuesday at 10:00 Tokyo, across a month boundary and
// the year end, with Tokyo's fixed offset (no daylight saving: 10:00 JST
// is 01:00 UTC all year).
func TestNext(t *testing.T) {
	r := rhythm.Rule{List: "monthly", Enabled: true, Nth: 1, Weekday: time.Tuesday, Hour: 10}
	for _, tc := range []struct{ now, want string }{
		{"2026-12-01 09:59", "2026-12-01 10:00"}, // the same day, just before
		{"2026-12-01 10:00", "2027-01-05 10:00"}, // at the run: the next month's, across the year end
		{"2026-12-20 00:00", "2027-01-05 10:00"},
		{"2027-01-31 23:59", "2027-02-02 10:00"}, // across a month boundary
		{"2027-03-02 10:01", "2027-04-06 10:00"},
		{"2027-07-01 00:00", "2027-07-06 10:00"}, // summer: no DST shift in Tokyo
	} {
		got := r.Next(at(tc.now))
		if !got.Equal(at(tc.want)) {
			t.Errorf("Next(%s) = %s, want %s", tc.now, got.In(tokyo).Format("2006-01-02 15:04"), tc.want)
		}
		if got.UTC().Hour() != 1 || got.UTC().Minute() != 0 {
			t.Errorf("Next(%s) = %s UTC, want 01:00 UTC (JST is UTC+9 all year)", tc.now, got.UTC())
		}
	}
	// From a UTC instant on the previous day in UTC but the 1st in Tokyo.
	if got := r.Next(time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)); !got.Equal(at("2026-12-01 10:00")) {
		t.Errorf("Next(2026-11-30 20:00 UTC) = %s", got)
	}
	// The last Friday at 17:30.
	last := rhythm.Rule{List: "m", Nth: -1, Weekday: time.Friday, Hour: 17, Minute: 30}
	if got := last.Next(at("2026-12-26 00:00")); !got.Equal(at("2027-01-29 17:30")) {
		t.Errorf("last Friday after 2026-12-26: %s", got)
	}
	if got := last.Next(at("2026-12-01 00:00")); !got.Equal(at("2026-12-25 17:30")) {
		t.Errorf("last Friday of December 2026: %s", got)
	}
}

func TestNextSkips(t *testing.T) {
	r := rhythm.Rule{List: "monthly", Nth: 1, Weekday: time.Tuesday, Hour: 10, Skip: []string{"2027-01"}}
	if got := r.Next(at("2026-12-01 10:00")); !got.Equal(at("2027-02-02 10:00")) {
		t.Errorf("Next with January skipped = %s, want 2027-02-02 10:00", got)
	}
}

func TestValidate(t *testing.T) {
	p := rhythm.Rule{Nth: 5, Weekday: 9, Hour: 24, Zone: "Mars/Base", RemindDays: 3, Skip: []string{"2026-13"}}.Validate()
	for _, f := range []string{"list", "nth", "weekday", "time", "zone", "remind_to", "skip"} {
		if p[f] == "" {
			t.Errorf("no problem reported for %s (%v)", f, p)
		}
	}
	if p := (rhythm.Rule{List: "m", Nth: 1, Hour: 10, RemindDays: 3, RemindTo: []string{"editor@example.jp"}}).Validate(); len(p) != 0 {
		t.Errorf("a good rule: %v", p)
	}
}
