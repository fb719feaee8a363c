// Package web is Tayori's HTTP side: the public subscriber pages (subscribe
// with double opt-in, confirm, preference centre, RFC 8058 one-click
// unsubscribe), the archive of sent issues with its Atom feed, the editor
// console under /admin and the JSON API under /api/v1.
//
// [NewServer] builds the whole handler from a logger, a [Config] and the
// [Deps] it drives; every route is listed in one table in routes.go, and
// every error is mapped to an HTTP status in one table in errors.go. The
// package keeps its data (editors, sessions, API tokens, issues and their
// revisions) through [Store], which holds the rules (password hashing,
// secrets kept only as hashes, conflicts and the lock of a sent issue) over
// a [Storage] it defines: one implementation per database engine, in
// internal/store/sqlite and internal/store/postgres, picked by store.Web.
// The tables are in internal/store/schema (00002_web.sql), applied by
// store.Migrate.
//
// The composer (/admin/issues/new, /admin/issues/{slug}/edit) edits an
// issue as structured fields and keeps every save as a revision with its
// author and time (revisions_store.go holds its rules): a save
// based on an older revision is refused with a *ConflictError and the
// editor merges on the conflict page; a send locks the issue and later
// revisions are corrections the archive shows. The lint and the preview run
// on the server as the editor types: the lint is compose.Check on the
// Markdown the form becomes, the preview is queue's own copy of the issue
// for one reader (Sends.PreviewCopy). Work posted after a session expired
// is kept and saved once the editor signs in again. The console speaks
// Japanese, with English on ?lang=en.
//
// For operators (ops.go): /readyz checks Redis and the store within two
// seconds and names the one that failed; /metrics serves [Deps].MetricsHandler
// to requests bearing [Config].MetricsToken (and is absent without one);
// every request is counted by its route pattern through [Deps].Metrics.
// The console's operations page (/admin/ops) shows the Asynq queues, the
// workers alive and the failed tasks described for people, with retry,
// archive and delete actions ([Deps].Tasks); the audit log (/admin/audit,
// /admin/audit.csv) records who did what and when, through the Storage
// (audit_store.go).
//
// Public pages are Japanese first with an English fallback (chosen from
// Accept-Language). Links in mail carry signed tokens (package
// subscribers/token): a GET on any of them only shows a page with a button,
// because mail scanners follow links; only a POST changes state. The
// one-click endpoint answers RFC 8058 POSTs with 200 and never redirects.
//
// Console sessions are random 256-bit cookies (HttpOnly, SameSite=Strict,
// Secure when the base URL is https) of which only a hash is stored; every
// state-changing console request carries the session's CSRF token and
// passes net/http's CrossOriginProtection. API requests authenticate with
// bearer tokens minted by `tayori editors token`.
//
// Limits, all in [Config] and in Redis so that every server process
// shares them, are sized for an office behind one NAT: signups per client
// IP (then 429), confirmation mails per address (beyond them a signup is
// answered alike and mailed nothing, so a stranger cannot lock an address
// out), sign-in attempts per IP, and failed sign-ins per account from any
// IP (then the account waits before each further attempt, a wait that
// doubles with each failure up to a cap; signin.go). Failed sign-ins are
// listed on /admin/signins with the client's network only.
//
// With [Deps].Gate the console shows the send gate of package feedback
// (complaint rate and authentication refusals of the last 7 days) on
// /admin/feedback, next to the latest bounce and complaint events, and on
// the confirmation page of every send. A send the gate refuses is a 409
// with the reason (code gate_closed in the API); the editor may tick
// ignore_gate to send anyway, which is logged with their name.
//
//	st := web.NewStore(store.Web(db), nil) // db from store.Open, migrated
//	h, err := web.NewServer(logger, web.Config{BaseURL: "https://news.example.jp", ...}, web.Deps{Store: st, ...})
//	srv := &http.Server{Addr: ":8080", Handler: h}
package web
