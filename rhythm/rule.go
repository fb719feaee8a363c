package rhythm

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rule is a list's recurring send: the Nth weekday of every month at a
// time of day in a time zone ("the first Tuesday at 10:00 Asia/Tokyo"),
// with months to skip and a reminder to editors before each run whose
// issue is not ready.
type Rule struct {
	List    string       `json:"list"`
	Enabled bool         `json:"enabled"`
	Nth     int          `json:"nth"` // 1–4, or -1 for the last
	Weekday time.Weekday `json:"weekday"`
	Hour    int          `json:"hour"`
	Minute  int          `json:"minute"`
	// Zone is an IANA zone name. Default Asia/Tokyo.
	Zone string `json:"zone"`
	// Skip lists months ("2026-08") with no send.
	Skip []string `json:"skip,omitempty"`
	// RemindDays is how many days before a run the editors are reminded
	// when its issue is not ready; 0 sends no reminder.
	RemindDays int `json:"remind_days"`
	// RemindTo are the editors' addresses.
	RemindTo []string `json:"remind_to,omitempty"`
}

// Validate lists every problem of r, by field.
func (r Rule) Validate() map[string]string {
	p := map[string]string{}
	if r.List == "" {
		p["list"] = "the list is required"
	}
	if r.Nth != -1 && (r.Nth < 1 || r.Nth > 4) {
		p["nth"] = "want 1 to 4, or -1 for the last"
	}
	if r.Weekday < time.Sunday || r.Weekday > time.Saturday {
		p["weekday"] = "want 0 (Sunday) to 6 (Saturday)"
	}
	if r.Hour < 0 || r.Hour > 23 || r.Minute < 0 || r.Minute > 59 {
		p["time"] = "want a time of day from 00:00 to 23:59"
	}
	if _, err := r.location(); err != nil {
		p["zone"] = err.Error()
	}
	if r.RemindDays < 0 || r.RemindDays > 27 {
		p["remind_days"] = "want 0 to 27 days"
	}
	if r.RemindDays > 0 && len(r.RemindTo) == 0 {
		p["remind_to"] = "a reminder needs at least one address"
	}
	for _, a := range r.RemindTo {
		if !strings.Contains(a, "@") || strings.ContainsAny(a, " \r\n<>,") {
			p["remind_to"] = fmt.Sprintf("%q is not an address", a)
		}
	}
	for _, m := range r.Skip {
		if _, err := time.Parse("2006-01", m); err != nil {
			p["skip"] = fmt.Sprintf("%q is not a month like 2026-08", m)
		}
	}
	return p
}

func (r Rule) location() (*time.Location, error) {
	if r.Zone == "" {
		return time.LoadLocation("Asia/Tokyo")
	}
	return time.LoadLocation(r.Zone)
}

// In returns the run of r in the month of year y, month m (whether or
// not it is skipped).
func (r Rule) In(y int, m time.Month) time.Time {
	loc, err := r.location()
	if err != nil {
		loc = time.UTC
	}
	if r.Nth == -1 {
		last := time.Date(y, m+1, 0, r.Hour, r.Minute, 0, 0, loc)
		back := (int(last.Weekday()) - int(r.Weekday) + 7) % 7
		return last.AddDate(0, 0, -back)
	}
	first := time.Date(y, m, 1, r.Hour, r.Minute, 0, 0, loc)
	ahead := (int(r.Weekday) - int(first.Weekday()) + 7) % 7
	return first.AddDate(0, 0, ahead+7*(r.Nth-1))
}

// Month names the month of a run, "2026-01": the slug.
func (r Rule) Month(run time.Time) string {
	loc, err := r.location()
	if err != nil {
		loc = time.UTC
	}
	return run.In(loc).Format("2006-01")
}

// Skipped reports whether month ("2026-01") is skipped.
func (r Rule) Skipped(month string) bool { return slices.Contains(r.Skip, month) }

// Next returns the first run of r strictly after t that is not skipped
// (the zero time if every month of the next ten years is).
func (r Rule) Next(t time.Time) time.Time {
	loc, err := r.location()
	if err != nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, m := lt.Year(), lt.Month()
	for range 120 {
		run := r.In(y, m)
		if run.After(t) && !r.Skipped(r.Month(run)) {
			return run
		}
		m++
		if m > time.December {
			y, m = y+1, time.January
		}
	}
	return time.Time{}
}
