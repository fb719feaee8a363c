package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/tayori-news/tayori/webhooks"
)

// Webhooks manages the outbound webhook endpoints and their delivery log
// (implemented by *webhooks.Service). Without it the console's webhook
// page says they are not set up and the API answers 503.
type Webhooks interface {
	AddEndpoint(ctx context.Context, e webhooks.Endpoint) (webhooks.Endpoint, error)
	Endpoint(ctx context.Context, id int64) (webhooks.Endpoint, error)
	Endpoints(ctx context.Context) ([]webhooks.Endpoint, error)
	SetEnabled(ctx context.Context, id int64, on bool) error
	DeleteEndpoint(ctx context.Context, id int64) error
	Deliveries(ctx context.Context, endpointID int64, limit int) ([]webhooks.Delivery, error)
	Attempts(ctx context.Context, deliveryID int64) ([]webhooks.Attempt, error)
	Replay(ctx context.Context, endpointID, deliveryID int64) error
}

// webhookLog is how many deliveries an endpoint's page and the API list.
const webhookLog = 50

// webhookRoutes registers the console pages and the API of the webhooks.
func (s *server) webhookRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/webhooks", s.editor(s.handleAdminWebhooks))
	mux.HandleFunc("POST /admin/webhooks", s.editor(s.handleAdminAddWebhook))
	mux.HandleFunc("GET /admin/webhooks/{id}", s.editor(s.handleAdminWebhook))
	mux.HandleFunc("POST /admin/webhooks/{id}/{action}", s.editor(s.handleAdminWebhookAction))
	mux.HandleFunc("POST /admin/webhooks/{id}/deliveries/{delivery}/replay", s.editor(s.handleAdminWebhookReplay))

	mux.HandleFunc("GET /api/v1/webhooks", s.apiAuth(s.apiWebhooks))
	mux.HandleFunc("POST /api/v1/webhooks", s.apiAuth(s.apiAddWebhook))
	mux.HandleFunc("GET /api/v1/webhooks/{id}", s.apiAuth(s.apiWebhook))
	mux.HandleFunc("DELETE /api/v1/webhooks/{id}", s.apiAuth(s.apiDeleteWebhook))
	mux.HandleFunc("GET /api/v1/webhooks/{id}/deliveries", s.apiAuth(s.apiWebhookDeliveries))
	mux.HandleFunc("POST /api/v1/webhooks/{id}/deliveries/{delivery}/replay", s.apiAuth(s.apiWebhookReplay))
}

// webhookErr translates the webhooks' errors for the error table.
func webhookErr(err error) error {
	var ee *webhooks.EndpointError
	switch {
	case errors.As(err, &ee):
		return wrapError(codeInvalid, ee.Error(), err)
	case errors.Is(err, webhooks.ErrNotFound):
		return wrapError(codeNotFound, "no such webhook endpoint or delivery", err)
	}
	return err
}

var errNoWebhooks = newError(codeUnavailable, "webhooks are not set up on this server")

// pathInt reads a positive integer path value.
func pathInt(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, newError(codeNotFound, "no such webhook endpoint or delivery")
	}
	return id, nil
}

// ---- console ----

type webhooksPage struct {
	Ready     bool
	Endpoints []webhooks.Endpoint
	Types     []string
	Form      webhooks.Endpoint
	Problems  map[string]string // field: i18n key
	Checked   map[string]bool   // event types ticked in the form
}

func (s *server) handleAdminWebhooks(w http.ResponseWriter, r *http.Request) {
	s.adminWebhooks(w, r, http.StatusOK, webhooksPage{})
}

func (s *server) adminWebhooks(w http.ResponseWriter, r *http.Request, status int, d webhooksPage) {
	d.Types = webhooks.EventTypes
	d.Checked = map[string]bool{}
	for _, e := range d.Form.Events {
		d.Checked[e] = true
	}
	if s.deps.Webhooks != nil {
		d.Ready = true
		eps, err := s.deps.Webhooks.Endpoints(r.Context())
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		d.Endpoints = eps
	}
	s.adminPage(w, r, status, "admin_webhooks", d)
}

func (s *server) handleAdminAddWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.adminError(w, r, errNoWebhooks)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.adminError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	form := webhooks.Endpoint{URL: r.PostForm.Get("url"), Description: r.PostForm.Get("description"), Events: r.PostForm["events"]}
	ep, err := s.deps.Webhooks.AddEndpoint(r.Context(), form)
	var ee *webhooks.EndpointError
	if errors.As(err, &ee) {
		problems := map[string]string{}
		for f := range ee.Problems {
			problems[f] = "wh.bad_" + f
		}
		s.adminWebhooks(w, r, http.StatusUnprocessableEntity, webhooksPage{Form: form, Problems: problems})
		return
	}
	if err != nil {
		s.adminError(w, r, webhookErr(err))
		return
	}
	s.log.InfoContext(r.Context(), "webhook endpoint added", "endpoint", ep.ID, "editor", editorFrom(r.Context()).Name)
	http.Redirect(w, r, "/admin/webhooks/"+strconv.FormatInt(ep.ID, 10)+"?created=1", http.StatusSeeOther)
}

type webhookPage struct {
	Endpoint   webhooks.Endpoint
	Created    bool
	Deliveries []deliveryRow
	Replayed   int64
}

type deliveryRow struct {
	webhooks.Delivery
	Attempts []webhooks.Attempt
}

func (s *server) handleAdminWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.adminError(w, r, errNoWebhooks)
		return
	}
	ctx := r.Context()
	id, err := pathInt(r, "id")
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	ep, err := s.deps.Webhooks.Endpoint(ctx, id)
	if err != nil {
		s.adminError(w, r, webhookErr(err))
		return
	}
	ds, err := s.deps.Webhooks.Deliveries(ctx, id, webhookLog)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	d := webhookPage{Endpoint: ep, Created: r.URL.Query().Get("created") == "1"}
	d.Replayed, _ = strconv.ParseInt(r.URL.Query().Get("replayed"), 10, 64)
	for _, dl := range ds {
		as, err := s.deps.Webhooks.Attempts(ctx, dl.ID)
		if err != nil {
			s.adminError(w, r, err)
			return
		}
		d.Deliveries = append(d.Deliveries, deliveryRow{Delivery: dl, Attempts: as})
	}
	s.adminPage(w, r, http.StatusOK, "admin_webhook", d)
}

func (s *server) handleAdminWebhookAction(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.adminError(w, r, errNoWebhooks)
		return
	}
	ctx := r.Context()
	id, err := pathInt(r, "id")
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	back := "/admin/webhooks/" + strconv.FormatInt(id, 10)
	switch r.PathValue("action") {
	case "enable", "disable":
		err = s.deps.Webhooks.SetEnabled(ctx, id, r.PathValue("action") == "enable")
	case "delete":
		err, back = s.deps.Webhooks.DeleteEndpoint(ctx, id), "/admin/webhooks"
	default:
		err = newError(codeNotFound, "no such action")
	}
	if err != nil {
		s.adminError(w, r, webhookErr(err))
		return
	}
	s.log.InfoContext(ctx, "webhook endpoint "+r.PathValue("action"), "endpoint", id, "editor", editorFrom(ctx).Name)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *server) handleAdminWebhookReplay(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.adminError(w, r, errNoWebhooks)
		return
	}
	id, err := pathInt(r, "id")
	if err == nil {
		var did int64
		if did, err = pathInt(r, "delivery"); err == nil {
			err = s.replay(r.Context(), id, did)
			if err == nil {
				http.Redirect(w, r, "/admin/webhooks/"+strconv.FormatInt(id, 10)+"?replayed="+strconv.FormatInt(did, 10), http.StatusSeeOther)
				return
			}
		}
	}
	s.adminError(w, r, webhookErr(err))
}

// replay queues delivery did of endpoint id again.
func (s *server) replay(ctx context.Context, id, did int64) error {
	if err := s.deps.Webhooks.Replay(ctx, id, did); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "webhook delivery replayed", "endpoint", id, "delivery", did, "editor", editorFrom(ctx).Name)
	return nil
}

// ---- API ----

// apiEndpoint is an endpoint as the API shows it: the secret only in the
// answer that created it.
func apiEndpoint(e webhooks.Endpoint, withSecret bool) webhooks.Endpoint {
	if !withSecret {
		e.Secret = ""
	}
	if e.Events == nil {
		e.Events = []string{}
	}
	return e
}

func (s *server) apiWebhooks(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	eps, err := s.deps.Webhooks.Endpoints(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]webhooks.Endpoint, len(eps))
	for i, e := range eps {
		out[i] = apiEndpoint(e, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out, "event_types": webhooks.EventTypes})
}

func (s *server) apiAddWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	var in struct {
		URL         string   `json:"url"`
		Description string   `json:"description"`
		Events      []string `json:"events"`
		Secret      string   `json:"secret"`
	}
	if err := decodeJSON(r, w, &in); err != nil {
		s.apiError(w, r, err)
		return
	}
	ep, err := s.deps.Webhooks.AddEndpoint(r.Context(), webhooks.Endpoint{URL: in.URL, Description: in.Description,
		Events: in.Events, Secret: in.Secret})
	if err != nil {
		s.apiError(w, r, webhookErr(err))
		return
	}
	s.log.InfoContext(r.Context(), "webhook endpoint added", "endpoint", ep.ID, "editor", editorFrom(r.Context()).Name)
	writeJSON(w, http.StatusCreated, apiEndpoint(ep, true))
}

func (s *server) apiWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	id, err := pathInt(r, "id")
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	ep, err := s.deps.Webhooks.Endpoint(r.Context(), id)
	if err != nil {
		s.apiError(w, r, webhookErr(err))
		return
	}
	writeJSON(w, http.StatusOK, apiEndpoint(ep, false))
}

func (s *server) apiDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	id, err := pathInt(r, "id")
	if err == nil {
		err = s.deps.Webhooks.DeleteEndpoint(r.Context(), id)
	}
	if err != nil {
		s.apiError(w, r, webhookErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) apiWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	id, err := pathInt(r, "id")
	if err == nil {
		_, err = s.deps.Webhooks.Endpoint(r.Context(), id)
	}
	if err != nil {
		s.apiError(w, r, webhookErr(err))
		return
	}
	ds, err := s.deps.Webhooks.Deliveries(r.Context(), id, webhookLog)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if ds == nil {
		ds = []webhooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *server) apiWebhookReplay(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		s.apiError(w, r, errNoWebhooks)
		return
	}
	id, err := pathInt(r, "id")
	if err == nil {
		var did int64
		if did, err = pathInt(r, "delivery"); err == nil {
			err = s.replay(r.Context(), id, did)
		}
	}
	if err != nil {
		s.apiError(w, r, webhookErr(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"replayed": true})
}
