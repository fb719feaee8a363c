package web

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tayori-news/tayori/compose"
)

// Revisions: the list, the diff of two, restore, download and upload of
// the Markdown, and the conflict page where two editors' versions merge.

// markdownOf is a revision's source as the editor's Markdown: as stored
// when it is Markdown (comments and all), else the plain text imported
// and written.
func markdownOf(rev *Revision) ([]byte, error) {
	if compose.IsMarkdown(rev.Source) {
		return rev.Source, nil
	}
	is, err := compose.Parse(rev.SourceName, rev.Source)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, is); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func revisionNumber(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n <= 0 {
		return 0, newError(codeNotFound, "no such revision")
	}
	return n, nil
}

// handleDownload serves a revision (the newest without {n}) as the
// editor's Markdown, the exchange format: uploading it gives the same
// bytes back.
func (s *server) handleDownload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	var rev *Revision
	var err error
	name := slug + ".md"
	if r.PathValue("n") == "" {
		rev, err = s.deps.Store.HeadRevision(ctx, slug)
	} else {
		var n int
		if n, err = revisionNumber(r); err == nil {
			rev, err = s.deps.Store.Revision(ctx, slug, n)
			name = slug + "-r" + strconv.Itoa(n) + ".md"
		}
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	md, err := markdownOf(rev)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeFilename(name)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(md)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeFilename(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// revisionRow is a revision as the list shows it.
type revisionRow struct {
	*Revision
	KindLabel string
	Sent      bool
	Head      bool
}

// handleRevisions lists an issue's revisions: who saved what when, with a
// diff of any two and restore.
func (s *server) handleRevisions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	st, err := s.deps.Store.IssueState(ctx, slug)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	list, err := s.deps.Store.Revisions(ctx, slug)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	lang := s.adminLang(r)
	rows := make([]revisionRow, len(list))
	for i, rev := range list {
		rows[i] = revisionRow{Revision: rev, KindLabel: translate(lang, "c.kind."+string(rev.Kind)), Sent: rev.Number == st.Sent,
			Head: rev.Number == st.Head}
	}
	s.adminPage(w, r, http.StatusOK, "revisions", map[string]any{"State": st, "Revisions": rows, "Slug": slug})
}

// handleDiff shows the changes from revision a to revision b.
func (s *server) handleDiff(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	q := r.URL.Query()
	a, _ := strconv.Atoi(q.Get("a"))
	b, _ := strconv.Atoi(q.Get("b"))
	if a > b {
		a, b = b, a
	}
	ra, err := s.deps.Store.Revision(ctx, slug, a)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	rb, err := s.deps.Store.Revision(ctx, slug, b)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	ma, err := markdownOf(ra)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	mb, err := markdownOf(rb)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	rows := diffRows(splitLines(ma), splitLines(mb), 3)
	changed := 0
	for _, row := range rows {
		if row.Op == "-" || row.Op == "+" {
			changed++
		}
	}
	s.adminPage(w, r, http.StatusOK, "diff", map[string]any{"Slug": slug, "A": ra, "B": rb, "Rows": rows, "Changed": changed})
}

// handleRestore makes an earlier revision the newest again (a new
// revision: nothing is lost). The form's base must be the newest
// revision, as for any save.
func (s *server) handleRestore(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	slug := r.PathValue("slug")
	n, err := revisionNumber(r)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	old, err := s.deps.Store.Revision(ctx, slug, n)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	base, _ := strconv.Atoi(r.PostForm.Get("base"))
	var is *compose.Issue
	if old.Valid {
		if is, err = compose.Parse(old.SourceName, old.Source); err != nil {
			is = nil
		}
	}
	ed := sessionFrom(ctx).Editor
	rev, err := s.deps.Store.SaveRevision(ctx, NewRevision{Slug: slug, Base: base, Kind: KindRestore, Author: ed.Name,
		Note: translate(langJA, "c.restored_note", "n", strconv.Itoa(n)), SourceName: old.SourceName, Source: old.Source,
		Form: old.Form, Issue: is, Correction: r.PostForm.Get("correction") == "yes"})
	if errors.Is(err, ErrConflict) {
		s.adminError(w, r, newError(codeConflict, "c.restore_stale"))
		return
	}
	if errors.Is(err, ErrLocked) {
		s.adminError(w, r, newError(codeConflict, "c.locked_save"))
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if f, ok := s.deps.Renderer.(interface{ Forget(string) }); ok {
		f.Forget(slug)
	}
	s.log.InfoContext(ctx, "issue revision restored", "issue", slug, "from", n, "revision", rev.Number, "editor", ed.Name)
	s.audit(r, "save", titleOr(is, slug), "第"+strconv.Itoa(rev.Number)+"版（第"+strconv.Itoa(n)+"版から復元）")
	http.Redirect(w, r, issuePath(slug, "/edit?restored=", strconv.Itoa(n)), http.StatusSeeOther)
}

// handleComposerUpload makes an uploaded file (Markdown or the plain-text
// monthly) the newest revision of the issue. Its slug must be the
// issue's; problems that stop it from being read are shown next to the
// file field.
func (s *server) handleComposerUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	base, _ := strconv.Atoi(r.PostFormValue("base"))
	st, err := s.deps.Store.IssueState(ctx, slug)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	head, err := s.deps.Store.Revision(ctx, slug, st.Head)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	d, err := draftOfRevision(head)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	refuse := func(problems []fieldProblem) {
		s.composerPage(w, r, http.StatusUnprocessableEntity, composerData{State: st, Head: head, Draft: d, Upload: problems})
	}
	f, hdr, err := r.FormFile("file")
	if err != nil {
		refuse([]fieldProblem{{Field: "file", Severity: "error", Message: translate(s.adminLang(r), "cerr.choose_file")}})
		return
	}
	defer f.Close()
	data, err := compose.ReadLimited(f, hdr.Filename)
	if err != nil {
		refuse([]fieldProblem{{Field: "file", Severity: "error", Message: err.Error(), Text: err.Error()}})
		return
	}
	is, problems := lintSource(hdr.Filename, data, nil)
	if is == nil {
		refuse(problems)
		return
	}
	if is.Slug != slug {
		refuse([]fieldProblem{{Field: "file", Severity: "error", Message: translate(s.adminLang(r), "c.upload_slug",
			"file", is.Slug, "issue", slug)}})
		return
	}
	ed := sessionFrom(ctx).Editor
	rev, err := s.deps.Store.SaveRevision(ctx, NewRevision{Slug: slug, Base: base, Kind: KindUpload, Author: ed.Name,
		SourceName: hdr.Filename, Source: data, Issue: is, Correction: r.PostFormValue("correction") == "yes"})
	var ce *ConflictError
	switch {
	case errors.As(err, &ce):
		refuse([]fieldProblem{{Field: "file", Severity: "error", Message: translate(s.adminLang(r), "c.conflict_short",
			"n", strconv.Itoa(ce.Head.Number), "author", ce.Head.Author)}})
		return
	case errors.Is(err, ErrLocked):
		refuse([]fieldProblem{{Field: "file", Severity: "error", Message: translate(s.adminLang(r), "c.locked_save")}})
		return
	case err != nil:
		s.adminError(w, r, err)
		return
	}
	if f, ok := s.deps.Renderer.(interface{ Forget(string) }); ok {
		f.Forget(slug)
	}
	s.audit(r, "upload", is.Title, hdr.Filename+"・第"+strconv.Itoa(rev.Number)+"版")
	http.Redirect(w, r, issuePath(slug, "/edit?saved=1"), http.StatusSeeOther)
}

// ---- conflicts ----

// conflictView is the conflict page: the editor's unsaved version, the
// newer revision, and the places where they differ.
type conflictView struct {
	Slug   string
	Base   int       // the revision the editor started from
	Head   *Revision // the newer revision
	Mine   string    // the editor's form, URL-encoded, carried by the page
	Hunks  []hunk
	Rows   []diffRow // newer revision → mine
	Merged []fieldProblem
}

// conflictPage shows a refused save: both versions, and a choice at every
// place they differ (preset to whoever changed it, both flagged).
func (s *server) conflictPage(w http.ResponseWriter, r *http.Request, slug string, d *draft, mine *checked, head *Revision) {
	cv, _, err := s.conflict(r, slug, d, mine, head)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.adminPage(w, r, http.StatusConflict, "conflict", cv)
}

func (s *server) conflict(r *http.Request, slug string, d *draft, mine *checked, head *Revision) (*conflictView, *mergePlan, error) {
	ctx := r.Context()
	var baseSrc []byte
	if d.Base > 0 {
		if b, err := s.deps.Store.Revision(ctx, slug, d.Base); err == nil {
			if baseSrc, err = markdownOf(b); err != nil {
				baseSrc = nil
			}
		}
	}
	theirs, err := markdownOf(head)
	if err != nil {
		return nil, nil, err
	}
	t, m := splitLines(theirs), splitLines(mine.Markdown)
	mp := planMerge(splitLines(baseSrc), t, m)
	return &conflictView{Slug: slug, Base: d.Base, Head: head, Mine: d.values().Encode(), Hunks: mp.Hunks,
		Rows: diffRows(t, m, 2)}, mp, nil
}

// handleMerge saves the merge the editor chose on the conflict page (the
// fields "take0", "take1"…: "mine" or "theirs"), or one side whole
// (whole=mine|theirs), as a new revision on the newer one.
func (s *server) handleMerge(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	slug := r.PathValue("slug")
	mineForm, err := url.ParseQuery(r.PostForm.Get("mine"))
	if err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	d := parseDraft(slug, mineForm)
	mine, err := d.check()
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	headN, _ := strconv.Atoi(r.PostForm.Get("head"))
	head, err := s.deps.Store.Revision(ctx, slug, headN)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	cv, mp, err := s.conflict(r, slug, d, mine, head)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	var src []byte
	var form []byte
	switch r.PostForm.Get("whole") {
	case "theirs":
		http.Redirect(w, r, issuePath(slug, "/edit"), http.StatusSeeOther)
		return
	case "mine":
		src, form = mine.Markdown, d.form()
	default:
		take := make([]bool, len(mp.Hunks))
		for i, h := range mp.Hunks {
			switch r.PostForm.Get("take" + strconv.Itoa(i)) {
			case "mine":
				take[i] = true
			case "theirs":
			default:
				take[i] = h.TakeMine()
			}
		}
		src = mp.merge(take)
	}
	is, problems := lintSource(slug+".md", src, nil)
	if is == nil {
		cv.Merged = problems
		s.adminPage(w, r, http.StatusUnprocessableEntity, "conflict", cv)
		return
	}
	ed := sessionFrom(ctx).Editor
	_, err = s.deps.Store.SaveRevision(ctx, NewRevision{Slug: slug, Base: head.Number, Kind: KindMerge, Author: ed.Name,
		Note: translate(langJA, "c.merged_note", "n", strconv.Itoa(head.Number)), SourceName: slug + ".md", Source: src,
		Form: form, Issue: is, Correction: mineForm.Get("correction") == "yes"})
	var ce *ConflictError
	switch {
	case errors.As(err, &ce): // newer still: merge again
		s.conflictPage(w, r, slug, d, mine, ce.Head)
		return
	case err != nil:
		s.adminError(w, r, err)
		return
	}
	if f, ok := s.deps.Renderer.(interface{ Forget(string) }); ok {
		f.Forget(slug)
	}
	s.log.InfoContext(ctx, "issue versions merged", "issue", slug, "head", head.Number, "editor", ed.Name)
	s.audit(r, "save", is.Title, "第"+strconv.Itoa(head.Number)+"版と統合")
	http.Redirect(w, r, issuePath(slug, "/edit?merged=1"), http.StatusSeeOther)
}

// ---- new issues ----

// handleNewIssuePage offers three starts: from the previous issue, blank,
// or from a pasted or uploaded file.
func (s *server) handleNewIssuePage(w http.ResponseWriter, r *http.Request) {
	s.newIssuePage(w, r, http.StatusOK, newIssueForm{Start: "previous"})
}

type newIssueForm struct {
	Start      string // previous, blank, paste
	From       string // the previous issue's slug
	Slug       string
	Title      string
	Newsletter string
	Paste      string
	Problems   map[string][]fieldProblem
	Focus      string
}

// P lists the problems of a field of the new-issue form.
func (f newIssueForm) P(name string) []fieldProblem { return f.Problems[name] }

func (s *server) newIssuePage(w http.ResponseWriter, r *http.Request, status int, f newIssueForm) {
	list, err := s.deps.Store.IssueStates(r.Context())
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if f.From == "" && len(list) > 0 {
		f.From = latestSlug(list)
	}
	if f.Slug == "" && f.Start != "paste" {
		f.Slug = nextSlug(f.From, s.now().In(s.cfg.Location))
	}
	s.adminPage(w, r, status, "issue_new", map[string]any{"Form": f, "Issues": list})
}

// latestSlug is the highest "YYYY-MM" slug, else the last updated.
func latestSlug(list []IssueState) string {
	best := ""
	for _, st := range list {
		if _, err := time.Parse("2006-01", st.Slug); err == nil && st.Slug > best {
			best = st.Slug
		}
	}
	if best == "" {
		best = list[0].Slug
	}
	return best
}

// nextSlug is the month after a "YYYY-MM" slug, else this month.
func nextSlug(prev string, now time.Time) string {
	if t, err := time.Parse("2006-01", prev); err == nil {
		return t.AddDate(0, 1, 0).Format("2006-01")
	}
	return now.Format("2006-01")
}

// validSlug is a slug the console can name in its paths ("new" is the
// page that starts an issue).
var validSlug = regexp.MustCompile(`^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$`)

func okSlug(s string) bool { return validSlug.MatchString(s) && s != "new" }

// handleNewIssue creates the issue and opens the composer.
func (s *server) handleNewIssue(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lang := s.adminLang(r)
	f := newIssueForm{Start: r.PostFormValue("start"), From: r.PostFormValue("from"), Slug: strings.TrimSpace(r.PostFormValue("slug")),
		Title: strings.TrimSpace(r.PostFormValue("title")), Newsletter: strings.TrimSpace(r.PostFormValue("newsletter")),
		Paste: r.PostFormValue("paste"), Problems: map[string][]fieldProblem{}}
	bad := func(field, msg string) {
		f.Problems[field] = append(f.Problems[field], fieldProblem{Field: field, Severity: "error", Message: msg})
		if f.Focus == "" {
			f.Focus = field
		}
	}
	var is *compose.Issue
	var src []byte
	name := ""
	switch f.Start {
	case "previous":
		prev, err := s.deps.Store.Issue(ctx, f.From)
		if err != nil {
			bad("from", translate(lang, "c.new_no_previous"))
			break
		}
		if !okSlug(f.Slug) {
			bad("slug", translate(lang, "c.new_bad_slug"))
			break
		}
		is = nextIssue(prev.Issue, f.Slug)
	case "blank":
		if !okSlug(f.Slug) {
			bad("slug", translate(lang, "c.new_bad_slug"))
			break
		}
		if f.Title == "" {
			bad("title", translate(lang, "c.new_no_title"))
			break
		}
		is = &compose.Issue{Slug: f.Slug, Title: f.Title, Newsletter: f.Newsletter, Sections: []compose.Section{}}
	case "paste":
		data := []byte(f.Paste)
		name = "pasted.txt"
		if file, hdr, err := r.FormFile("file"); err == nil {
			defer file.Close()
			if data, err = compose.ReadLimited(file, hdr.Filename); err != nil {
				bad("file", err.Error())
				break
			}
			name = hdr.Filename
		}
		if strings.TrimSpace(string(data)) == "" {
			bad("paste", translate(lang, "c.new_nothing_pasted"))
			break
		}
		if compose.IsMarkdown(data) && name == "pasted.txt" {
			name = "pasted.md"
		}
		parsed, problems := lintSource(name, data, nil)
		if parsed == nil {
			for _, p := range problems {
				bad("paste", p.Text)
			}
			break
		}
		if f.Slug != "" && okSlug(f.Slug) {
			parsed.Slug = f.Slug
		}
		if !okSlug(parsed.Slug) {
			bad("slug", translate(lang, "c.new_bad_slug"))
			break
		}
		is, f.Slug = parsed, parsed.Slug
		if compose.IsMarkdown(data) && parsed.Slug == slugOfSource(parsed, data) {
			src = data // the file as it is: comments and all
		}
	default:
		bad("start", translate(lang, "c.new_choose"))
	}
	if is == nil {
		s.newIssuePage(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	if src == nil {
		var buf bytes.Buffer
		if err := compose.WriteMarkdown(&buf, is); err != nil {
			s.adminError(w, r, err)
			return
		}
		src, name = buf.Bytes(), is.Slug+".md"
	}
	parsed, err := compose.Parse(name, src)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	ed := sessionFrom(ctx).Editor
	_, err = s.deps.Store.CreateIssue(ctx, NewRevision{Slug: is.Slug, Kind: KindNew, Author: ed.Name, SourceName: name,
		Source: src, Issue: parsed})
	if errors.Is(err, ErrExists) {
		bad("slug", translate(lang, "c.new_exists", "slug", is.Slug))
		s.newIssuePage(w, r, http.StatusConflict, f)
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "issue started", "issue", is.Slug, "start", f.Start, "editor", ed.Name)
	s.audit(r, "save", parsed.Title, "新しい号")
	http.Redirect(w, r, issuePath(is.Slug, "/edit"), http.StatusSeeOther)
}

// slugOfSource is the slug a source gives its issue (the parsed one may
// have been renamed by the form).
func slugOfSource(_ *compose.Issue, data []byte) string {
	is, err := compose.Parse("x", data)
	if err != nil {
		return ""
	}
	return is.Slug
}

// monthRE finds "2025年11月" and "11月1日" style dates.
var (
	yearMonthRE = regexp.MustCompile(`(\d{4})年(\d{1,2})月`)
	monthDayRE  = regexp.MustCompile(`(\d{1,2})月(\d{1,2})日`)
)

// nextIssue starts the issue after prev: its newsletter, title pattern,
// intro, closing and sections (headings, regions, kinds, groups), with
// every item removed and every month moved on by one.
func nextIssue(prev *compose.Issue, slug string) *compose.Issue {
	from, ok := slugMonth(prev.Slug)
	to, ok2 := slugMonth(slug)
	shift := func(s string) string {
		if !ok || !ok2 {
			return s
		}
		s = yearMonthRE.ReplaceAllStringFunc(s, func(m string) string {
			sm := yearMonthRE.FindStringSubmatch(m)
			y, _ := strconv.Atoi(sm[1])
			mo, _ := strconv.Atoi(sm[2])
			if y == from.Year() && mo == int(from.Month()) {
				return strconv.Itoa(to.Year()) + "年" + strconv.Itoa(int(to.Month())) + "月"
			}
			return m
		})
		return monthDayRE.ReplaceAllStringFunc(s, func(m string) string {
			sm := monthDayRE.FindStringSubmatch(m)
			mo, _ := strconv.Atoi(sm[1])
			day, _ := strconv.Atoi(sm[2])
			if mo != int(from.Month()) {
				return m
			}
			last := from.AddDate(0, 1, -1).Day()
			newLast := to.AddDate(0, 1, -1).Day()
			if day == last || day > newLast {
				day = newLast
			}
			return strconv.Itoa(int(to.Month())) + "月" + strconv.Itoa(day) + "日"
		})
	}
	is := &compose.Issue{Newsletter: prev.Newsletter, Slug: slug, Title: shift(prev.Title), Preheader: "",
		Period: shift(prev.Period), RegionRules: prev.RegionRules, Sections: []compose.Section{}}
	for _, p := range prev.Intro {
		is.Intro = append(is.Intro, shift(p))
	}
	for _, p := range prev.Closing {
		is.Closing = append(is.Closing, shift(p))
	}
	if is.Title == prev.Title && ok2 {
		is.Title = prev.Title + " " + slug
	}
	for _, sec := range prev.Sections {
		heading := sec.Heading
		if heading == "" {
			heading = sec.Title
		}
		is.Sections = append(is.Sections, compose.Section{Heading: shift(heading), Region: sec.Region, Kind: sec.Kind,
			Group: shift(sec.GroupAttr()), Items: []compose.Item{}})
	}
	return is
}

func slugMonth(slug string) (time.Time, bool) {
	t, err := time.Parse("2006-01", slug)
	return t, err == nil
}

// titleOr is is's title, or slug when is is nil (a revision that does
// not parse).
func titleOr(is *compose.Issue, slug string) string {
	if is == nil {
		return slug
	}
	return is.Title
}
