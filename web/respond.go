package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tayori-news/tayori/queue"
)

// apiErrorBody is the JSON shape of every API error.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  any    `json:"fields,omitempty"`
		// EarlierSend is the send that stands in the way of a second send
		// of an issue to a list (already_sent).
		EarlierSend *earlierSendJSON `json:"earlier_send,omitempty"`
	} `json:"error"`
}

// earlierSendJSON is an earlier send of an issue to a list.
type earlierSendJSON struct {
	ID         int64       `json:"id"`
	State      queue.State `json:"state"`
	CreatedAt  time.Time   `json:"created_at"`
	FinishedAt time.Time   `json:"finished_at,omitzero"`
	Sent       int64       `json:"sent"`
	Running    bool        `json:"running"`
}

func earlierJSON(e queue.EarlierSend) *earlierSendJSON {
	return &earlierSendJSON{ID: e.ID, State: e.State, CreatedAt: e.CreatedAt, FinishedAt: e.FinishedAt, Sent: e.Sent, Running: e.Running()}
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
	var dup *queue.DuplicateError
	if errors.As(err, &dup) {
		body.Error.EarlierSend = earlierJSON(dup.Earlier)
		body.Error.Message = apiDuplicateMessage(dup)
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

// apiDuplicateMessage words a refused second send for API clients.
func apiDuplicateMessage(dup *queue.DuplicateError) string {
	if dup.Earlier.Running() {
		return dup.Error() + `: wait for it to end (or cancel it); then "again": true sends the issue to the readers who have not had it`
	}
	return dup.Error() + `: "again": true sends it to the readers who have not had it`
}

// adminError answers a console request that failed with the message page.
func (s *server) adminError(w http.ResponseWriter, r *http.Request, err error) {
	_, status := classify(err)
	s.logError(r, err, status)
	lang := s.adminLang(r)
	msg := consoleMessage(lang, err)
	if m, ok := s.sendRefusal(lang, err); ok {
		msg = m
	}
	sess := sessionFrom(r.Context())
	s.render(w, r, status, "admin_error", &page{Lang: lang, Admin: true, Editor: sess.Editor.Name, CSRF: sess.CSRF,
		Data: map[string]any{"Status": status, "Message": msg}})
}
