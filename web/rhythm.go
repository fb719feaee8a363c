package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tayori-news/tayori/rhythm"
)

// Rhythm manages each list's recurring send rule (implemented by
// *rhythm.Runner). Without it the console's page says it is not set up.
type Rhythm interface {
	Rule(ctx context.Context, list string) (rhythm.Rule, bool, error)
	SaveRule(ctx context.Context, r rhythm.Rule, by string) error
	Next(ctx context.Context, list string) (time.Time, bool, error)
	SkipNext(ctx context.Context, list, by string) (string, error)
}

func (s *server) rhythmRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/rhythm", s.editor(s.handleAdminRhythm))
	mux.HandleFunc("POST /admin/rhythm", s.editor(s.handleAdminRhythmSave))
	mux.HandleFunc("POST /admin/rhythm/skip", s.editor(s.handleAdminRhythmSkip))
}

type rhythmPage struct {
	Ready     bool
	List      string
	Rule      rhythm.Rule
	Time      string // "10:00"
	RemindTo  string // one address a line
	Next      time.Time
	NextMonth string
	NextReady bool
	Problems  map[string]string
	Saved     bool
	Skipped   string
	Nths      []int
	Weekdays  []time.Weekday
}

func (s *server) rhythmList(r *http.Request) string {
	list := strings.TrimSpace(r.FormValue("list"))
	if list == "" {
		list = s.cfg.List
	}
	return list
}

func (s *server) handleAdminRhythm(w http.ResponseWriter, r *http.Request) {
	list := s.rhythmList(r)
	d := rhythmPage{List: list, Saved: r.URL.Query().Get("saved") == "1", Skipped: r.URL.Query().Get("skipped")}
	if s.deps.Rhythm != nil {
		rule, ok, err := s.deps.Rhythm.Rule(r.Context(), list)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		if !ok {
			// A first Tuesday at 10:00, off until the editor saves it.
			rule = rhythm.Rule{List: list, Nth: 1, Weekday: time.Tuesday, Hour: 10, Zone: s.cfg.Location.String(), RemindDays: 3}
		}
		d.Rule = rule
	}
	s.rhythmPage(w, r, http.StatusOK, d)
}

func (s *server) rhythmPage(w http.ResponseWriter, r *http.Request, status int, d rhythmPage) {
	d.Nths, d.Weekdays = []int{1, 2, 3, 4, -1}, []time.Weekday{0, 1, 2, 3, 4, 5, 6}
	if s.deps.Rhythm != nil {
		d.Ready = true
		if d.Time == "" {
			d.Time = fmt.Sprintf("%02d:%02d", d.Rule.Hour, d.Rule.Minute)
		}
		if d.RemindTo == "" {
			d.RemindTo = strings.Join(d.Rule.RemindTo, "\n")
		}
		next, ready, err := s.deps.Rhythm.Next(r.Context(), d.List)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		d.Next, d.NextReady = next, ready
		if !next.IsZero() {
			d.NextMonth = d.Rule.Month(next)
		}
	}
	s.adminPage(w, r, status, "admin_rhythm", d)
}

func (s *server) handleAdminRhythmSave(w http.ResponseWriter, r *http.Request) {
	if s.deps.Rhythm == nil {
		s.adminError(w, r, newError(codeUnavailable, "the monthly rhythm is not set up on this server"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	ctx := r.Context()
	list := s.rhythmList(r)
	old, _, err := s.deps.Rhythm.Rule(ctx, list)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	f := r.PostForm
	rule := rhythm.Rule{List: list, Enabled: f.Get("enabled") == "on", Zone: s.cfg.Location.String(), Skip: old.Skip}
	problems := map[string]string{}
	if rule.Nth, err = strconv.Atoi(f.Get("nth")); err != nil {
		problems["nth"] = "bad"
	}
	wd, err := strconv.Atoi(f.Get("weekday"))
	if err != nil {
		problems["weekday"] = "bad"
	}
	rule.Weekday = time.Weekday(wd)
	if _, err := fmt.Sscanf(f.Get("time"), "%d:%d", &rule.Hour, &rule.Minute); err != nil {
		problems["time"] = "bad"
	}
	if v := strings.TrimSpace(f.Get("remind_days")); v != "" {
		if rule.RemindDays, err = strconv.Atoi(v); err != nil {
			problems["remind_days"] = "bad"
		}
	}
	for _, a := range strings.Fields(strings.ReplaceAll(f.Get("remind_to"), ",", " ")) {
		rule.RemindTo = append(rule.RemindTo, a)
	}
	if len(problems) == 0 {
		err = s.deps.Rhythm.SaveRule(ctx, rule, editorFrom(ctx).Name)
		var re *rhythm.RuleError
		if errors.As(err, &re) {
			problems = re.Problems
		} else if err != nil {
			s.adminError(w, r, err)
			return
		}
	}
	if len(problems) > 0 {
		s.rhythmPage(w, r, http.StatusUnprocessableEntity, rhythmPage{List: list, Rule: rule, Problems: problems,
			Time: f.Get("time"), RemindTo: f.Get("remind_to")})
		return
	}
	s.log.InfoContext(ctx, "send rule saved", "list", list, "enabled", rule.Enabled, "editor", editorFrom(ctx).Name)
	http.Redirect(w, r, "/admin/rhythm?list="+urlQueryEscape(list)+"&saved=1", http.StatusSeeOther)
}

func (s *server) handleAdminRhythmSkip(w http.ResponseWriter, r *http.Request) {
	if s.deps.Rhythm == nil {
		s.adminError(w, r, newError(codeUnavailable, "the monthly rhythm is not set up on this server"))
		return
	}
	list := s.rhythmList(r)
	m, err := s.deps.Rhythm.SkipNext(r.Context(), list, editorFrom(r.Context()).Name)
	if errors.Is(err, rhythm.ErrInvalid) {
		err = wrapError(codeConflict, "c.rh_nothing_to_skip", err)
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "month skipped", "list", list, "month", m, "editor", editorFrom(r.Context()).Name)
	http.Redirect(w, r, "/admin/rhythm?list="+urlQueryEscape(list)+"&skipped="+urlQueryEscape(m), http.StatusSeeOther)
}
