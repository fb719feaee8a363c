package web

import (
	"encoding/json"
	"net/http"
)

// apiErrorBody is the JSON shape of every API error.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  any    `json:"fields,omitempty"`
	} `json:"error"`
}

// apiError answers an API request that failed, as
// {"error":{"code":…,"message":…}} with the status of the error table.
func (s *server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := classify(err)
	s.logError(r, err, status)
	var body apiErrorBody
	body.Error.Code = code
	body.Error.Message = publicMessage(err, code)
	if fe := fieldProblems(err); fe != nil {
		body.Error.Fields = fe
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "600")
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// adminError answers a console request that failed with the message page.
func (s *server) adminError(w http.ResponseWriter, r *http.Request, err error) {
	_, status := classify(err)
	s.logError(r, err, status)
	lang := s.adminLang(r)
	sess := sessionFrom(r.Context())
	s.render(w, r, status, "admin_error", &page{Lang: lang, Admin: true, Editor: sess.Editor.Name, CSRF: sess.CSRF,
		Data: map[string]any{"Status": status, "Message": consoleMessage(lang, err)}})
}
