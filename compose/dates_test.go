package compose_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
)

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

func TestParseDates(t *testing.T) {
	tests := []struct {
		in       string
		days     []time.Time
		from, to time.Time
	}{
		{in: "2025/11/12", days: []time.Time{day(2025, 11, 12)}},
		{in: "2025/1/2", days: []time.Time{day(2025, 1, 2)}},
		{in: "2025/11/04、21", days: []time.Time{day(2025, 11, 4), day(2025, 11, 21)}},
		{in: "2025/11/04,21,12/01", days: []time.Time{day(2025, 11, 4), day(2025, 11, 21), day(2025, 12, 1)}},
		{in: "２０２５／１１／０４", days: []time.Time{day(2025, 11, 4)}},
		{in: "2025年11月4日", days: []time.Time{day(2025, 11, 4)}},
		{in: "2025/09/30~10/02", from: day(2025, 9, 30), to: day(2025, 10, 2)},
		{in: "2025/09/30～10/02", from: day(2025, 9, 30), to: day(2025, 10, 2)},
		{in: "2025/09/30〜10/02", from: day(2025, 9, 30), to: day(2025, 10, 2)},
		{in: "2025/12/30~2026/01/02", from: day(2025, 12, 30), to: day(2026, 1, 2)},
		{in: "2025/11/3~5", from: day(2025, 11, 3), to: day(2025, 11, 5)},
		{in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := compose.ParseDates(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Text != tt.in || fmt.Sprint(d.Days) != fmt.Sprint(tt.days) || !d.From.Equal(tt.from) || !d.To.Equal(tt.to) {
				t.Errorf("got %+v", d)
			}
		})
	}
}

func TestParseDatesErrors(t *testing.T) {
	for _, in := range []string{
		"2025/13/01",       // no month 13
		"2025/02/30",       // no such day
		"11/04",            // no year
		"2025/11/04、x",     // not a number
		"2025/10/02~09/30", // range backwards
		"2025/11",          // no day
		"2025/11/04~",      // open range
		"10000/1/1",        // year too long
		"2025/-1/1",        // sign
		"2025/1/1/1",       // too many parts
	} {
		if d, err := compose.ParseDates(in); err == nil {
			t.Errorf("ParseDates(%q) = %+v, want an error", in, d)
		}
	}
}

func TestDatesSpan(t *testing.T) {
	d, _ := compose.ParseDates("2025/11/21、04")
	first, last, ok := d.Span()
	if !ok || !first.Equal(day(2025, 11, 4)) || !last.Equal(day(2025, 11, 21)) {
		t.Errorf("span %v %v %v", first, last, ok)
	}
	if _, _, ok := (compose.Dates{}).Span(); ok {
		t.Error("zero dates have a span")
	}
}

func ExampleParseDates() {
	d, _ := compose.ParseDates("2025/09/30~10/02")
	fmt.Println(d.From.Format("2006-01-02"), d.To.Format("2006-01-02"))
	d, _ = compose.ParseDates("2025/11/04、21")
	fmt.Println(len(d.Days), d.Days[1].Format("2006-01-02"))
	// Output:
	// 2025-09-30 2025-10-02
	// 2 2025-11-21
}
