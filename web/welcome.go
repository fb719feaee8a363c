package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tayori-news/tayori/welcome"
)

// Welcome edits the welcome mail of each list (implemented by
// *welcome.Service). Without it the console's page says it is not set up.
type Welcome interface {
	Template(ctx context.Context, list string) (welcome.Template, error)
	SaveTemplate(ctx context.Context, t welcome.Template) error
	Preview(ctx context.Context, t welcome.Template) (welcome.Mail, error)
}

func (s *server) welcomeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/welcome", s.editor(s.handleAdminWelcome))
	mux.HandleFunc("POST /admin/welcome", s.editor(s.handleAdminWelcomePost))
}

type welcomePage struct {
	Ready    bool
	List     string
	Template welcome.Template
	Preview  *welcome.Mail
	Problems map[string]string // field: the template engine's message
	Saved    bool
}

func (s *server) handleAdminWelcome(w http.ResponseWriter, r *http.Request) {
	list := strings.TrimSpace(r.URL.Query().Get("list"))
	if list == "" {
		list = s.cfg.List
	}
	d := welcomePage{List: list, Saved: r.URL.Query().Get("saved") == "1"}
	if s.deps.Welcome != nil {
		d.Ready = true
		t, err := s.deps.Welcome.Template(r.Context(), list)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		d.Template = t
		if m, err := s.deps.Welcome.Preview(r.Context(), t); err == nil {
			d.Preview = &m
		}
	}
	s.adminPage(w, r, http.StatusOK, "admin_welcome", d)
}

// handleAdminWelcomePost previews (action=preview) or saves the template.
func (s *server) handleAdminWelcomePost(w http.ResponseWriter, r *http.Request) {
	if s.deps.Welcome == nil {
		s.adminError(w, r, newError(codeUnavailable, "the welcome mail is not set up on this server"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	list := strings.TrimSpace(r.PostForm.Get("list"))
	if list == "" {
		list = s.cfg.List
	}
	t := welcome.Template{List: list, Enabled: r.PostForm.Get("enabled") == "on", Subject: r.PostForm.Get("subject"),
		Body: strings.ReplaceAll(r.PostForm.Get("body"), "\r\n", "\n"), UpdatedBy: editorFrom(r.Context()).Name}
	d := welcomePage{Ready: true, List: list, Template: t}
	var err error
	if r.PostForm.Get("action") == "save" {
		err = s.deps.Welcome.SaveTemplate(r.Context(), t)
		if err == nil {
			s.log.InfoContext(r.Context(), "welcome mail saved", "list", list, "enabled", t.Enabled, "editor", t.UpdatedBy)
			http.Redirect(w, r, "/admin/welcome?list="+urlQueryEscape(list)+"&saved=1", http.StatusSeeOther)
			return
		}
	} else {
		var m welcome.Mail
		if m, err = s.deps.Welcome.Preview(r.Context(), t); err == nil {
			d.Preview = &m
		}
	}
	var te *welcome.TemplateError
	if errors.As(err, &te) {
		d.Problems = te.Problems
		s.adminPage(w, r, http.StatusUnprocessableEntity, "admin_welcome", d)
		return
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.adminPage(w, r, http.StatusOK, "admin_welcome", d)
}
