package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
)

func (s *server) adminPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	sess := sessionFrom(r.Context())
	s.rememberLang(w, r)
	s.render(w, r, status, name, &page{Lang: s.adminLang(r), Admin: true, Editor: sess.Editor.Name, CSRF: sess.CSRF, Data: data})
}

// ---- sign-in ----

func (s *server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.rememberLang(w, r)
	next := safeNext(r.URL.Query().Get("next"))
	s.render(w, r, http.StatusOK, "login", &page{Lang: s.adminLang(r), Admin: true, Data: map[string]any{"Next": next,
		"Resume": strings.HasSuffix(next, "/resume")}})
}

// safeNext keeps only local console paths as the place to go after sign-in.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		return next
	}
	return "/admin/issues"
}

func (s *server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	ok, err := s.rl.allow(ctx, "login-ip", s.clientIP(r), s.cfg.LoginPerIP, s.cfg.LoginWindow)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if !ok {
		s.adminError(w, r, wrapError(codeTooMany, "too many sign-in attempts: wait a few minutes", errRateLimited))
		return
	}
	name := r.PostForm.Get("name")
	allowed, _, err := s.signinAttempt(ctx, name)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if !allowed {
		s.failedSignin(ctx, name, s.clientIP(r), true)
		s.log.WarnContext(ctx, "console sign-in refused: account locked", "ip", ipNetwork(s.clientIP(r)))
		s.adminError(w, r, wrapError(codeTooMany, "too many sign-in attempts: wait a few minutes", errAccountLocked))
		return
	}
	ed, err := s.deps.Store.Authenticate(ctx, name, r.PostForm.Get("password"))
	if errors.Is(err, ErrUnauthorized) {
		account := s.failedSignin(ctx, name, s.clientIP(r), false)
		s.log.WarnContext(ctx, "console sign-in failed", "ip", s.clientIP(r))
		s.auditAs(r, account, "signin_failed", "", "")
		s.render(w, r, http.StatusUnauthorized, "login", &page{Lang: s.adminLang(r), Admin: true,
			Data: map[string]any{"Next": next, "Error": translate(s.adminLang(r), "a.wrong_password"), "Resume": strings.HasSuffix(next, "/resume")}})
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.signinSucceeded(ctx, name)
	id, _, err := s.deps.Store.NewSession(ctx, ed.ID, s.cfg.SessionTTL)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.setSessionCookie(w, id, int(s.cfg.SessionTTL.Seconds()))
	s.log.InfoContext(ctx, "console sign-in", "editor", ed.Name)
	s.auditAs(r, ed.Name, "signin", "", "")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.cookieName()); err == nil {
		if err := s.deps.Store.EndSession(r.Context(), c.Value); err != nil {
			s.adminError(w, r, err)
			return
		}
	}
	s.setSessionCookie(w, "", -1)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// ---- issues ----

func (s *server) handleAdminIssues(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Store.IssueStates(r.Context())
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.adminPage(w, r, http.StatusOK, "admin_issues", map[string]any{"Issues": list})
}

// handleAdminUpload stores an uploaded issue (multipart field "file", in
// either format) or shows every parse problem.
func (s *server) handleAdminUpload(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, compose.MaxInputSize+64<<10)
	f, hdr, err := r.FormFile("file")
	if err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "choose a file to upload", err))
		return
	}
	defer f.Close()
	name := hdr.Filename
	data, err := compose.ReadLimited(f, name)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	is, problems, err := s.saveUpload(r, name, data)
	if problems != nil {
		list, _ := s.deps.Store.IssueStates(r.Context())
		s.adminPage(w, r, http.StatusUnprocessableEntity, "admin_issues", map[string]any{"Issues": list, "Problems": problems, "File": name})
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/issues/"+url.PathEscape(is.Slug), http.StatusSeeOther)
}

// prefsFromQuery reads region= and topic= values (defaults: everything).
func prefsFromQuery(v url.Values) audience.Prefs {
	p, _ := parsePrefs(v)
	if len(v["region"]) == 0 {
		p.Regions = audience.All().Regions
	}
	if len(v["topic"]) == 0 {
		p.Topics = audience.All().Topics
	}
	return p
}

func prefsQuery(p audience.Prefs) string {
	v := url.Values{}
	for _, r := range p.Regions {
		v.Add("region", string(r))
	}
	for _, t := range p.Topics {
		v.Add("topic", string(t))
	}
	return v.Encode()
}

// issueStats counts an issue's sections and items by region and topic.
type issueStats struct {
	Sections, Items int
	ByRegion        map[string]int
}

func statsOf(is *compose.Issue) issueStats {
	st := issueStats{ByRegion: map[string]int{}}
	for _, sec := range is.Sections {
		st.Sections++
		for _, it := range sec.Items {
			st.Items++
			r := it.Region
			if r == "" {
				r = sec.Region
			}
			st.ByRegion[translate(langJA, "region."+string(r))]++
		}
	}
	return st
}

// handleAdminIssue shows an issue: its summary, the preview of the chosen
// region/topic combination side by side (HTML in a sandboxed frame, text
// beside it), the test-send form and the send form.
func (s *server) handleAdminIssue(w http.ResponseWriter, r *http.Request) {
	is, err := s.deps.Store.Issue(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.issuePage(w, r, http.StatusOK, is, r.URL.Query(), nil)
}

// issuePage shows an issue with the preview chosen by q; fieldErrors
// (field name → i18n key) are shown next to the test-send and send forms'
// fields, the first one focused.
func (s *server) issuePage(w http.ResponseWriter, r *http.Request, status int, is *StoredIssue, q url.Values, fieldErrors map[string]string) {
	ctx := r.Context()
	st, err := s.deps.Store.IssueState(ctx, is.Slug)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	p := prefsFromQuery(q)
	email := strings.TrimSpace(q.Get("email"))
	problems := lint(is)
	data := map[string]any{
		"Issue": is, "State": st, "Stats": statsOf(is.Issue), "Problems": problems, "Blocked": st.Head != st.Valid, "LintErrors": compose.HasErrors(problems),
		"Regions": regionChoices(p), "Topics": topicChoices(p), "Email": email,
		"Query": template.URL(previewQuery(p, email)), // url.Values.Encode output is safe in a URL
		"List":  s.cfg.List, "Sent": q.Get("sent") == "1", "To": q.Get("to"), "At": q.Get("at"),
		"FieldErrors": fieldErrors,
	}
	cp, label, err := s.previewParts(ctx, is.Issue, p, email)
	switch code, _ := classify(err); {
	case err == nil:
		data["Text"], data["Reader"] = string(cp.Text), label
		data["Sizes"] = translate(s.adminLang(r), "c.sizes", "size", kib(len(cp.Raw)), "html", kib(len(cp.HTML)))
		data["Clip"] = len(cp.HTML) >= gmailWarn
	case code == codeNothingToSend:
		data["Nothing"] = true
	case code == codeNotFound || code == codeInvalid:
		data["ReaderError"] = consoleMessage(s.adminLang(r), err)
	default:
		s.adminError(w, r, err)
		return
	}
	s.adminPage(w, r, status, "admin_issue", data)
}

func previewQuery(p audience.Prefs, email string) string {
	q := prefsQuery(p)
	if email != "" {
		q += "&" + url.Values{"email": {email}}.Encode()
	}
	return q
}

// previewParts builds the copy of issue for a reader of p, or for the
// subscriber with address email, through the queue's own path (the bytes
// the worker would send), and names the reader.
func (s *server) previewParts(ctx context.Context, issue *compose.Issue, p audience.Prefs, email string) (*queue.Copy, string, error) {
	v := url.Values{"pv.region": nil, "pv.topic": nil}
	for _, r := range p.Regions {
		v.Add("pv.region", string(r))
	}
	for _, t := range p.Topics {
		v.Add("pv.topic", string(t))
	}
	if email != "" {
		v.Set("pv.email", email)
	}
	if s.deps.Sends == nil {
		return nil, "", newError(codeUnavailable, "the queue is not configured")
	}
	reader, label, err := s.previewReader(ctx, v, langJA)
	if err != nil {
		return nil, "", err
	}
	cp, err := s.deps.Sends.PreviewCopy(ctx, issue, s.cfg.List, reader)
	switch {
	case errors.Is(err, templates.ErrNothingToSend):
		return nil, "", wrapError(codeNothingToSend, "no section of this issue matches these regions and topics", err)
	case errors.Is(err, queue.ErrNotFound):
		return nil, "", wrapError(codeNotFound, "c.preview_not_active", err)
	}
	return cp, label, err
}

// handleAdminPreviewHTML serves the HTML part of a variant for the preview
// frame, with the mail CSP (inline styles, no script) and same-origin
// framing only.
func (s *server) handleAdminPreviewHTML(w http.ResponseWriter, r *http.Request) {
	is, err := s.deps.Store.Issue(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	cp, _, err := s.previewParts(r.Context(), is.Issue, prefsFromQuery(r.URL.Query()), strings.TrimSpace(r.URL.Query().Get("email")))
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	mailFrame(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(cp.HTML)
}

// handleAdminTestSend sends the previewed variant to one address through
// the transactional queue, marked as a test.
func (s *server) handleAdminTestSend(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	is, err := s.deps.Store.Issue(ctx, r.PathValue("slug"))
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	to, err := subscribers.NormalizeEmail(r.PostForm.Get("to"))
	if err != nil {
		s.issuePage(w, r, http.StatusUnprocessableEntity, is, r.PostForm, map[string]string{"to": "a.bad_to"})
		return
	}
	ed := sessionFrom(ctx).Editor
	if ok, err := s.rl.allow(ctx, "test-send", ed.Name, s.cfg.TestSendLimit, time.Hour); err != nil || !ok {
		if err == nil {
			err = wrapError(codeTooMany, "too many test sends this hour", errRateLimited)
		}
		s.adminError(w, r, err)
		return
	}
	p := prefsFromQuery(r.PostForm)
	cp, _, err := s.previewParts(ctx, is.Issue, p, strings.TrimSpace(r.PostForm.Get("email")))
	if err == nil {
		_, err = s.deps.Sends.EnqueueMessage(ctx, queue.TransactionalMessage{
			To: to, Subject: "[テスト TEST] " + is.Issue.Title, Text: cp.Text, HTML: cp.HTML, Kind: queue.KindTest,
		})
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "test send queued", "issue", is.Slug, "editor", ed.Name, "prefs", p.Key())
	s.audit(r, "test_send", is.Issue.Title, "宛先 "+to+"・"+prefsLabel(p))
	http.Redirect(w, r, "/admin/issues/"+url.PathEscape(is.Slug)+"?"+previewQuery(p, strings.TrimSpace(r.PostForm.Get("email")))+"&sent=1", http.StatusSeeOther)
}

// handleAdminPlan is the confirmation step before a send: how many readers
// of the list get which variant (a dry run that sends nothing), and the
// state of the send gate.
func (s *server) handleAdminPlan(w http.ResponseWriter, r *http.Request) {
	is, err := s.deps.Store.Issue(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if at := strings.TrimSpace(r.PostForm.Get("at")); at != "" {
		if _, err := time.ParseInLocation("2006-01-02T15:04", at, s.cfg.Location); err != nil {
			s.issuePage(w, r, http.StatusUnprocessableEntity, is, r.PostForm, map[string]string{"at": "cerr.schedule"})
			return
		}
	}
	s.planPage(w, r, http.StatusOK, is, r.PostForm.Get("list"), r.PostForm.Get("at"), "", false)
}

// earlierView is an earlier send of the issue to the list on the
// confirmation page, in the console's language.
type earlierView struct {
	ID      int64
	Running bool
	Text    string
}

// earlierText says which earlier send of the issue went, or goes, to the
// list, in lang.
func (s *server) earlierText(lang, list string, e queue.EarlierSend) string {
	vars := []string{"list", list, "id", strconv.FormatInt(e.ID, 10), "state", translate(lang, "state."+string(e.State)),
		"created", e.CreatedAt.In(s.cfg.Location).Format("2006-01-02 15:04 MST"), "sent", strconv.FormatInt(e.Sent, 10)}
	if e.Running() {
		return translate(lang, "send.earlier_running", vars...)
	}
	return translate(lang, "send.earlier_done", vars...)
}

// sendRefusal is the console's wording, in lang, of the refusals of a
// send that the editor can act on; ok is false for other errors.
func (s *server) sendRefusal(lang string, err error) (string, bool) {
	var (
		dup *queue.DuplicateError
		nl  *queue.NoListError
	)
	switch {
	case errors.As(err, &dup):
		return s.earlierText(lang, dup.List, dup.Earlier), true
	case errors.As(err, &nl):
		return translate(lang, "send.no_list", "list", nl.List), true
	case errors.Is(err, queue.ErrKeyReused):
		return translate(lang, "send.key_reused"), true
	}
	return "", false
}

// planPage shows the confirmation page of a send of is to list (at, when
// set, is the schedule as the editor typed it): the readers per variant,
// the send gate, and the earlier sends of the issue to the list, with the
// box that sends it again to the readers who have not had it. refused is
// the reason of the send gate's refusal, and again is true, when the
// editor has just been refused for that reason or for an earlier send.
// The form carries a fresh idempotency key: a second click sends nothing
// more.
func (s *server) planPage(w http.ResponseWriter, r *http.Request, status int, is *StoredIssue, list, at, refused string, again bool) {
	if list == "" {
		list = s.cfg.List
	}
	lang := s.adminLang(r)
	vs, nothing, err := s.plan(r, is.Issue, list, nil)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	earlier, err := s.deps.Sends.EarlierSends(r.Context(), is.Slug, list)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	var (
		views            []earlierView
		running, blocked bool
	)
	for _, e := range earlier {
		if !e.Blocking() {
			continue
		}
		views = append(views, earlierView{ID: e.ID, Running: e.Running(), Text: s.earlierText(lang, list, e)})
		running = running || e.Running()
		blocked = true
	}
	var total, short, skipped int64
	type row struct {
		variantJSON
		Label   string
		Preview string // the console preview of this variant
	}
	rows := make([]row, len(vs))
	for i, v := range vs {
		switch {
		case v.Skipped:
			skipped += v.Readers
		case v.OnlyNothing:
			short += v.Readers
		default:
			total += v.Readers
		}
		rows[i] = row{variantJSON: v, Label: variantLabel(lang, is.Issue, v.Example),
			Preview: "/admin/issues/" + url.PathEscape(is.Slug) + "?" + prefsQuery(v.Example)}
	}
	gate := s.gateState(r)
	// Lint errors do not stop the dry run: they are shown as warnings,
	// and the send needs the "send anyway" box ticked.
	problems := lint(is)
	s.adminPage(w, r, status, "admin_plan", map[string]any{
		"Problems": problems, "LintErrors": compose.HasErrors(problems),
		"Issue": is, "List": list, "Variants": rows, "Total": total, "Nothing": nothing, "At": at,
		"Short": short, "Skipped": skipped,
		"Gate": gate, "Refused": refused, "GateClosed": refused != "" || (gate != nil && gate.Block),
		"Earlier": views, "Running": running, "NeedAgain": blocked && !running, "AgainRefused": again,
		"Key": newFormKey(),
	})
}

// newFormKey is a send form's idempotency key: random, one per rendering
// of the confirmation page.
func newFormKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func prefsLabel(p audience.Prefs) string {
	var rs, ts []string
	for _, r := range p.Regions {
		rs = append(rs, translate(langJA, "region."+string(r)))
	}
	for _, t := range p.Topics {
		ts = append(ts, translate(langJA, "topic."+string(t)))
	}
	return strings.Join(rs, "・") + " / " + strings.Join(ts, "・")
}

// handleAdminSend creates the send, now or at the scheduled time
// (datetime-local in Config.Location), and shows its progress page, with
// the send gate's warning if it gave one. A send the gate refuses shows
// the confirmation page again with the reason and the box that overrides
// the gate (ignore_gate=yes, logged).
//
// The form's key (hidden field "key", one per confirmation page) makes a
// double click, or a resubmitted form, create one send: the second request
// shows the send the first created. A send of an issue the list had
// already is refused unless the box again=yes is ticked: the confirmation
// page shows again why.
func (s *server) handleAdminSend(w http.ResponseWriter, r *http.Request) {
	req := newSendRequest{Issue: r.PathValue("slug"), List: r.PostForm.Get("list"), IgnoreGate: r.PostForm.Get("ignore_gate") == "yes",
		Again: r.PostForm.Get("again") == "yes", Force: r.PostForm.Get("force") == "yes"}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if key != "" {
		if !validKey(key) {
			s.adminError(w, r, newError(codeInvalid, "the form's key is malformed: open the confirmation page again"))
			return
		}
		key = "console:" + sessionFrom(r.Context()).Editor.Name + ":" + key
	}
	at := strings.TrimSpace(r.PostForm.Get("at"))
	if at != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", at, s.cfg.Location)
		if err != nil {
			if is, ierr := s.deps.Store.Issue(r.Context(), req.Issue); ierr == nil {
				s.issuePage(w, r, http.StatusUnprocessableEntity, is, r.PostForm, map[string]string{"at": "cerr.schedule"})
				return
			}
			s.adminError(w, r, wrapError(codeInvalid, "schedule time must look like 2026-12-01T09:00", err))
			return
		}
		req.At = t
	}
	snd, err := s.createSend(r, req, key)
	reason, blocked := queue.IsBlocked(err)
	if blocked || errors.Is(err, queue.ErrAlreadySent) {
		is, ierr := s.deps.Store.Issue(r.Context(), req.Issue)
		if ierr != nil {
			s.adminError(w, r, err)
			return
		}
		s.logError(r, err, http.StatusConflict)
		s.planPage(w, r, http.StatusConflict, is, req.List, at, reason, !blocked)
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if snd.GateWarning != "" {
		s.setFlash(w, flashKey(snd.ID), snd.GateWarning)
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/sends/%d", snd.ID), http.StatusSeeOther)
}

// flashKey names the send page a flash is meant for.
func flashKey(sendID int64) string { return "send-" + strconv.FormatInt(sendID, 10) }

// ---- sends ----

// progressJSON is a send's progress as the console's script polls it.
type progressJSON struct {
	State    queue.State `json:"state"`
	Final    bool        `json:"final"`
	Planned  int64       `json:"planned"`
	Finished int64       `json:"finished"`
	Sent     int64       `json:"sent"`
	Skipped  int64       `json:"skipped"`
	Failed   int64       `json:"failed"`
	Retrying int64       `json:"retrying"`
	// AlreadyHad: readers a send with again left out (an earlier send
	// gave them the issue).
	AlreadyHad int64  `json:"already_had"`
	Percent    int64  `json:"percent"`
	Rate       string `json:"rate"` // copies per minute since the start
	ETA        string `json:"eta"`
}

func (s *server) progress(snd *queue.Send) progressJSON {
	c := snd.Counts
	p := progressJSON{State: snd.State, Final: snd.State.Final(), Planned: c.Planned, Finished: c.Finished(),
		Sent: c.Sent, Skipped: c.Skipped, Failed: c.FailedTemp + c.FailedPerm, Retrying: c.Retrying, AlreadyHad: c.AlreadyHad,
		Rate: "—", ETA: "—"}
	if c.Planned > 0 {
		p.Percent = p.Finished * 100 / c.Planned
	}
	if snd.State == queue.Done {
		p.Percent = 100
		p.ETA = "—"
	}
	if !snd.StartedAt.IsZero() && p.Finished > 0 {
		end := s.now()
		if !snd.FinishedAt.IsZero() {
			end = snd.FinishedAt
		}
		elapsed := end.Sub(snd.StartedAt)
		if elapsed > 0 {
			perMin := float64(p.Finished) / elapsed.Minutes()
			p.Rate = strconv.FormatFloat(perMin, 'f', 1, 64) + " 通/分"
			if !p.Final && snd.PlanDone && perMin > 0 {
				left := time.Duration(float64(c.Planned-p.Finished) / perMin * float64(time.Minute))
				p.ETA = "約 " + left.Round(time.Second).String()
			}
		}
	}
	return p
}

func (s *server) handleAdminSends(w http.ResponseWriter, r *http.Request) {
	if s.deps.Sends == nil {
		s.adminError(w, r, newError(codeUnavailable, "the queue is not configured"))
		return
	}
	list, err := s.deps.Sends.List(r.Context(), 100)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	type row struct {
		*queue.Send
		P progressJSON
	}
	rows := make([]row, len(list))
	for i, snd := range list {
		rows[i] = row{snd, s.progress(snd)}
	}
	s.adminPage(w, r, http.StatusOK, "admin_sends", map[string]any{"Sends": rows})
}

func (s *server) loadSend(r *http.Request) (*queue.Send, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	if s.deps.Sends == nil {
		return nil, newError(codeUnavailable, "the queue is not configured")
	}
	return s.deps.Sends.Get(r.Context(), id)
}

func (s *server) handleAdminSendPage(w http.ResponseWriter, r *http.Request) {
	snd, err := s.loadSend(r)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	var actions []string
	switch snd.State {
	case queue.Scheduled, queue.Planning, queue.Sending:
		actions = []string{"pause", "cancel"}
	case queue.Paused:
		actions = []string{"resume", "cancel"}
	}
	data := map[string]any{"Send": snd, "P": s.progress(snd), "Actions": actions, "GateWarning": s.takeFlash(w, r, flashKey(snd.ID)),
		"Relay": s.relayTrouble(r.Context(), snd)}
	if s.deps.Failures != nil {
		f, err := s.deps.Failures(r.Context(), snd.ID, 200)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		rows, err := s.failureRows(r.Context(), f)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		data["Failures"] = rows
	}
	secs, total, err := s.sendClicks(r.Context(), snd.ID)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	if secs != nil {
		data["Clicks"], data["ClicksTotal"] = secs, total
	}
	s.adminPage(w, r, http.StatusOK, "admin_send", data)
}

// failureRow is a failed delivery named by the reader's address.
type failureRow struct {
	Failure
	Email    string // "" when the reader's data was erased
	PublicID string // "" when the reader is gone
}

// failureRows names each failure's reader by address, for the link to
// their page.
func (s *server) failureRows(ctx context.Context, fs []Failure) ([]failureRow, error) {
	out := make([]failureRow, len(fs))
	seen := map[int64]subscribers.Subscriber{}
	for i, f := range fs {
		out[i].Failure = f
		sub, ok := seen[f.SubscriberID]
		if !ok {
			var err error
			sub, err = s.deps.Subscribers.Get(ctx, f.SubscriberID)
			if err != nil && !errors.Is(err, subscribers.ErrNotFound) {
				return nil, err
			}
			seen[f.SubscriberID] = sub
		}
		out[i].Email, out[i].PublicID = sub.Email, sub.PublicID
	}
	return out, nil
}

// handleAdminProgress is what the console's script polls: the progress,
// with the state named and explained in the console's language.
func (s *server) handleAdminProgress(w http.ResponseWriter, r *http.Request) {
	snd, err := s.loadSend(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	lang := s.adminLang(r)
	writeJSON(w, http.StatusOK, struct {
		progressJSON
		StateLabel string `json:"state_label"`
		StateHelp  string `json:"state_help"`
	}{s.progress(snd), translate(lang, "state."+string(snd.State)), translate(lang, "statehelp."+string(snd.State))})
}

func (s *server) handleAdminSendAction(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		err = s.sendAction(r, id, r.PathValue("action"))
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/sends/%d", id), http.StatusSeeOther)
}

// ---- feedback ----

// feedbackLimit is the events a page of /admin/feedback lists, newest first.
const feedbackLimit = 200

// gateView is the send gate as the console shows it.
type gateView struct {
	// Read is false when the figures could not be read (the gate is then
	// closed: the queue refuses sends it cannot judge).
	Read            bool
	Block, Warn     bool
	Reason          string
	Figures         feedback.Figures
	Auth            int64
	Rate            string // the complaint rate, "0.12%"
	WarnAt, BlockAt string // the thresholds, "0.1%"
}

// gateState reads the send gate; nil when the server has none. A gate
// that cannot be read shows as closed (the error is logged here).
func (s *server) gateState(r *http.Request) *gateView {
	if s.deps.Gate == nil {
		return nil
	}
	th := s.deps.Gate.Thresholds()
	g := &gateView{WarnAt: pctText(th.Warn, 1), BlockAt: pctText(th.Block, 1)}
	v, f, err := s.deps.Gate.Check(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "read the send gate", "err", err)
		g.Block, g.Reason = true, "cannot read the complaint and refusal figures (see the server log): sends are refused"
		return g
	}
	g.Read, g.Block, g.Warn, g.Reason, g.Figures = true, v.Block, v.Warn, v.Reason, f
	g.Auth, g.Rate = f.AuthReports+f.AuthReplies, pctText(f.ComplaintRate(), 2)
	return g
}

func pctText(rate float64, prec int) string {
	return strconv.FormatFloat(100*rate, 'f', prec, 64) + "%"
}

// handleAdminFeedback shows the send gate with the window's figures and
// the latest feedback events (?kind= keeps one kind), as `tayori feedback`
// prints them, feedbackLimit a page (?before= the last event's id pages on).
func (s *server) handleAdminFeedback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	kind := r.URL.Query().Get("kind")
	q := subscribers.FeedbackQuery{Limit: feedbackLimit}
	q.BeforeID, _ = strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if kind != "" {
		if !slices.Contains(subscribers.FeedbackKinds, kind) {
			s.adminError(w, r, newError(codeInvalid, "unknown kind "+strconv.Quote(kind)+" (want one of "+strings.Join(subscribers.FeedbackKinds, ", ")+")"))
			return
		}
		q.Kinds = []string{kind}
	}
	events, err := s.deps.Subscribers.FeedbackEvents(ctx, q)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	type row struct {
		subscribers.FeedbackEvent
		SubscriberPID   string // "" when the reader is unknown or gone
		SubscriberEmail string // "" when the reader's data was erased
	}
	rows := make([]row, len(events))
	subs := map[int64]subscribers.Subscriber{}
	for i, e := range events {
		rows[i].FeedbackEvent = e
		if e.SubscriberID == 0 {
			continue
		}
		sub, seen := subs[e.SubscriberID]
		if !seen {
			var err error
			sub, err = s.deps.Subscribers.Get(ctx, e.SubscriberID)
			if err != nil && !errors.Is(err, subscribers.ErrNotFound) {
				s.adminError(w, r, err)
				return
			}
			subs[e.SubscriberID] = sub
		}
		rows[i].SubscriberPID, rows[i].SubscriberEmail = sub.PublicID, sub.Email
	}
	data := map[string]any{
		"Gate": s.gateState(r), "Events": rows, "Kinds": subscribers.FeedbackKinds, "Kind": kind, "Paged": q.BeforeID != 0,
	}
	if len(events) == feedbackLimit {
		v := url.Values{"before": {strconv.FormatInt(events[len(events)-1].ID, 10)}}
		if kind != "" {
			v.Set("kind", kind)
		}
		data["Next"] = "/admin/feedback?" + v.Encode()
	}
	s.adminPage(w, r, http.StatusOK, "admin_feedback", data)
}

// ---- subscribers ----

func (s *server) handleAdminSubscribers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := subscribers.ListQuery{Search: q.Get("q"), Limit: 50}
	if st := q.Get("status"); st != "" {
		if status, err := subscribers.ParseStatus(st); err == nil {
			lq.Status = status
		}
	}
	lq.AfterID, _ = strconv.ParseInt(q.Get("after"), 10, 64)
	list, err := s.deps.Subscribers.List(r.Context(), lq)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	data := map[string]any{"Subscribers": list, "Q": lq.Search, "Status": string(lq.Status)}
	if len(list) == lq.Limit {
		v := url.Values{"q": {lq.Search}, "status": {string(lq.Status)}, "after": {strconv.FormatInt(list[len(list)-1].ID, 10)}}
		data["Next"] = "/admin/subscribers?" + v.Encode()
	}
	s.adminPage(w, r, http.StatusOK, "admin_subscribers", data)
}

func (s *server) handleAdminSubscriber(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	consents, err := s.deps.Subscribers.Consents(r.Context(), sub.ID)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	history, err := s.deps.Subscribers.History(r.Context(), sub.ID)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	export, err := s.subscriberExport(r.Context(), sub.ID)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	exp, _ := json.MarshalIndent(export, "", "  ")
	s.adminPage(w, r, http.StatusOK, "admin_subscriber", map[string]any{
		"Sub": sub, "Prefs": prefsLabel(sub.Prefs), "Consents": consents, "History": history, "Export": string(exp),
	})
}

func (s *server) handleAdminSubscriberAction(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	ed := sessionFrom(r.Context()).Editor
	who := maskEmail(sub.Email) // the audit log outlives an erasure: never the whole address
	switch r.PathValue("action") {
	case "unsubscribe":
		err = s.deps.Subscribers.Unsubscribe(r.Context(), sub.ID, "", "unsubscribed in the console by "+ed.Name)
	case "erase":
		if r.PostForm.Get("confirm") != "erase" {
			err = newError(codeInvalid, "tick the box to confirm the erasure")
			break
		}
		err = s.deps.Subscribers.Erase(r.Context(), sub.ID, "erased in the console by "+ed.Name)
	default:
		err = newError(codeNotFound, "unknown action")
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "subscriber "+r.PathValue("action"), "subscriber_id", sub.ID, "editor", ed.Name)
	s.audit(r, r.PathValue("action"), who, "")
	http.Redirect(w, r, "/admin/subscribers/"+url.PathEscape(sub.PublicID), http.StatusSeeOther)
}

func (s *server) handleAdminImport(w http.ResponseWriter, r *http.Request) {
	f, hdr, err := r.FormFile("file")
	if err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "choose a CSV file", err))
		return
	}
	defer f.Close()
	rep, err := s.deps.Subscribers.Import(r.Context(), f, subscribers.ImportOptions{
		Cause: "import " + hdr.Filename + " by " + sessionFrom(r.Context()).Editor.Name})
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.imported(r, hdr.Filename, rep)
	s.adminPage(w, r, http.StatusOK, "admin_import", rep)
}

func (s *server) handleAdminExport(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="subscribers-`+s.now().In(s.cfg.Location).Format("20060102")+`.csv"`)
	n, err := s.deps.Subscribers.ExportCSV(r.Context(), w, subscribers.ExportQuery{})
	if err != nil {
		s.log.ErrorContext(r.Context(), "export subscribers", "err", err)
	}
	s.audit(r, "export", s.cfg.List, strconv.Itoa(n)+" 件")
}
