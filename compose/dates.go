package compose

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errDates is wrapped by every date parsing error.
var errDates = errors.New("bad dates")

// rangeSeps separate the two ends of a range: ASCII tilde, full-width
// tilde and wave dash, as editors type them.
var rangeSeps = []string{"~", "～", "〜"}

// CanonicalPeriod writes a period's range separator as the ASCII tilde:
// "11月1日〜11月30日" (wave dash U+301C) and "11月1日～11月30日" (full-width
// tilde U+FF5E) are the same period as "11月1日~11月30日", so sections
// that mix them still share the issue's period.
func CanonicalPeriod(p string) string {
	if !strings.ContainsAny(p, "〜～") {
		return p
	}
	return strings.NewReplacer("〜", "~", "～", "~").Replace(p)
}

// listSeps separate several dates of one item.
var listSeps = []string{"、", "，", ","}

// ParseDates parses an item's dates as written: one date "2025/11/12",
// several "2025/11/04、21" (a later date may omit the year, or the year
// and month, of the one before it), or a range "2025/09/30~10/02" with
// "~", "～" or "〜". Full-width digits and "2025年11月4日" are accepted too.
// The empty string gives zero Dates and no error.
func ParseDates(text string) (Dates, error) {
	d := Dates{Text: text}
	s := normalizeDateText(text)
	if s == "" {
		return d, nil
	}
	for _, sep := range rangeSeps {
		from, to, ok := strings.Cut(s, sep)
		if !ok {
			continue
		}
		f, err := parseDate(from, time.Time{})
		if err != nil {
			return Dates{}, fmt.Errorf("%w %q: %w", errDates, text, err)
		}
		t, err := parseDate(to, f)
		if err != nil {
			return Dates{}, fmt.Errorf("%w %q: %w", errDates, text, err)
		}
		if t.Before(f) {
			return Dates{}, fmt.Errorf("%w %q: range ends before it starts", errDates, text)
		}
		d.From, d.To = f, t
		return d, nil
	}
	parts := []string{s}
	for _, sep := range listSeps {
		var next []string
		for _, p := range parts {
			next = append(next, strings.Split(p, sep)...)
		}
		parts = next
	}
	var prev time.Time
	for _, p := range parts {
		day, err := parseDate(p, prev)
		if err != nil {
			return Dates{}, fmt.Errorf("%w %q: %w", errDates, text, err)
		}
		d.Days = append(d.Days, day)
		prev = day
	}
	return d, nil
}

// IsZero reports whether no date was given.
func (d Dates) IsZero() bool { return len(d.Days) == 0 && d.From.IsZero() }

// Span returns the first and last day the dates cover; ok is false when
// there are none.
func (d Dates) Span() (first, last time.Time, ok bool) {
	if !d.From.IsZero() {
		return d.From, d.To, true
	}
	for i, t := range d.Days {
		if i == 0 || t.Before(first) {
			first = t
		}
		if i == 0 || t.After(last) {
			last = t
		}
	}
	return first, last, len(d.Days) > 0
}

// normalizeDateText maps full-width digits and slashes to ASCII, turns
// 年/月 into "/", drops 日 and spaces.
func normalizeDateText(s string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r >= '０' && r <= '９':
			b.WriteRune('0' + r - '０')
		case r == '／' || r == '年' || r == '月':
			b.WriteByte('/')
		case r == '日' || r == ' ' || r == '\t' || r == '　':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// parseDate parses "Y/M/D", or "M/D" or "D" relative to prev (which must
// then be set).
func parseDate(s string, prev time.Time) (time.Time, error) {
	fields := strings.Split(s, "/")
	nums := make([]int, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || f == "" || len(f) > 4 || f[0] == '+' || f[0] == '-' {
			return time.Time{}, fmt.Errorf("%q is not a date", s)
		}
		nums[i] = n
	}
	var y, m, day int
	switch len(nums) {
	case 3:
		y, m, day = nums[0], nums[1], nums[2]
	case 2:
		if prev.IsZero() {
			return time.Time{}, fmt.Errorf("%q has no year", s)
		}
		y, m, day = prev.Year(), nums[0], nums[1]
	case 1:
		if prev.IsZero() {
			return time.Time{}, fmt.Errorf("%q has no year and month", s)
		}
		y, m, day = prev.Year(), int(prev.Month()), nums[0]
	default:
		return time.Time{}, fmt.Errorf("%q is not a date", s)
	}
	if y < 1900 || y > 2999 {
		return time.Time{}, fmt.Errorf("year %d out of range", y)
	}
	t := time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != day {
		return time.Time{}, fmt.Errorf("%q is not a valid date", s)
	}
	return t, nil
}

// parsePeriod parses a section's period as written ("11月1日~11月30日",
// "9/30～10/2", "2025年12月1日〜2026年1月31日"). Parts without a year take
// year; an end before the start moves to the next year.
func parsePeriod(text string, year int) (from, to time.Time, err error) {
	s := normalizeDateText(text)
	for _, sep := range rangeSeps {
		a, b, ok := strings.Cut(s, sep)
		if !ok {
			continue
		}
		anchor := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
		if strings.Count(a, "/") < 2 {
			a = strconv.Itoa(year) + "/" + a
		}
		if from, err = parseDate(strings.Trim(a, "/"), anchor); err != nil {
			return time.Time{}, time.Time{}, err
		}
		explicit := strings.Count(strings.Trim(b, "/"), "/") == 2
		if to, err = parseDate(strings.Trim(b, "/"), from); err != nil {
			return time.Time{}, time.Time{}, err
		}
		if to.Before(from) && !explicit {
			to = to.AddDate(1, 0, 0)
		}
		if to.Before(from) {
			return time.Time{}, time.Time{}, fmt.Errorf("period %q ends before it starts", text)
		}
		return from, to, nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("period %q is not a range", text)
}

// PeriodRange returns the days the issue covers: its Period read in the
// issue's year (the slug's, else the first dated item's; a December
// period in a January issue is the year before), else the month of a
// "YYYY-MM" slug. ok is false when neither tells.
func (is *Issue) PeriodRange() (from, to time.Time, ok bool) {
	if year := issueYear(is); is.Period != "" && year > 0 {
		if f, t, err := parsePeriod(is.Period, year); err == nil {
			if end, ok := slugMonthEnd(is.Slug); ok && f.After(end) {
				f, t = f.AddDate(-1, 0, 0), t.AddDate(-1, 0, 0)
			}
			return f, t, true
		}
	}
	if end, ok := slugMonthEnd(is.Slug); ok {
		return time.Date(end.Year(), end.Month(), 1, 0, 0, 0, 0, time.UTC), end, true
	}
	return time.Time{}, time.Time{}, false
}
