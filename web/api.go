package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// ---- JSON shapes ----

type apiIssueJSON struct {
	*StoredIssue
	Sections int               `json:"sections"`
	Items    int               `json:"items"`
	Problems []compose.Problem `json:"problems"` // the lint (compose.Check)
	Issue    *compose.Issue    `json:"issue,omitempty"`
}

func issueJSON(is *StoredIssue, full bool) apiIssueJSON {
	out := apiIssueJSON{StoredIssue: is, Problems: []compose.Problem{}}
	if is.Issue != nil {
		if full {
			out.Problems = append(out.Problems, lint(is)...)
		}
		out.Sections = len(is.Issue.Sections)
		for _, sec := range is.Issue.Sections {
			out.Items += len(sec.Items)
		}
		if full {
			out.Issue = is.Issue
		}
	}
	return out
}

type sendJSON struct {
	ID          int64           `json:"id"`
	Issue       string          `json:"issue"`
	List        string          `json:"list"`
	Filter      *audience.Prefs `json:"filter,omitempty"`
	State       queue.State     `json:"state"`
	ScheduledAt time.Time       `json:"scheduled_at"`
	StartedAt   time.Time       `json:"started_at,omitzero"`
	FinishedAt  time.Time       `json:"finished_at,omitzero"`
	Counts      queue.Counts    `json:"counts"`
	Progress    progressJSON    `json:"progress"`
	LastError   string          `json:"last_error,omitempty"`
	PauseReason string          `json:"pause_reason,omitempty"`
	// GateWarning is the send gate's warning, on the answer to the
	// request that created the send (it is not stored).
	GateWarning string `json:"gate_warning,omitempty"`
}

func (s *server) sendToJSON(snd *queue.Send) sendJSON {
	out := sendJSON{ID: snd.ID, List: snd.List, Filter: snd.Filter, State: snd.State, ScheduledAt: snd.ScheduledAt,
		StartedAt: snd.StartedAt, FinishedAt: snd.FinishedAt, Counts: snd.Counts, LastError: snd.LastError,
		PauseReason: snd.PauseReason, GateWarning: snd.GateWarning, Progress: s.progress(snd)}
	if snd.Issue != nil {
		out.Issue = snd.Issue.Slug
	}
	return out
}

// clicksJSON is a send's click counts in the API, as the console's send
// page shows them: aggregate numbers per section, item and link of the
// issue, and nothing about who clicked (package clicks keeps nothing).
type clicksJSON struct {
	Total    int64              `json:"total"`
	Sections []clickSectionJSON `json:"sections"`
}

type clickSectionJSON struct {
	Title  string          `json:"title"`
	Clicks int64           `json:"clicks"`
	Items  []clickItemJSON `json:"items"`
}

type clickItemJSON struct {
	Headline string          `json:"headline"`
	Clicks   int64           `json:"clicks"`
	Links    []clickLinkJSON `json:"links"`
}

type clickLinkJSON struct {
	URL    string `json:"url"`
	Clicks int64  `json:"clicks"`
	// FirstDay and LastDay are the UTC days of the first and the latest
	// counted click ("2026-12-07"), absent before the first.
	FirstDay string `json:"first_day,omitempty"`
	LastDay  string `json:"last_day,omitempty"`
}

func clicksToJSON(secs []clickSection, total int64) clicksJSON {
	out := clicksJSON{Total: total, Sections: make([]clickSectionJSON, len(secs))}
	for i, sec := range secs {
		sj := clickSectionJSON{Title: sec.Title, Clicks: sec.Total, Items: make([]clickItemJSON, len(sec.Items))}
		for j, it := range sec.Items {
			ij := clickItemJSON{Headline: it.Headline, Clicks: it.Total, Links: make([]clickLinkJSON, len(it.Links))}
			for k, l := range it.Links {
				ij.Links[k] = clickLinkJSON{URL: l.URL, Clicks: l.Clicks, FirstDay: l.FirstDay, LastDay: l.LastDay}
			}
			sj.Items[j] = ij
		}
		out.Sections[i] = sj
	}
	return out
}

type subscriberJSON struct {
	subscribers.Subscriber
	Consents []subscribers.Consent      `json:"consents,omitempty"`
	History  []subscribers.StatusChange `json:"history,omitempty"`
}

// ---- helpers ----

// decodeJSON reads a JSON body of at most 1 MiB into v, refusing unknown
// fields and trailing data.
func decodeJSON(r *http.Request, w http.ResponseWriter, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return newError(codeUnsupported, "send application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return wrapError(codeInvalid, "malformed JSON: "+err.Error(), err)
	}
	if dec.More() {
		return newError(codeInvalid, "malformed JSON: trailing data")
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, newError(codeNotFound, "no such send")
	}
	return id, nil
}

// ---- issues ----

func (s *server) apiIssues(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Store.Issues(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]apiIssueJSON, len(list))
	for i, is := range list {
		out[i] = issueJSON(is, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"issues": out})
}

func (s *server) apiIssue(w http.ResponseWriter, r *http.Request) {
	is, err := s.deps.Store.Issue(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, issueJSON(is, true))
}

// apiUploadIssue stores an issue sent as the raw body (Markdown with front
// matter, or the plain-text monthly layout); ?name= names it in problem
// reports. Parse problems are 422 with every problem listed.
func (s *server) apiUploadIssue(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "upload"
	}
	data, err := compose.ReadLimited(http.MaxBytesReader(w, r.Body, compose.MaxInputSize+1), name)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	is, problems, err := s.saveUpload(r, name, data)
	if problems != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{
			"code": codeInvalid, "message": "the issue has problems", "problems": problems}})
		return
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, issueJSON(is, false))
}

// lint checks a stored issue with compose.Check. It re-reads the
// uploaded source so that problems carry their line numbers (the stored
// JSON has none).
func lint(is *StoredIssue) []compose.Problem {
	if parsed, err := compose.Parse(is.SourceName, is.Source); err == nil {
		return compose.Check(parsed)
	}
	return compose.Check(is.Issue)
}

// saveUpload parses an uploaded issue and stores it. problems lists every
// parse problem (file:line: message) when the source is not valid.
func (s *server) saveUpload(r *http.Request, name string, data []byte) (*StoredIssue, []string, error) {
	issue, err := compose.Parse(name, data)
	if err != nil {
		var list compose.Errors
		var one *compose.Error
		switch {
		case errors.As(err, &list):
			out := make([]string, len(list))
			for i, e := range list {
				out[i] = e.Error()
			}
			return nil, out, err
		case errors.As(err, &one) && !errors.Is(err, compose.ErrTooLarge):
			return nil, []string{one.Error()}, err
		}
		return nil, nil, err
	}
	is, err := s.deps.Store.SaveIssue(r.Context(), issue, name, data, editorFrom(r.Context()).Name)
	if err != nil {
		return nil, nil, err
	}
	if f, ok := s.deps.Renderer.(interface{ Forget(string) }); ok {
		f.Forget(issue.Slug) // the content under this slug may have changed
	}
	s.log.InfoContext(r.Context(), "issue uploaded", "issue", issue.Slug, "editor", editorFrom(r.Context()).Name)
	s.audit(r, "upload", issue.Title, name)
	return is, nil, nil
}

type variantJSON struct {
	Key     string         `json:"key"`
	Readers int64          `json:"readers"`
	Example audience.Prefs `json:"example"`
	// OnlyNothing: the short copy of readers whose chosen sections all
	// have nothing this month; Skipped: the list leaves them out.
	OnlyNothing bool `json:"only_nothing,omitempty"`
	Skipped     bool `json:"skipped,omitempty"`
}

// apiPlan is a dry run: how many readers of ?list= would get which variant.
func (s *server) apiPlan(w http.ResponseWriter, r *http.Request) {
	is, err := s.deps.Store.Issue(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	list := r.URL.Query().Get("list")
	if list == "" {
		list = s.cfg.List
	}
	vs, nothing, err := s.plan(r, is.Issue, list, nil)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"issue": is.Slug, "list": list, "variants": vs, "nothing_to_send": nothing})
}

func (s *server) plan(r *http.Request, issue *compose.Issue, list string, filter *audience.Prefs) ([]variantJSON, int64, error) {
	if s.deps.Sends == nil {
		return nil, 0, newError(codeUnavailable, "the queue is not configured")
	}
	vs, nothing, err := s.deps.Sends.Preview(r.Context(), issue, list, filter)
	if err != nil {
		return nil, 0, err
	}
	out := make([]variantJSON, len(vs))
	for i, v := range vs {
		out[i] = variantJSON{Key: v.Key, Readers: v.Readers, Example: v.Example, OnlyNothing: v.OnlyNothing, Skipped: v.Skipped}
	}
	return out, nothing, nil
}

// ---- sends ----

func (s *server) apiSends(w http.ResponseWriter, r *http.Request) {
	if s.deps.Sends == nil {
		s.apiError(w, r, newError(codeUnavailable, "the queue is not configured"))
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := s.deps.Sends.List(r.Context(), min(max(limit, 1), 200))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]sendJSON, len(list))
	for i, snd := range list {
		out[i] = s.sendToJSON(snd)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sends": out})
}

// newSendRequest is the body of POST /api/v1/sends.
type newSendRequest struct {
	Issue  string          `json:"issue"`
	List   string          `json:"list"`
	Filter *audience.Prefs `json:"filter"`
	At     time.Time       `json:"at"`
	// IgnoreGate sends although the send gate is closed (logged with the
	// editor's name).
	IgnoreGate bool `json:"ignore_gate"`
	// Again sends an issue that went to the list before, to the readers
	// who have not had it (queue.NewSend.Again).
	Again bool `json:"again"`
	// Force sends although the lint finds errors (logged with the
	// editor's name). Dry runs and test sends never need it.
	Force bool `json:"force"`
}

// validKey reports whether an idempotency key is 1 to 255 visible ASCII
// characters.
func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// apiCreateSend creates a send. With an Idempotency-Key header, a request
// repeated with the same key and body gets the send the first created
// (200, Idempotent-Replayed: true) instead of another, and the same key
// with another body is refused (422 idempotency_key_reused). Keys belong
// to the token's editor.
func (s *server) apiCreateSend(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		if !validKey(key) {
			s.apiError(w, r, newError(codeInvalid, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
			return
		}
		key = "api:" + editorFrom(r.Context()).Name + ":" + key
	}
	var req newSendRequest
	if err := decodeJSON(r, w, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	snd, err := s.createSend(r, req, key)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/sends/%d", snd.ID))
	if snd.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, s.sendToJSON(snd))
		return
	}
	writeJSON(w, http.StatusCreated, s.sendToJSON(snd))
}

// createSend creates the send req asks for; key, if set, is its
// idempotency key, already scoped to the editor.
func (s *server) createSend(r *http.Request, req newSendRequest, key string) (*queue.Send, error) {
	if s.deps.Sends == nil {
		return nil, newError(codeUnavailable, "the queue is not configured")
	}
	is, err := s.deps.Store.Issue(r.Context(), req.Issue)
	if err != nil {
		return nil, err
	}
	lintErrors := compose.HasErrors(lint(is))
	if lintErrors && !req.Force {
		return nil, newError(codeLint, "the issue has lint errors: fix them, or send anyway with force")
	}
	st, err := s.deps.Store.IssueState(r.Context(), is.Slug)
	if err != nil {
		return nil, err
	}
	if st.Head != st.Valid {
		return nil, newError(codeLint, "the newest revision of the issue does not parse: fix it in the composer")
	}
	if req.List == "" {
		req.List = s.cfg.List
	}
	if !req.At.IsZero() && req.At.Before(s.now().Add(-time.Minute)) {
		return nil, newError(codeInvalid, "at is in the past")
	}
	ed := editorFrom(r.Context()).Name
	snd, err := s.deps.Sends.Create(r.Context(), queue.NewSend{Issue: is.Issue, List: req.List, Filter: req.Filter, At: req.At,
		IgnoreGate: req.IgnoreGate, Again: req.Again, Key: key})
	if err != nil {
		return nil, err
	}
	if snd.Replayed {
		s.log.InfoContext(r.Context(), "send request repeated: the send it created is returned", "send_id", snd.ID, "editor", ed)
		return snd, nil
	}
	// The issue is sent: it is locked, later changes are corrections.
	if err := s.deps.Store.MarkSent(r.Context(), is.Slug, st.Valid); err != nil {
		s.log.ErrorContext(r.Context(), "lock a sent issue", "issue", is.Slug, "send_id", snd.ID, "err", err)
	}
	if lintErrors {
		s.log.WarnContext(r.Context(), "send created with lint errors (forced)", "send_id", snd.ID, "issue", is.Slug, "editor", ed)
	}
	detail := "リスト " + req.List
	if !req.At.IsZero() {
		detail += "・予約 " + req.At.In(s.cfg.Location).Format("2006-01-02 15:04 MST")
	}
	if req.Again {
		detail += "・再送"
	}
	if req.IgnoreGate {
		detail += "・送信ゲートを無視"
	}
	if lintErrors {
		detail += "・検査エラーを承知で送信"
	}
	s.audit(r, "send", is.Issue.Title, detail)
	if req.IgnoreGate {
		s.log.WarnContext(r.Context(), "send created with the send gate ignored", "send_id", snd.ID, "issue", is.Slug, "editor", ed,
			"gate_warning", snd.GateWarning)
	} else {
		s.log.InfoContext(r.Context(), "send created", "send_id", snd.ID, "issue", is.Slug, "editor", ed)
	}
	return snd, nil
}

func (s *server) apiSend(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil && s.deps.Sends == nil {
		err = newError(codeUnavailable, "the queue is not configured")
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	snd, err := s.deps.Sends.Get(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := map[string]any{"send": s.sendToJSON(snd)}
	if s.deps.Failures != nil {
		f, err := s.deps.Failures(r.Context(), id, 100)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out["failures"] = f
	}
	secs, total, err := s.sendClicks(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if secs != nil {
		out["clicks"] = clicksToJSON(secs, total)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) sendAction(r *http.Request, id int64, action string) error {
	if s.deps.Sends == nil {
		return newError(codeUnavailable, "the queue is not configured")
	}
	by := "by editor " + editorFrom(r.Context()).Name
	var err error
	switch action {
	case "pause":
		err = s.deps.Sends.Pause(r.Context(), id, "paused "+by)
	case "resume":
		err = s.deps.Sends.Resume(r.Context(), id)
	case "cancel":
		err = s.deps.Sends.Cancel(r.Context(), id, "cancelled "+by)
	default:
		return newError(codeNotFound, "unknown action "+strconv.Quote(action)+" (want pause, resume or cancel)")
	}
	if err == nil {
		s.auditSend(r, action, id)
	}
	return err
}

func (s *server) apiSendAction(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		err = s.sendAction(r, id, r.PathValue("action"))
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	snd, err := s.deps.Sends.Get(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sendToJSON(snd))
}

// ---- subscribers ----

func (s *server) apiSubscribers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := subscribers.ListQuery{Search: q.Get("search"), List: q.Get("list")}
	if st := q.Get("status"); st != "" {
		status, err := subscribers.ParseStatus(st)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		lq.Status = status
	}
	lq.AfterID, _ = strconv.ParseInt(q.Get("after"), 10, 64)
	lq.Limit, _ = strconv.Atoi(q.Get("limit"))
	list, err := s.deps.Subscribers.List(r.Context(), lq)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := map[string]any{"subscribers": list}
	if n := len(list); n > 0 {
		out["next_after"] = list[n-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) subscriberByPID(r *http.Request) (subscribers.Subscriber, error) {
	pid := r.PathValue("pid")
	if len(pid) > 64 {
		return subscribers.Subscriber{}, fmt.Errorf("subscriber: %w", subscribers.ErrNotFound)
	}
	return s.deps.Subscribers.GetByPublicID(r.Context(), pid)
}

func (s *server) apiSubscriber(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := subscriberJSON{Subscriber: sub}
	if out.Consents, err = s.deps.Subscribers.Consents(r.Context(), sub.ID); err == nil {
		out.History, err = s.deps.Subscribers.History(r.Context(), sub.ID)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// newSubscriberRequest is the body of POST /api/v1/subscribers. Without a
// consent the subscriber is pending (and is sent a confirmation mail when
// send_confirmation is true); with one they are active at once.
type newSubscriberRequest struct {
	Email            string          `json:"email"`
	Name             string          `json:"name"`
	Prefs            *audience.Prefs `json:"prefs"`
	Lists            []string        `json:"lists"`
	Consent          *consentRequest `json:"consent"`
	SendConfirmation bool            `json:"send_confirmation"`
}

type consentRequest struct {
	At          time.Time `json:"at"`
	Method      string    `json:"method"`
	FormVersion string    `json:"form_version"`
	Text        string    `json:"text"`
	IP          string    `json:"ip"`
	UserAgent   string    `json:"user_agent"`
}

func (s *server) apiAddSubscriber(w http.ResponseWriter, r *http.Request) {
	var req newSubscriberRequest
	if err := decodeJSON(r, w, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	ns := subscribers.NewSubscriber{Email: req.Email, Name: req.Name, Prefs: req.Prefs, Lists: req.Lists,
		Method: subscribers.API, Cause: "api add by " + editorFrom(r.Context()).Name}
	if c := req.Consent; c != nil {
		if strings.TrimSpace(c.Text) == "" || c.FormVersion == "" {
			s.apiError(w, r, newError(codeInvalid, "consent needs form_version and the text the reader agreed to"))
			return
		}
		ns.Consent = &subscribers.Consent{At: c.At, Method: subscribers.API, FormVersion: c.FormVersion, Text: c.Text,
			IP: c.IP, UserAgent: c.UserAgent}
		if c.Method != "" {
			m, err := subscribers.ParseMethod(c.Method)
			if err != nil {
				s.apiError(w, r, err)
				return
			}
			ns.Consent.Method = m
		}
	}
	sub, err := s.deps.Subscribers.Add(r.Context(), ns)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if req.SendConfirmation && sub.Status == subscribers.Pending {
		list := s.cfg.List
		if len(req.Lists) > 0 {
			list = req.Lists[0]
		}
		tok, err := s.deps.Subscribers.ConfirmToken(r.Context(), sub.ID, list)
		if err == nil {
			err = s.sendConfirmation(r.Context(), sub, tok, langJA)
		}
		if err != nil {
			s.apiError(w, r, err)
			return
		}
	}
	w.Header().Set("Location", "/api/v1/subscribers/"+sub.PublicID)
	writeJSON(w, http.StatusCreated, sub)
}

// updateSubscriberRequest is the body of PATCH /api/v1/subscribers/{pid}.
type updateSubscriberRequest struct {
	Name  *string         `json:"name"`
	Prefs *audience.Prefs `json:"prefs"`
}

func (s *server) apiUpdateSubscriber(w http.ResponseWriter, r *http.Request) {
	var req updateSubscriberRequest
	if err := decodeJSON(r, w, &req); err != nil {
		s.apiError(w, r, err)
		return
	}
	sub, err := s.subscriberByPID(r)
	if err == nil {
		sub, err = s.deps.Subscribers.Update(r.Context(), sub.ID, subscribers.Update{Name: req.Name, Prefs: req.Prefs})
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sub)
}

func (s *server) apiEraseSubscriber(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err == nil {
		err = s.deps.Subscribers.Erase(r.Context(), sub.ID, "erased through the API by "+editorFrom(r.Context()).Name)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "subscriber erased", "subscriber_id", sub.ID, "editor", editorFrom(r.Context()).Name)
	s.audit(r, "erase", maskEmail(sub.Email), "API")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiUnsubscribeSubscriber(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err == nil {
		err = s.deps.Subscribers.Unsubscribe(r.Context(), sub.ID, r.URL.Query().Get("list"), "unsubscribed through the API by "+editorFrom(r.Context()).Name)
	}
	if err == nil {
		sub, err = s.deps.Subscribers.Get(r.Context(), sub.ID)
	}
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sub)
}

// apiExport returns one subscriber's data (GDPR Art. 15/20).
func (s *server) apiExport(w http.ResponseWriter, r *http.Request) {
	sub, err := s.subscriberByPID(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	exp, err := s.subscriberExport(r.Context(), sub.ID)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, exp)
}

// apiImport imports a CSV body (text/csv) and answers with the row report;
// ?list= names the list, ?dry_run=true validates without writing.
func (s *server) apiImport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rep, err := s.deps.Subscribers.Import(r.Context(), http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload), subscribers.ImportOptions{
		List: q.Get("list"), DryRun: q.Get("dry_run") == "true", Cause: "api import by " + editorFrom(r.Context()).Name})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if q.Get("dry_run") != "true" {
		s.imported(r, "API", rep)
	}
	writeJSON(w, http.StatusOK, rep)
}

// fieldProblems returns the field errors of a subscribers validation error
// for the API's error body.
func fieldProblems(err error) []*subscribers.FieldError {
	var ve *subscribers.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	var fe *subscribers.FieldError
	if errors.As(err, &fe) {
		return []*subscribers.FieldError{fe}
	}
	return nil
}
