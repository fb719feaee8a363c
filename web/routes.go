package web

import (
	"io/fs"
	"net/http"
	"strings"
)

// routes is the one table of every route the server answers.
func (s *server) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.staticHandler(static)))
	mux.HandleFunc("/", s.handleNotFound) // any path no route knows: the public 404 page
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	if s.cfg.MetricsToken != "" && s.deps.MetricsHandler != nil {
		mux.Handle("GET /metrics", s.metricsAuth(s.deps.MetricsHandler))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/subscribe", http.StatusSeeOther)
	})

	// Public subscriber pages. A GET never changes state.
	mux.HandleFunc("GET /subscribe", s.handleSubscribeForm)
	mux.HandleFunc("POST /subscribe", s.sameOrigin(s.handleSubscribe))
	mux.HandleFunc("GET /confirm/{token}", s.handleConfirmPage)
	mux.HandleFunc("POST /confirm/{token}", s.sameOrigin(s.handleConfirm))
	mux.HandleFunc("GET /p/{token}", s.handlePrefsPage)
	mux.HandleFunc("POST /p/{token}", s.sameOrigin(s.handlePrefs))
	mux.HandleFunc("GET /u/{token}", s.handleUnsubscribePage)
	mux.HandleFunc("GET /unsubscribe", s.handleUnsubscribeHelp)
	mux.HandleFunc("POST /u/{token}", s.handleUnsubscribe) // RFC 8058: no cookies, no origin check

	// Archive of sent issues.
	mux.HandleFunc("GET /archive", s.handleArchive)
	mux.HandleFunc("GET /archive/feed.atom", s.handleFeed)
	mux.HandleFunc("GET /archive/{slug}", s.handleArchiveIssue)
	mux.HandleFunc("GET /issues/{slug}", s.handleArchiveIssue) // the "view in browser" link of every mail

	// Editor console.
	mux.HandleFunc("GET /admin/login", s.handleLoginPage)
	mux.HandleFunc("POST /admin/login", s.sameOrigin(s.handleLogin))
	mux.HandleFunc("POST /admin/logout", s.editor(s.handleLogout))
	mux.HandleFunc("GET /admin/{$}", s.editor(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/issues", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /admin/issues", s.editor(s.handleAdminIssues))
	mux.HandleFunc("POST /admin/issues", s.editor(s.handleAdminUpload))
	mux.HandleFunc("GET /admin/issues/{slug}", s.editor(s.handleAdminIssue))
	// The composer (composer*.go).
	mux.HandleFunc("GET /admin/issues/new", s.editor(s.handleNewIssuePage))
	mux.HandleFunc("POST /admin/issues/new", s.editor(s.handleNewIssue))
	mux.HandleFunc("GET /admin/issues/{slug}/edit", s.editor(s.handleComposerPage))
	mux.HandleFunc("POST /admin/issues/{slug}/edit", s.composerPost(s.handleComposerSave))
	mux.HandleFunc("GET /admin/issues/{slug}/resume", s.editor(s.handleComposerResume))
	mux.HandleFunc("POST /admin/issues/{slug}/lint", s.editor(s.handleComposerLint))
	mux.HandleFunc("POST /admin/issues/{slug}/preview", s.editor(s.handleComposerPreview))
	mux.HandleFunc("GET /admin/preview/{ticket}", s.editor(s.handlePreviewHTML))
	mux.HandleFunc("POST /admin/issues/{slug}/upload", s.editor(s.handleComposerUpload))
	mux.HandleFunc("POST /admin/issues/{slug}/merge", s.editor(s.handleMerge))
	mux.HandleFunc("GET /admin/issues/{slug}/revisions", s.editor(s.handleRevisions))
	mux.HandleFunc("GET /admin/issues/{slug}/diff", s.editor(s.handleDiff))
	mux.HandleFunc("POST /admin/issues/{slug}/revisions/{n}/restore", s.editor(s.handleRestore))
	mux.HandleFunc("GET /admin/issues/{slug}/download", s.editor(s.handleDownload))
	mux.HandleFunc("GET /admin/issues/{slug}/revisions/{n}/download", s.editor(s.handleDownload))
	mux.HandleFunc("GET /admin/issues/{slug}/preview.html", s.editor(s.handleAdminPreviewHTML))
	mux.HandleFunc("POST /admin/issues/{slug}/test", s.editor(s.handleAdminTestSend))
	mux.HandleFunc("POST /admin/issues/{slug}/plan", s.editor(s.handleAdminPlan))
	mux.HandleFunc("POST /admin/issues/{slug}/send", s.editor(s.handleAdminSend))
	mux.HandleFunc("GET /admin/sends", s.editor(s.handleAdminSends))
	mux.HandleFunc("GET /admin/sends/{id}", s.editor(s.handleAdminSendPage))
	mux.HandleFunc("GET /admin/sends/{id}/progress", s.editor(s.handleAdminProgress))
	mux.HandleFunc("POST /admin/sends/{id}/{action}", s.editor(s.handleAdminSendAction))
	mux.HandleFunc("GET /admin/feedback", s.editor(s.handleAdminFeedback))
	mux.HandleFunc("GET /admin/signins", s.editor(s.handleAdminSignins))
	mux.HandleFunc("GET /admin/subscribers", s.editor(s.handleAdminSubscribers))
	mux.HandleFunc("GET /admin/subscribers/export.csv", s.editor(s.handleAdminExport))
	mux.HandleFunc("POST /admin/subscribers/import", s.editor(s.handleAdminImport))
	mux.HandleFunc("GET /admin/subscribers/{pid}", s.editor(s.handleAdminSubscriber))
	mux.HandleFunc("POST /admin/subscribers/{pid}/{action}", s.editor(s.handleAdminSubscriberAction))
	// Operations (ops.go): the Asynq queues, workers and failed tasks, and
	// the audit log.
	mux.HandleFunc("GET /admin/ops", s.editor(s.handleOps))
	mux.HandleFunc("POST /admin/ops/tasks/{action}", s.editor(s.handleOpsTask))
	mux.HandleFunc("GET /admin/audit", s.editor(s.handleAudit))
	mux.HandleFunc("GET /admin/audit.csv", s.editor(s.handleAuditCSV))

	// JSON API (bearer tokens).
	mux.HandleFunc("GET /api/v1/issues", s.apiAuth(s.apiIssues))
	mux.HandleFunc("POST /api/v1/issues", s.apiAuth(s.apiUploadIssue))
	mux.HandleFunc("GET /api/v1/issues/{slug}", s.apiAuth(s.apiIssue))
	mux.HandleFunc("GET /api/v1/issues/{slug}/plan", s.apiAuth(s.apiPlan))
	mux.HandleFunc("GET /api/v1/sends", s.apiAuth(s.apiSends))
	mux.HandleFunc("POST /api/v1/sends", s.apiAuth(s.apiCreateSend))
	mux.HandleFunc("GET /api/v1/sends/{id}", s.apiAuth(s.apiSend))
	mux.HandleFunc("POST /api/v1/sends/{id}/{action}", s.apiAuth(s.apiSendAction))
	mux.HandleFunc("GET /api/v1/subscribers", s.apiAuth(s.apiSubscribers))
	mux.HandleFunc("POST /api/v1/subscribers", s.apiAuth(s.apiAddSubscriber))
	mux.HandleFunc("POST /api/v1/subscribers/import", s.apiAuth(s.apiImport))
	mux.HandleFunc("GET /api/v1/subscribers/{pid}", s.apiAuth(s.apiSubscriber))
	mux.HandleFunc("GET /api/v1/subscribers/{pid}/export", s.apiAuth(s.apiExport))
	mux.HandleFunc("PATCH /api/v1/subscribers/{pid}", s.apiAuth(s.apiUpdateSubscriber))
	mux.HandleFunc("DELETE /api/v1/subscribers/{pid}", s.apiAuth(s.apiEraseSubscriber))
	mux.HandleFunc("POST /api/v1/subscribers/{pid}/unsubscribe", s.apiAuth(s.apiUnsubscribeSubscriber))
	s.automationRoutes(mux) // automation.go: webhooks, welcome mail
	s.clickRoutes(mux)      // clicks.go: counting redirects, list settings
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, newError(codeNotFound, "no such API endpoint"))
	})
}

// staticHandler serves the embedded CSS and script with a day of caching.
// A directory is not listed: it gets the 404 page.
func (s *server) staticHandler(fsys fs.FS) http.Handler {
	fileServer := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(r.URL.Path, "/")
		if name == "" {
			name = "."
		}
		if fi, err := fs.Stat(fsys, name); err != nil || fi.IsDir() || strings.HasSuffix(r.URL.Path, "/") {
			s.handleNotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fileServer.ServeHTTP(w, r)
	})
}
