package subscribers_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
)

// Every change that decides whether and what a reader is sent (status,
// list membership, preferences, address, name) enters the change log,
// from whichever method makes it; reading or a change to nothing does
// not; ChangedSince lists each changed subscriber once, from a mark.
func TestChangeLogRecordsWhatASendMustSee(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			ctx := context.Background()
			s := e.store
			mark := func() int64 {
				t.Helper()
				m, err := s.ChangeMark(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			since := func(m int64) ([]int64, int64) {
				t.Helper()
				ids, next, complete, err := s.ChangedSince(ctx, m)
				if err != nil || !complete {
					t.Fatalf("ChangedSince(%d): %v, complete %v", m, err, complete)
				}
				slices.Sort(ids)
				return ids, next
			}
			a := mustActive(t, s, subscribers.NewSubscriber{Email: "a@example.jp"})
			b := mustActive(t, s, subscribers.NewSubscriber{Email: "b@example.jp"})
			c := mustActive(t, s, subscribers.NewSubscriber{Email: "c@example.jp"})

			m0 := mark()
			if ids, next := since(m0); len(ids) != 0 || next != m0 {
				t.Fatalf("changes after the mark with none: %v, next %d", ids, next)
			}
			// Reads and changes to nothing enter nothing.
			if _, err := s.Get(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Update(ctx, a.ID, subscribers.Update{Prefs: &a.Prefs}); err != nil {
				t.Fatal(err)
			}
			if m := mark(); m != m0 {
				t.Errorf("a read and an update to the same preferences moved the mark from %d to %d", m0, m)
			}
			// One-click unsubscribe (the web's), a preference change, a bounce.
			tok, err := s.UnsubscribeToken(a.PublicID, subscribers.DefaultList)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.UnsubscribeByToken(ctx, tok, "one-click"); err != nil {
				t.Fatal(err)
			}
			us := audience.Prefs{Regions: []audience.Region{"us"}, Topics: []audience.Topic{"policy", "ai-safety-jp"}}
			if _, err := s.Update(ctx, b.ID, subscribers.Update{Prefs: &us}); err != nil {
				t.Fatal(err)
			}
			ids, m1 := since(m0)
			if !slices.Equal(ids, []int64{a.ID, b.ID}) || m1 <= m0 {
				t.Errorf("after an unsubscribe and a preference change: %v (mark %d → %d), want [%d %d]", ids, m0, m1, a.ID, b.ID)
			}
			if err := s.MarkBounced(ctx, c.ID, "5.1.1"); err != nil {
				t.Fatal(err)
			}
			if ids, _ := since(m1); !slices.Equal(ids, []int64{c.ID}) {
				t.Errorf("after a bounce: %v, want [%d]", ids, c.ID)
			}
			if ids, _ := since(m0); !slices.Equal(ids, []int64{a.ID, b.ID, c.ID}) {
				t.Errorf("everything since the first mark: %v, want each once", ids)
			}
			m2 := mark()
			if err := s.Erase(ctx, b.ID, "request"); err != nil {
				t.Fatal(err)
			}
			if ids, _ := since(m2); !slices.Equal(ids, []int64{b.ID}) {
				t.Errorf("after an erasure: %v, want [%d]", ids, b.ID)
			}
		})
	}
}

// A mark older than what the log keeps is reported incomplete, so that
// the reader re-reads everyone.
func TestChangeLogTrimmedPastAMarkIsIncomplete(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			ctx := context.Background()
			a := mustActive(t, e.store, subscribers.NewSubscriber{Email: "a@example.jp"})
			m0, err := e.store.ChangeMark(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Update(ctx, a.ID, subscribers.Update{Name: ptr("新しい名前")}); err != nil {
				t.Fatal(err)
			}
			// Entries up to and after m0 trimmed away, as the log trims itself.
			if _, err := e.db.ExecContext(ctx, `DELETE FROM subscriber_changes WHERE seq <= $1`, m0+1); err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.Update(ctx, a.ID, subscribers.Update{Name: ptr("また別の名前")}); err != nil {
				t.Fatal(err)
			}
			if _, _, complete, err := e.store.ChangedSince(ctx, m0); err != nil || complete {
				t.Errorf("ChangedSince a trimmed mark: complete %v, %v; want incomplete", complete, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
