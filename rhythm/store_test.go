package rhythm_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/rhythm"
)

// TestStore: rules round-trip and a save replaces; a claim is recorded
// once per list, month and kind, and an unclaimed one can be claimed
// again, on each engine.
func TestStore(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			st := store.Rhythm(testutil.OpenStore(t, eng))
			now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
			if _, ok, err := st.Rule(ctx, "monthly"); err != nil || ok {
				t.Fatalf("Rule of a list without one: ok %v, %v", ok, err)
			}
			r := rhythm.Rule{List: "monthly", Enabled: true, Nth: 1, Weekday: time.Tuesday, Hour: 10, RemindDays: 3,
				RemindTo: []string{"編集部@example.jp"}, Skip: []string{"2027-02"}}
			if err := st.SaveRule(ctx, r, "花子", now); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveRule(ctx, rhythm.Rule{List: "aaa", Nth: 2, Weekday: time.Friday}, "花子", now); err != nil {
				t.Fatal(err)
			}
			got, ok, err := st.Rule(ctx, "monthly")
			if err != nil || !ok || !reflect.DeepEqual(got, r) {
				t.Fatalf("Rule = %+v, %v, %v; want %+v", got, ok, err, r)
			}
			r.Hour, r.Skip = 8, nil
			if err := st.SaveRule(ctx, r, "太郎", now); err != nil {
				t.Fatal(err)
			}
			rules, err := st.Rules(ctx)
			if err != nil || len(rules) != 2 || rules[0].List != "aaa" || !reflect.DeepEqual(rules[1], r) {
				t.Fatalf("Rules = %+v, %v", rules, err)
			}

			for i, want := range []bool{true, false} {
				if ok, err := st.Claim(ctx, "monthly", "2027-01", "send", now); err != nil || ok != want {
					t.Errorf("Claim #%d = %v, %v; want %v", i+1, ok, err, want)
				}
			}
			if ok, err := st.Claim(ctx, "monthly", "2027-01", "reminder", now); err != nil || !ok {
				t.Errorf("Claim of the reminder = %v, %v; want true", ok, err)
			}
			if _, err := st.Claim(ctx, "monthly", "2027-01", "bogus", now); err == nil {
				t.Error("a claim of an unknown kind was recorded")
			}
			if err := st.Unclaim(ctx, "monthly", "2027-01", "send"); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.Claim(ctx, "monthly", "2027-01", "send", now); err != nil || !ok {
				t.Errorf("Claim after Unclaim = %v, %v; want true", ok, err)
			}
		})
	}
}
