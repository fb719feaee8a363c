package web_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/web"
)

// mdIssue returns a small issue in the editor's format and its parse.
func mdIssue(t testing.TB, slug, title string) ([]byte, *compose.Issue) {
	t.Helper()
	src := []byte("---\nnewsletter: AI政策動向\nslug: " + slug + "\ntitle: " + title + "\n---\n\n" +
		"## 国内AI政策動向 {region=jp kind=policy}\n\n### (2025/11/04) 総務省、会合を開催\n\n- https://www.soumu.go.jp/\n")
	is, err := compose.ParseMarkdown(slug+".md", src)
	if err != nil {
		t.Fatal(err)
	}
	return src, is
}

func TestStoreRevisions(t *testing.T) { onEngines(t, testStoreRevisions) }

func testStoreRevisions(t *testing.T, e storeEnv) {
	s, ctx := e.store, e.ctx
	src1, is1 := mdIssue(t, "2025-11", "十一月号")
	r1, err := s.CreateIssue(ctx, web.NewRevision{Slug: "2025-11", Kind: web.KindNew, Author: "hanako",
		SourceName: "2025-11.md", Source: src1, Issue: is1})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Number != 1 || r1.Author != "hanako" || r1.Kind != web.KindNew || !bytes.Equal(r1.Source, src1) || !r1.Valid {
		t.Fatalf("revision 1: %+v", r1)
	}
	if _, err := s.CreateIssue(ctx, web.NewRevision{Slug: "2025-11", Kind: web.KindNew, SourceName: "x.md", Source: src1, Issue: is1}); !errors.Is(err, web.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if _, err := s.CreateIssue(ctx, web.NewRevision{Slug: "2025-12", Kind: web.KindNew, SourceName: "x.md", Source: src1}); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("create without a parse: %v", err)
	}

	// A save on the head is revision 2 and becomes the issue.
	e.clock.Advance(time.Minute)
	src2, is2 := mdIssue(t, "2025-11", "十一月号（改）")
	r2, err := s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 1, Kind: web.KindSave, Author: "taro",
		SourceName: "2025-11.md", Source: src2, Issue: is2})
	if err != nil || r2.Number != 2 || r2.Base != 1 || r2.Author != "taro" {
		t.Fatalf("save: %+v %v", r2, err)
	}
	if got := must[*web.StoredIssue](t)(s.Issue(ctx, "2025-11")); got.Title != "十一月号（改）" || !bytes.Equal(got.Source, src2) {
		t.Errorf("issue after save: %q", got.Title)
	}
	// The same source again stores nothing.
	if r, err := s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 2, Kind: web.KindAutosave, Author: "taro",
		SourceName: "2025-11.md", Source: src2, Issue: is2}); err != nil || r.Number != 2 {
		t.Errorf("unchanged save: %+v %v", r, err)
	}
	// A save based on revision 1 is a conflict that names the head.
	_, err = s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 1, Kind: web.KindSave, Author: "hanako",
		SourceName: "2025-11.md", Source: src1, Issue: is1})
	var ce *web.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, web.ErrConflict) || ce.Head.Number != 2 || ce.Head.Author != "taro" || !bytes.Equal(ce.Head.Source, src2) {
		t.Fatalf("stale save: %v", err)
	}
	// A draft that does not parse is kept but is not the issue.
	broken := append(bytes.Clone(src2), "\n### (2025/13/45) 日付が変\n"...)
	r3, err := s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 2, Kind: web.KindAutosave, Author: "taro",
		SourceName: "2025-11.md", Source: broken})
	if err != nil || r3.Number != 3 || r3.Valid {
		t.Fatalf("broken draft: %+v %v", r3, err)
	}
	st := must[web.IssueState](t)(s.IssueState(ctx, "2025-11"))
	if st.Head != 3 || st.Valid != 2 || st.Locked() {
		t.Errorf("state %+v", st)
	}
	if got := must[*web.StoredIssue](t)(s.Issue(ctx, "2025-11")); got.Title != "十一月号（改）" {
		t.Errorf("a broken draft replaced the issue: %q", got.Title)
	}
	list := must[[]*web.Revision](t)(s.Revisions(ctx, "2025-11"))
	if len(list) != 3 || list[0].Number != 3 || list[2].Number != 1 || list[0].Source != nil || list[0].Size != len(broken) {
		t.Errorf("revisions: %+v", list)
	}
	if _, err := s.Revisions(ctx, "nope"); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("revisions of a missing issue: %v", err)
	}
	if _, err := s.SaveRevision(ctx, web.NewRevision{Slug: "nope", Base: 1, Kind: web.KindSave, SourceName: "x", Source: src1}); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("save to a missing issue: %v", err)
	}

	// Sent: locked; a correction is a new revision, the sent one is kept.
	if err := s.MarkSent(ctx, "2025-11", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, "2025-11", 3); err != nil { // a second send keeps the first record
		t.Fatal(err)
	}
	if _, err := s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 3, Kind: web.KindSave, Author: "taro",
		SourceName: "2025-11.md", Source: src1, Issue: is1}); !errors.Is(err, web.ErrLocked) {
		t.Errorf("save to a sent issue: %v", err)
	}
	r4, err := s.SaveRevision(ctx, web.NewRevision{Slug: "2025-11", Base: 3, Kind: web.KindSave, Author: "taro", Note: "題名の誤字",
		SourceName: "2025-11.md", Source: src1, Issue: is1, Correction: true})
	if err != nil || r4.Kind != web.KindCorrection || r4.Note != "題名の誤字" {
		t.Fatalf("correction: %+v %v", r4, err)
	}
	st = must[web.IssueState](t)(s.IssueState(ctx, "2025-11"))
	if st.Sent != 2 || st.Head != 4 || st.Valid != 4 || st.SentAt.IsZero() {
		t.Errorf("state after correction %+v", st)
	}
	if sent := must[*web.Revision](t)(s.Revision(ctx, "2025-11", st.Sent)); !bytes.Equal(sent.Source, src2) {
		t.Error("the sent revision changed")
	}
	cs := must[[]*web.Revision](t)(s.Corrections(ctx, "2025-11"))
	if len(cs) != 1 || cs[0].Number != 4 {
		t.Errorf("corrections %+v", cs)
	}

	// An upload (the console's list page, the API) is a revision too.
	src5, is5 := mdIssue(t, "2025-11", "十一月号（再訂正）")
	if _, err := s.SaveIssue(ctx, is5, "up.md", src5, "api"); err != nil {
		t.Fatal(err)
	}
	if r := must[*web.Revision](t)(s.HeadRevision(ctx, "2025-11")); r.Number != 5 || r.Kind != web.KindCorrection || r.SourceName != "up.md" {
		t.Errorf("upload to a sent issue: %+v", r)
	}
}

// Two editors saving on the same revision at the same moment: one wins,
// the other gets the conflict.
func TestStoreRevisionRace(t *testing.T) { onEngines(t, testStoreRevisionRace) }

func testStoreRevisionRace(t *testing.T, e storeEnv) {
	src, is := mdIssue(t, "2025-07", "七月号")
	if _, err := e.store.CreateIssue(e.ctx, web.NewRevision{Slug: "2025-07", Kind: web.KindNew, SourceName: "a.md", Source: src, Issue: is}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			s, is := mdIssue(t, "2025-07", "七月号 "+string(rune('A'+i)))
			_, errs[i] = e.store.SaveRevision(e.ctx, web.NewRevision{Slug: "2025-07", Base: 1, Kind: web.KindSave,
				Author: "ed", SourceName: "a.md", Source: s, Issue: is})
		})
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, web.ErrConflict):
			conflicts++
		default:
			t.Errorf("save: %v", err)
		}
	}
	if ok != 1 || conflicts != len(errs)-1 {
		t.Errorf("%d saves and %d conflicts, want 1 and %d", ok, conflicts, len(errs)-1)
	}
}

func TestStorePending(t *testing.T) { onEngines(t, testStorePending) }

func testStorePending(t *testing.T, e storeEnv) {
	tok, err := e.store.StashPending(e.ctx, "", "2025-11", []byte("title=w"))
	if err != nil {
		t.Fatal(err)
	}
	// Newer work under the same cookie replaces the older.
	if again, err := e.store.StashPending(e.ctx, tok, "2025-11", []byte("title=x")); err != nil || again != tok {
		t.Fatalf("restash: %q %v", again, err)
	}
	if _, _, err := e.store.TakePending(e.ctx, "wrong"); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("wrong cookie: %v", err)
	}
	slug, form, err := e.store.TakePending(e.ctx, tok)
	if err != nil || slug != "2025-11" || string(form) != "title=x" {
		t.Fatalf("take: %q %q %v", slug, form, err)
	}
	if _, _, err := e.store.TakePending(e.ctx, tok); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("taken twice: %v", err)
	}
	old, _ := e.store.StashPending(e.ctx, "", "2025-11", []byte("a"))
	e.clock.Advance(25 * time.Hour)
	if _, _, err := e.store.TakePending(e.ctx, old); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("a day-old stash: %v", err)
	}
}
