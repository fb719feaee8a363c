package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
)

// The composer: an issue edited as structured fields, saved as revisions
// (explicitly and while the editor types), linted and previewed on the
// server as the editor types. Every page works as plain forms without
// script; composer.js adds autosave, the live lint and preview, and
// drag-and-drop reordering.

// wantsJSON reports whether the composer's script sent the request.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func issuePath(slug string, rest ...string) string {
	return "/admin/issues/" + url.PathEscape(slug) + strings.Join(rest, "")
}

// ---- sessions that expire while an editor types ----

// pendingCookie holds the claim to work posted after a session expired.
func (s *server) pendingCookie() string {
	if s.cfg.secure() {
		return "__Host-tayori_pending"
	}
	return "tayori_pending"
}

// composerPost wraps the composer's save: with a live session it is
// s.editor; without one (expired, signed out elsewhere, server database
// swapped), the posted work is kept on the server under a cookie of this
// browser and saved as soon as the editor signs in again
// (handleComposerResume).
func (s *server) composerPost(next http.HandlerFunc) http.HandlerFunc {
	authed := s.editor(next)
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookieName())
		if err == nil {
			if _, err = s.deps.Store.Session(r.Context(), c.Value); err == nil {
				authed(w, r)
				return
			}
		}
		if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, http.ErrNoCookie) {
			s.fail(w, r, err)
			return
		}
		s.stashExpired(w, r)
	}
}

func (s *server) stashExpired(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.cop.Check(r); err != nil {
		s.adminError(w, r, wrapError(codeForbidden, "cross-origin request refused", err))
		return
	}
	if ok, err := s.rl.allow(ctx, "pending-ip", s.clientIP(r), 600, time.Hour); err != nil || !ok {
		if err == nil {
			err = wrapError(codeTooMany, "too many requests", errRateLimited)
		}
		s.adminError(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload)
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	slug := r.PathValue("slug")
	form := url.Values{}
	for k, v := range r.PostForm {
		if k != "csrf" {
			form[k] = v
		}
	}
	old := ""
	if c, err := r.Cookie(s.pendingCookie()); err == nil {
		old = c.Value
	}
	tok, err := s.deps.Store.StashPending(ctx, old, slug, []byte(form.Encode()))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.pendingCookie(), Value: tok, Path: "/", MaxAge: int(pendingTTL.Seconds()),
		HttpOnly: true, Secure: s.cfg.secure(), SameSite: http.SameSiteStrictMode})
	login := "/admin/login?next=" + url.QueryEscape(issuePath(slug, "/resume"))
	s.log.InfoContext(ctx, "composer work kept for a signed-out editor", "issue", slug)
	if wantsJSON(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": codeUnauthorized,
			"message": translate(s.adminLang(r), "c.expired")}, "login": login})
		return
	}
	http.Redirect(w, r, login, http.StatusSeeOther)
}

// handleComposerResume saves the work kept while the editor was signed
// out, once they have signed in again, and opens the composer.
func (s *server) handleComposerResume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
	c, err := r.Cookie(s.pendingCookie())
	if err != nil {
		http.Redirect(w, r, issuePath(slug, "/edit"), http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.pendingCookie(), Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.secure(),
		SameSite: http.SameSiteStrictMode})
	pslug, form, err := s.deps.Store.TakePending(ctx, c.Value)
	if errors.Is(err, ErrNotFound) || (err == nil && pslug != slug) {
		http.Redirect(w, r, issuePath(slug, "/edit"), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	v, err := url.ParseQuery(string(form))
	if err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	s.saveDraft(w, r, slug, v, KindSave, "resumed")
}

// parseForm reads a posted form (the script's requests carry the CSRF
// token in a header, so the middleware has not read the body).
func (s *server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		if wantsJSON(r) {
			s.apiError(w, r, wrapError(codeInvalid, "unreadable form", err))
		} else {
			s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		}
		return false
	}
	return true
}

// ---- the composer page ----

// handleComposerPage shows the composer with the newest revision.
func (s *server) handleComposerPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	slug := r.PathValue("slug")
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
	q := r.URL.Query()
	notice := ""
	switch {
	case q.Get("saved") != "":
		notice = "c.saved"
	case q.Get("resumed") != "":
		notice = "c.resumed"
	case q.Get("merged") != "":
		notice = "c.merged"
	case q.Get("restored") != "":
		notice = "c.restored"
	}
	s.composerPage(w, r, http.StatusOK, composerData{State: st, Head: head, Draft: d, Notice: notice,
		Comments: bytes.Contains(head.Source, []byte("<!--"))})
}

// draftOfRevision is the form of a revision: as it was posted, or its
// source read (uploads).
func draftOfRevision(rev *Revision) (*draft, error) {
	if rev.Form != nil {
		v, err := url.ParseQuery(string(rev.Form))
		if err == nil {
			d := parseDraft(rev.Slug, v)
			d.Base = rev.Number
			return d, nil
		}
	}
	is, err := compose.Parse(rev.SourceName, rev.Source)
	if err != nil {
		return nil, fmt.Errorf("revision %d of %q does not parse: %w", rev.Number, rev.Slug, err)
	}
	return draftOf(is, rev.Number), nil
}

// composerData is what the composer page shows.
type composerData struct {
	State    IssueState
	Head     *Revision
	Draft    *draft
	Notice   string // i18n key of a notice ("c.saved")
	Error    string // i18n key of an error about the whole form
	Comments bool   // the head's source has comments the form does not keep
	Upload   []fieldProblem
	checked  *checked
	lang     string
}

func (s *server) composerPage(w http.ResponseWriter, r *http.Request, status int, cd composerData) {
	c, err := cd.Draft.check()
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	cd.checked = c
	cd.lang = s.adminLang(r)
	s.adminPage(w, r, status, "composer", newComposerView(&cd))
}

// ---- saving ----

// handleComposerSave saves the posted form as a revision: the save and
// preview buttons, autosave (action=autosave, from the script) and, without
// script, the buttons that add, remove and move sections and items (op=).
func (s *server) handleComposerSave(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	kind := KindSave
	switch r.PostForm.Get("action") {
	case "autosave":
		kind = KindAutosave
	}
	if r.PostForm.Get("op") != "" {
		kind = KindAutosave
	}
	s.saveDraft(w, r, r.PathValue("slug"), r.PostForm, kind, "")
}

// saveDraft saves the form v as a revision of slug and answers as the
// request wants: JSON for the script, else a redirect to the composer (or
// the conflict page).
func (s *server) saveDraft(w http.ResponseWriter, r *http.Request, slug string, v url.Values, kind RevisionKind, how string) {
	ctx := r.Context()
	d := parseDraft(slug, v)
	op := v.Get("op")
	if op != "" {
		d.apply(op)
	}
	c, err := d.check()
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	ed := sessionFrom(ctx).Editor
	nr := NewRevision{Slug: slug, Base: d.Base, Kind: kind, Author: ed.Name, Note: strings.TrimSpace(v.Get("note")),
		SourceName: c.Name, Source: c.Markdown, Form: d.form(), Issue: c.Issue,
		Correction: v.Get("correction") == "yes"}
	rev, err := s.deps.Store.SaveRevision(ctx, nr)
	var ce *ConflictError
	switch {
	case errors.As(err, &ce):
		s.log.InfoContext(ctx, "composer save refused: newer revision", "issue", slug, "editor", ed.Name, "base", d.Base, "head", ce.Head.Number)
		if wantsJSON(r) {
			writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]string{"code": codeConflict,
				"message": translate(s.adminLang(r), "c.conflict_short", "n", strconv.Itoa(ce.Head.Number), "author", ce.Head.Author)},
				"head": ce.Head.Number, "author": ce.Head.Author})
			return
		}
		s.conflictPage(w, r, slug, d, c, ce.Head)
		return
	case errors.Is(err, ErrLocked):
		if wantsJSON(r) {
			writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]string{"code": "locked",
				"message": translate(s.adminLang(r), "c.locked_save")}})
			return
		}
		st, serr := s.deps.Store.IssueState(ctx, slug)
		if serr != nil {
			s.adminError(w, r, serr)
			return
		}
		s.composerPage(w, r, http.StatusConflict, composerData{State: st, Head: &Revision{Slug: slug, Number: d.Base}, Draft: d, Error: "c.locked_save"})
		return
	case err != nil:
		s.adminError(w, r, err)
		return
	}
	if c.Issue != nil {
		if f, ok := s.deps.Renderer.(interface{ Forget(string) }); ok {
			f.Forget(slug)
		}
	}
	if rev.Base == d.Base && rev.Number != d.Base {
		s.log.InfoContext(ctx, "issue revision saved", "issue", slug, "revision", rev.Number, "kind", string(rev.Kind), "editor", ed.Name)
		if kind != KindAutosave {
			title := slug
			if c.Issue != nil {
				title = c.Issue.Title
			}
			s.audit(r, "save", title, "第"+strconv.Itoa(rev.Number)+"版")
		}
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"revision": rev.Number, "kind": rev.Kind, "valid": c.Issue != nil,
			"saved_at": rev.CreatedAt.In(s.cfg.Location).Format("15:04:05"), "problems": nonNil(c.Problems)})
		return
	}
	switch {
	case v.Get("action") == "preview":
		http.Redirect(w, r, issuePath(slug), http.StatusSeeOther)
	case op != "":
		http.Redirect(w, r, issuePath(slug, "/edit#", anchorOf(op, d)), http.StatusSeeOther)
	case how != "":
		http.Redirect(w, r, issuePath(slug, "/edit?"+how+"=", strconv.Itoa(rev.Number)), http.StatusSeeOther)
	default:
		http.Redirect(w, r, issuePath(slug, "/edit?saved=", strconv.Itoa(rev.Number)), http.StatusSeeOther)
	}
}

// anchorOf is the element to show after a structure operation.
func anchorOf(op string, d *draft) string {
	verb, target, _ := strings.Cut(op, ":")
	si, ii := parseTarget(target)
	switch verb {
	case "add-section":
		return "sec-" + strconv.Itoa(len(d.Sections)-1)
	case "add-item":
		if si >= 0 && si < len(d.Sections) {
			return "item-" + strconv.Itoa(si) + "-" + strconv.Itoa(len(d.Sections[si].Items)-1)
		}
	case "up", "down":
		if ii < 0 && si >= 0 {
			if verb == "up" {
				si--
			} else {
				si++
			}
			return "sec-" + strconv.Itoa(max(si, 0))
		}
	}
	return "sections"
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- lint and preview while the editor types ----

// handleComposerLint lints the posted form as `tayori compose check` lints
// the Markdown it becomes, and places each problem at its field.
func (s *server) handleComposerLint(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	c, err := parseDraft(r.PathValue("slug"), r.PostForm).check()
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	nerr := 0
	for _, p := range c.Problems {
		if p.Severity == string(compose.SeverityError) {
			nerr++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": c.Issue != nil, "errors": nerr, "warnings": len(c.Problems) - nerr,
		"problems": nonNil(c.Problems)})
}

// Gmail clips a message whose HTML is larger than 102 KB; the composer
// warns from gmailWarn on.
const (
	gmailClip = 102 * 1024
	gmailWarn = 90 * 1024
)

// previewTTL is how long a preview's HTML stays for its frame.
const previewTTL = 15 * time.Minute

// previewJSON is the composer's live preview.
type previewJSON struct {
	OK       bool   `json:"ok"`
	Message  string `json:"message,omitempty"` // why there is no preview
	Nothing  bool   `json:"nothing,omitempty"` // the reader gets no mail
	HTMLURL  string `json:"html_url,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Text     string `json:"text,omitempty"`
	Reader   string `json:"reader,omitempty"` // who the copy is for
	Size     int    `json:"size"`             // the whole message, as the relay gets it
	HTMLSize int    `json:"html_size"`
	Clip     string `json:"clip,omitempty"` // "", "near" or "over" Gmail's clipping size
	Sizes    string `json:"sizes,omitempty"`
}

// handleComposerPreview renders the posted form for one reader (pv.region
// and pv.topic checkboxes, or pv.email, a subscriber of the list) through
// the queue's own path: the HTML is kept for the preview frame
// (/admin/preview/TICKET), the text and the sizes are answered.
func (s *server) handleComposerPreview(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	lang := s.adminLang(r)
	is, err := parseDraft(r.PathValue("slug"), r.PostForm).parsed()
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if is == nil { // the lint beside the fields says why
		writeJSON(w, http.StatusOK, previewJSON{Message: translate(lang, "c.preview_unparsed")})
		return
	}
	out, err := s.previewCopy(ctx, is, r.PostForm, lang)
	if err != nil {
		if code, _ := classify(err); code == codeInternal {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, previewJSON{Message: consoleMessage(lang, err)})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// previewReader reads whose copy to preview from the form: a subscriber
// by address (pv.email) or regions and topics (pv.region, pv.topic).
func (s *server) previewReader(ctx context.Context, v url.Values, lang string) (queue.PreviewReader, string, error) {
	if email := strings.TrimSpace(v.Get("pv.email")); email != "" {
		norm, err := subscribers.NormalizeEmail(email)
		if err != nil {
			return queue.PreviewReader{}, "", newError(codeInvalid, "c.preview_bad_email")
		}
		list, err := s.deps.Subscribers.List(ctx, subscribers.ListQuery{Search: norm, Limit: 20})
		if err != nil {
			return queue.PreviewReader{}, "", err
		}
		for _, sub := range list {
			if sub.Email == norm {
				return queue.PreviewReader{SubscriberID: sub.ID}, norm, nil
			}
		}
		return queue.PreviewReader{}, "", newError(codeNotFound, "c.preview_no_reader")
	}
	p, _ := parsePrefs(url.Values{"region": v["pv.region"], "topic": v["pv.topic"]})
	if len(v["pv.region"]) == 0 && len(v["pv.topic"]) == 0 {
		p = audience.All()
	}
	return queue.PreviewReader{Prefs: p, Name: translate(lang, "c.sample_name")}, prefsLabelIn(lang, p), nil
}

func (s *server) previewCopy(ctx context.Context, is *compose.Issue, v url.Values, lang string) (previewJSON, error) {
	if s.deps.Sends == nil {
		return previewJSON{}, newError(codeUnavailable, "the queue is not configured")
	}
	reader, label, err := s.previewReader(ctx, v, lang)
	if err != nil {
		return previewJSON{}, err
	}
	cp, err := s.deps.Sends.PreviewCopy(ctx, is, s.cfg.List, reader)
	switch {
	case errors.Is(err, templates.ErrNothingToSend):
		return previewJSON{OK: true, Nothing: true, Reader: label, Message: translate(lang, "c.preview_nothing")}, nil
	case errors.Is(err, queue.ErrNotFound):
		return previewJSON{}, newError(codeNotFound, "c.preview_not_active")
	case err != nil:
		return previewJSON{}, err
	}
	ticket := randomToken(18)
	if err := s.deps.Redis.Set(ctx, previewKey(ticket), cp.HTML, previewTTL).Err(); err != nil {
		return previewJSON{}, fmt.Errorf("keep the preview: %w", err)
	}
	out := previewJSON{OK: true, HTMLURL: "/admin/preview/" + ticket, Subject: cp.Subject, Text: string(cp.Text), Reader: label,
		Size: len(cp.Raw), HTMLSize: len(cp.HTML)}
	switch {
	case len(cp.HTML) > gmailClip:
		out.Clip = "over"
	case len(cp.HTML) >= gmailWarn:
		out.Clip = "near"
	}
	out.Sizes = translate(lang, "c.sizes", "size", kib(out.Size), "html", kib(out.HTMLSize))
	return out, nil
}

func previewKey(ticket string) string { return "tayori:web:preview:" + ticket }

func kib(n int) string { return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KB" }

// handlePreviewHTML serves a preview's HTML in the composer's frame, with
// the mail CSP (inline styles, no script).
func (s *server) handlePreviewHTML(w http.ResponseWriter, r *http.Request) {
	html, err := s.deps.Redis.Get(r.Context(), previewKey(r.PathValue("ticket"))).Bytes()
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(translate(s.adminLang(r), "c.preview_gone")))
		return
	}
	mailFrame(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(html)
}
