package web

import "net/http"

// automationRoutes registers the console pages and API of the automation
// (issue 22): outbound webhooks (webhooks.go) and the welcome mail
// (welcome.go) and the monthly rhythm (rhythm.go).
func (s *server) automationRoutes(mux *http.ServeMux) {
	s.webhookRoutes(mux)
	s.welcomeRoutes(mux)
	s.rhythmRoutes(mux)
}
