package web

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// This file is the operator's side of the server: /readyz, /metrics, the
// console's operations page (/admin/ops) and the audit log (/admin/audit).

// ---- readiness ----

// readyTimeout bounds each check of /readyz.
const readyTimeout = 2 * time.Second

// readyJSON is the body of /readyz: "ok" or "unavailable" for each
// service, and the names of those that failed. Never an error's text.
type readyJSON struct {
	Status string   `json:"status"`
	Redis  string   `json:"redis"`
	Store  string   `json:"store"`
	Failed []string `json:"failed,omitempty"`
}

// handleReady answers 200 when Redis and the store both answer within
// readyTimeout, else 503 naming the ones that did not. /healthz says the
// process is alive; /readyz says it can serve.
func (s *server) handleReady(w http.ResponseWriter, r *http.Request) {
	out := readyJSON{Status: "ready", Redis: "ok", Store: "ok"}
	check := func(name string, field *string, fn func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		// Not every client gives up when ctx ends (go-redis reads with its
		// own timeouts): the check answers at the deadline regardless.
		done := make(chan error, 1)
		go func() { done <- fn(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", "service", name, "err", err)
			*field = "unavailable"
			out.Failed = append(out.Failed, name)
		}
	}
	check("redis", &out.Redis, func(ctx context.Context) error { return s.deps.Redis.Ping(ctx).Err() })
	check("store", &out.Store, s.deps.Store.Ping)
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusOK
	if len(out.Failed) > 0 {
		out.Status, status = "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, status, out)
}

// ---- metrics ----

// metricsAuth serves next only to requests bearing Config.MetricsToken.
func (s *server) metricsAuth(next http.Handler) http.Handler {
	want := []byte(s.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tayori-metrics"`)
			http.Error(w, "the metrics need the bearer token of TAYORI_METRICS_TOKEN", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ---- the operations page ----

// Tasks reads and acts on the Asynq queues (implemented by
// *asynq.Inspector).
type Tasks interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
	Servers() ([]*asynq.ServerInfo, error)
	ListRetryTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	ListArchivedTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	RunTask(queue, id string) error
	ArchiveTask(queue, id string) error
	DeleteTask(queue, id string) error
}

// opsTaskLimit is how many retrying and how many dead tasks of each queue
// the operations page lists.
const opsTaskLimit = 50

// queueRow is one Asynq queue on the operations page.
type queueRow struct {
	Name, Label                                 string
	Pending, Active, Scheduled, Retry, Archived int
	Paused                                      bool
}

// workerRow is one worker process alive (its heartbeat is fresh).
type workerRow struct {
	Host        string
	PID         int
	Started     time.Time
	Active      int
	Concurrency int
	Status      string
}

// taskRow is a failed task as an operator reads it.
type taskRow struct {
	Queue, ID  string // for the forms only, never shown
	What       string // "配信「11月号」(#3) のバッチ 2"
	Dead       bool   // archived: retries exhausted or not retryable
	Summary    string // what the last error means
	LastErr    string // the error's own text, behind "details"
	FailedAt   time.Time
	Retried    int
	MaxRetry   int
	NextTry    time.Time
	Actionable bool
}

func (s *server) queueLabel(lang, q string) string {
	switch q {
	case queue.QueueNewsletter, queue.QueueTransactional:
		return translate(lang, "ops.queue."+q)
	}
	return q
}

func (s *server) handleOps(w http.ResponseWriter, r *http.Request) {
	if s.deps.Tasks == nil {
		s.adminError(w, r, newError(codeUnavailable, "the queue is not configured"))
		return
	}
	lang := s.adminLang(r)
	names, err := s.deps.Tasks.Queues()
	if err != nil {
		s.adminError(w, r, wrapError(codeUnavailable, "the queue is not configured", err))
		return
	}
	for _, q := range []string{queue.QueueNewsletter, queue.QueueTransactional} {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.Sort(names)
	var queues []queueRow
	var tasks []taskRow
	for _, q := range names {
		info, err := s.deps.Tasks.GetQueueInfo(q)
		if err != nil {
			info = &asynq.QueueInfo{Queue: q} // no task ever: the queue does not exist yet
		}
		queues = append(queues, queueRow{Name: q, Label: s.queueLabel(lang, q), Pending: info.Pending, Active: info.Active,
			Scheduled: info.Scheduled, Retry: info.Retry, Archived: info.Archived, Paused: info.Paused})
		for _, dead := range []bool{true, false} {
			list := s.deps.Tasks.ListRetryTasks
			if dead {
				list = s.deps.Tasks.ListArchivedTasks
			}
			ts, err := list(q, asynq.PageSize(opsTaskLimit))
			if err != nil {
				continue // none of that kind
			}
			for _, t := range ts {
				tasks = append(tasks, s.taskRow(r.Context(), lang, t, dead))
			}
		}
	}
	slices.SortFunc(tasks, func(a, b taskRow) int { return b.FailedAt.Compare(a.FailedAt) })
	servers, err := s.deps.Tasks.Servers()
	if err != nil {
		s.adminError(w, r, wrapError(codeUnavailable, "the queue is not configured", err))
		return
	}
	var workers []workerRow
	for _, sv := range servers {
		workers = append(workers, workerRow{Host: sv.Host, PID: sv.PID, Started: sv.Started, Active: len(sv.ActiveWorkers),
			Concurrency: sv.Concurrency, Status: translate(lang, "ops.status."+sv.Status)})
	}
	slices.SortFunc(workers, func(a, b workerRow) int { return a.Started.Compare(b.Started) })
	s.adminPage(w, r, http.StatusOK, "admin_ops", map[string]any{
		"Queues": queues, "Workers": workers, "Tasks": tasks, "Done": r.URL.Query().Get("done"),
	})
}

// taskRow describes t for people: what the task was doing (the send and
// its issue's title, not ids), and what its last error means.
func (s *server) taskRow(ctx context.Context, lang string, t *asynq.TaskInfo, dead bool) taskRow {
	row := taskRow{Queue: t.Queue, ID: t.ID, Dead: dead, LastErr: t.LastErr, FailedAt: t.LastFailedAt,
		Retried: t.Retried, MaxRetry: t.MaxRetry, NextTry: t.NextProcessAt, Actionable: true}
	row.Summary = errorWords(lang, t.LastErr)
	sendName := func(id int64) string {
		if s.deps.Sends != nil {
			if snd, err := s.deps.Sends.Get(ctx, id); err == nil && snd.Issue != nil {
				return translate(lang, "ops.send_named", "title", snd.Issue.Title, "list", snd.List, "id", strconv.FormatInt(id, 10))
			}
		}
		return translate(lang, "a.send_title", "id", strconv.FormatInt(id, 10))
	}
	switch t.Type {
	case queue.TypeSendBatch:
		var p queue.BatchPayload
		if err := p.UnmarshalBinary(t.Payload); err == nil {
			row.What = translate(lang, "ops.what.batch", "send", sendName(p.SendID), "batch", strconv.FormatInt(p.Batch, 10),
				"n", strconv.Itoa(len(p.IDs)))
			return row
		}
	case queue.TypeSendPlan:
		var p queue.PlanPayload
		if err := json.Unmarshal(t.Payload, &p); err == nil {
			row.What = translate(lang, "ops.what.plan", "send", sendName(p.SendID))
			return row
		}
	case queue.TypeMessageSend:
		var m queue.TransactionalMessage
		if err := json.Unmarshal(t.Payload, &m); err == nil {
			row.What = translate(lang, "ops.what.message", "subject", m.Subject)
			return row
		}
	case queue.TypeSendMonthly:
		row.What = translate(lang, "ops.what.monthly")
		return row
	}
	row.What = translate(lang, "ops.what.unknown")
	return row
}

var smtpCode = regexp.MustCompile(`\b([45])\d\d[ -]`)

// errorWords says in the console's words what a task's last error means.
func errorWords(lang, msg string) string {
	low := strings.ToLower(msg)
	key := "ops.err.other"
	switch {
	case msg == "":
		key = "ops.err.none"
	case strings.Contains(low, "malformed payload"):
		key = "ops.err.payload"
	case strings.Contains(low, "temporary failures, will retry"):
		key = "ops.err.temporary"
	case strings.Contains(low, "relay") && (strings.Contains(low, "unreachable") || strings.Contains(low, "down")),
		strings.Contains(low, "connection refused"), strings.Contains(low, "no such host"):
		key = "ops.err.relay"
	case strings.Contains(low, "deadline exceeded"), strings.Contains(low, "timeout"), strings.Contains(low, "timed out"):
		key = "ops.err.timeout"
	case strings.Contains(low, "refused"):
		if m := smtpCode.FindStringSubmatch(msg); m != nil && m[1] == "5" {
			key = "ops.err.permanent"
		} else {
			key = "ops.err.temporary"
		}
	case strings.Contains(low, "redis"):
		key = "ops.err.redis"
	case strings.Contains(low, "database"), strings.Contains(low, "sqlite"), strings.Contains(low, "disk"):
		key = "ops.err.store"
	default:
		if m := smtpCode.FindStringSubmatch(msg); m != nil {
			if m[1] == "5" {
				key = "ops.err.permanent"
			} else {
				key = "ops.err.temporary"
			}
		}
	}
	return translate(lang, key)
}

// handleOpsTask runs a failed task again now (retry), stops retrying it
// (archive) or deletes a dead one (delete).
func (s *server) handleOpsTask(w http.ResponseWriter, r *http.Request) {
	if s.deps.Tasks == nil {
		s.adminError(w, r, newError(codeUnavailable, "the queue is not configured"))
		return
	}
	q, id := r.PostForm.Get("queue"), r.PostForm.Get("task")
	if q == "" || id == "" {
		s.adminError(w, r, newError(codeInvalid, "unreadable form"))
		return
	}
	// The task's description, for the audit log, before it changes.
	what := ""
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){s.deps.Tasks.ListArchivedTasks, s.deps.Tasks.ListRetryTasks} {
		ts, _ := list(q, asynq.PageSize(opsTaskLimit))
		for _, t := range ts {
			if t.ID == id {
				what = s.taskRow(r.Context(), langJA, t, false).What
			}
		}
	}
	action := r.PathValue("action")
	var err error
	switch action {
	case "retry":
		err = s.deps.Tasks.RunTask(q, id)
	case "archive":
		err = s.deps.Tasks.ArchiveTask(q, id)
	case "delete":
		err = s.deps.Tasks.DeleteTask(q, id)
	default:
		err = newError(codeNotFound, "unknown action")
	}
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		err = wrapError(codeNotFound, "cerr.ops_gone", err)
	case err != nil && !isHTTPError(err):
		err = wrapError(codeConflict, "cerr.ops_cannot", err)
	}
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.audit(r, "task_"+action, what, s.queueLabel(langJA, q))
	s.log.InfoContext(r.Context(), "task "+action, "queue", q, "task_id", id, "editor", editorFrom(r.Context()).Name)
	http.Redirect(w, r, "/admin/ops?done="+url.QueryEscape(action), http.StatusSeeOther)
}

func isHTTPError(err error) bool {
	var he *httpError
	return errors.As(err, &he)
}

// ---- the audit log ----

// audit records an editor's action; a failure to record it is logged,
// and the action stands.
func (s *server) audit(r *http.Request, action, subject, detail string) {
	s.auditAs(r, editorFrom(r.Context()).Name, action, subject, detail)
}

func (s *server) auditAs(r *http.Request, editor, action, subject, detail string) {
	e := AuditEntry{At: s.now(), Editor: editor, Action: action, Subject: subject, Detail: detail}
	if err := s.deps.Store.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.ErrorContext(r.Context(), "audit log", "action", action, "err", err)
	}
}

// auditLimit is the entries a page of /admin/audit lists.
const auditLimit = 100

func (s *server) handleAudit(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := s.deps.Store.AuditLog(r.Context(), before, auditLimit)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	lang := s.adminLang(r)
	type row struct {
		AuditEntry
		ActionLabel string
	}
	rows := make([]row, len(entries))
	for i, e := range entries {
		if e.Editor == "" && e.Action == "signin_failed" {
			e.Editor = translate(lang, "a.signin_unknown")
		}
		rows[i] = row{e, translate(lang, "audit.action."+e.Action)}
	}
	data := map[string]any{"Entries": rows, "Paged": before != 0}
	if len(entries) == auditLimit {
		data["Next"] = "/admin/audit?before=" + strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	s.adminPage(w, r, http.StatusOK, "admin_audit", data)
}

// handleAuditCSV exports the whole audit log, newest first, as UTF-8 CSV
// with a header row; times in Config.Location; cells that a spreadsheet
// would take for a formula are made inert (csvSafe).
func (s *server) handleAuditCSV(w http.ResponseWriter, r *http.Request) {
	lang := s.adminLang(r)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+s.now().In(s.cfg.Location).Format("20060102")+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "editor", "action", "action_label", "subject", "detail"})
	n := 0
	for e, err := range s.deps.Store.AllAudit(r.Context()) {
		if err != nil {
			s.log.ErrorContext(r.Context(), "export the audit log", "err", err)
			break
		}
		_ = cw.Write([]string{e.At.In(s.cfg.Location).Format("2006-01-02 15:04:05 MST"), csvSafe(e.Editor), e.Action,
			translate(lang, "audit.action."+e.Action), csvSafe(e.Subject), csvSafe(e.Detail)})
		n++
	}
	cw.Flush()
	s.audit(r, "audit_export", "", strconv.Itoa(n))
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet:
// a cell starting with = + - @ (or a tab or carriage return) gets a
// leading apostrophe (OWASP, CSV injection).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// auditSend records a pause, resume or cancel of a send, naming its issue.
func (s *server) auditSend(r *http.Request, action string, id int64) {
	subject, detail := "", "配信 "+strconv.FormatInt(id, 10)
	if snd, err := s.deps.Sends.Get(r.Context(), id); err == nil {
		if snd.Issue != nil {
			subject = snd.Issue.Title
		}
		detail = "リスト " + snd.List
	}
	s.audit(r, action, subject, detail)
}

// imported counts an import's rows and records it in the audit log.
func (s *server) imported(r *http.Request, file string, rep subscribers.ImportResult) {
	if s.deps.Metrics != nil {
		s.deps.Metrics.Imported(rep.Added, rep.Updated, rep.Unchanged, rep.Skipped, rep.ErrorRows)
	}
	s.audit(r, "import", file, fmt.Sprintf("%d 行: 追加 %d・更新 %d・変更なし %d・対象外 %d・不正 %d",
		rep.Rows, rep.Added, rep.Updated, rep.Unchanged, rep.Skipped, rep.ErrorRows))
}

// maskEmail keeps an address recognisable to its owner's editors without
// keeping it whole: "t***@example.jp".
func maskEmail(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}
