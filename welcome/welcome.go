package welcome

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// Template is a list's welcome mail as the editor wrote it.
type Template struct {
	List      string    `json:"list"`
	Enabled   bool      `json:"enabled"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"` // text/template over Vars
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// Vars are what a template may use: {{.Name}}, {{.IssueURL}}, ….
type Vars struct {
	Name           string // the reader's name, possibly empty
	SenderName     string
	PostalAddress  string
	Contact        string
	IssueTitle     string // the latest issue sent to the list; empty if none yet
	IssueURL       string
	ArchiveURL     string
	PreferencesURL string
	UnsubscribeURL string
}

// DefaultSubject and DefaultBody are the template of a list the editor has
// not edited.
const (
	DefaultSubject = "{{.SenderName}} ニュースレターへようこそ"
	DefaultBody    = `{{if .Name}}{{.Name}} 様

{{end}}{{.SenderName}} ニュースレターにご登録いただき、ありがとうございます。
毎月1回程度、お選びいただいた地域と分野のAI政策の動向をお届けします。

{{if .IssueURL}}最新号「{{.IssueTitle}}」は、こちらからお読みいただけます。
{{.IssueURL}}
{{else}}最初の号は、発行しだいお届けします。
{{end}}
バックナンバー: {{.ArchiveURL}}
配信設定の変更: {{.PreferencesURL}}
配信停止: {{.UnsubscribeURL}}

--
発行者: {{.SenderName}}{{with .PostalAddress}}
所在地: {{.}}{{end}}{{with .Contact}}
お問い合わせ: {{.}}{{end}}
`
)

// Default returns the default template of list, enabled.
func Default(list string) Template {
	return Template{List: list, Enabled: true, Subject: DefaultSubject, Body: DefaultBody}
}

// Errors, checked with errors.Is.
var (
	// ErrInvalid: a template that does not parse, does not run, or lacks
	// the unsubscribe or preference link (see *TemplateError).
	ErrInvalid = errors.New("invalid welcome template")
)

// TemplateError lists what is wrong with a template, by field.
type TemplateError struct {
	Problems map[string]string // "subject" or "body": the problem
}

func (e *TemplateError) Error() string {
	var parts []string
	for _, f := range []string{"subject", "body"} {
		if p, ok := e.Problems[f]; ok {
			parts = append(parts, f+": "+p)
		}
	}
	return "welcome template: " + strings.Join(parts, "; ")
}

// Is makes a *TemplateError match ErrInvalid.
func (e *TemplateError) Is(target error) bool { return target == ErrInvalid }

// Mail is a rendered welcome mail.
type Mail struct {
	Subject string
	Text    string
	HTML    string
}

// Render renders t for v. The body must show the unsubscribe and the
// preference links.
func Render(t Template, v Vars) (Mail, error) {
	problems := map[string]string{}
	run := func(field, src string) string {
		tp, err := template.New(field).Option("missingkey=error").Parse(src)
		if err != nil {
			problems[field] = err.Error()
			return ""
		}
		var b bytes.Buffer
		if err := tp.Execute(&b, v); err != nil {
			problems[field] = err.Error()
		}
		return b.String()
	}
	subject := strings.TrimSpace(run("subject", t.Subject))
	body := run("body", t.Body)
	if _, bad := problems["subject"]; !bad && (subject == "" || strings.ContainsAny(subject, "\r\n")) {
		problems["subject"] = "the subject must be one line, not empty"
	}
	if _, bad := problems["body"]; !bad {
		if v.UnsubscribeURL != "" && !strings.Contains(body, v.UnsubscribeURL) {
			problems["body"] = "the body must show the unsubscribe link {{.UnsubscribeURL}}"
		} else if v.PreferencesURL != "" && !strings.Contains(body, v.PreferencesURL) {
			problems["body"] = "the body must show the preference link {{.PreferencesURL}}"
		} else if !utf8.ValidString(body) {
			problems["body"] = "the body is not valid UTF-8"
		}
	}
	if len(problems) > 0 {
		return Mail{}, &TemplateError{Problems: problems}
	}
	body = strings.ReplaceAll(body, "\r\n", "\n")
	return Mail{Subject: subject, Text: body, HTML: htmlOf(body)}, nil
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// htmlOf is the HTML part of a plain-text body: the same lines, escaped,
// with their URLs as links.
func htmlOf(text string) string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="ja"><head><meta charset="utf-8"></head><body><div style="white-space:pre-wrap;font-family:sans-serif;line-height:1.7">`)
	last := 0
	for _, m := range linkRE.FindAllStringIndex(text, -1) {
		b.WriteString(html.EscapeString(text[last:m[0]]))
		u := html.EscapeString(text[m[0]:m[1]])
		b.WriteString(`<a href="` + u + `">` + u + `</a>`)
		last = m[1]
	}
	b.WriteString(html.EscapeString(text[last:]))
	b.WriteString("</div></body></html>\n")
	return b.String()
}

// Store keeps the templates (store.Welcome in internal/store picks the engine's).
type Store interface {
	Template(ctx context.Context, list string) (Template, bool, error)
	SaveTemplate(ctx context.Context, t Template) error
}

// Queue queues the mail (implemented by *queue.Service).
type Queue interface {
	EnqueueListMessage(ctx context.Context, m queue.ListMessage) (string, error)
}

// Tokens mints the reader's links (implemented by *subscribers.Store).
type Tokens interface {
	UnsubscribeToken(publicID, list string) (string, error)
	PreferencesToken(publicID, list string) (string, error)
}

// Issues names the latest issue sent to a list.
type Issues interface {
	LatestIssue(ctx context.Context, list string) (slug, title string, ok bool, err error)
}

// Config configures the Service.
type Config struct {
	// BaseURL is the public URL of the web server. Required.
	BaseURL string
	// SenderName, PostalAddress and Contact fill the template's footer.
	SenderName, PostalAddress, Contact string
	// Timeout bounds the queueing of one mail (the reader's confirmation
	// waits for it). Default 3 s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Service sends the welcome mail when a reader confirms: it implements
// subscribers.Events.
type Service struct {
	store  Store
	queue  Queue
	tokens Tokens
	issues Issues
	cfg    Config
	log    *slog.Logger
}

// New returns a Service.
func New(store Store, q Queue, tokens Tokens, issues Issues, cfg Config, logger *slog.Logger) (*Service, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("welcome: Config.BaseURL is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, queue: q, tokens: tokens, issues: issues, cfg: cfg, log: logger}, nil
}

// Template returns list's template: the stored one, or the default.
func (s *Service) Template(ctx context.Context, list string) (Template, error) {
	t, ok, err := s.store.Template(ctx, list)
	if err != nil || !ok {
		return Default(list), err
	}
	return t, nil
}

// SaveTemplate checks t against a sample reader and stores it.
func (s *Service) SaveTemplate(ctx context.Context, t Template) error {
	if _, err := s.Preview(ctx, t); err != nil {
		return err
	}
	t.UpdatedAt = s.cfg.Now()
	return s.store.SaveTemplate(ctx, t)
}

// SampleName is the reader's name in a preview.
const SampleName = "山田 花子"

// Preview renders t as a sample reader of its list would get it, with the
// list's latest issue and links of the right shape that unsubscribe no one.
func (s *Service) Preview(ctx context.Context, t Template) (Mail, error) {
	v, err := s.vars(ctx, t.List, SampleName, "", "")
	if err != nil {
		return Mail{}, err
	}
	v.PreferencesURL, v.UnsubscribeURL = s.cfg.BaseURL+"/p/preview", s.cfg.BaseURL+"/u/preview"
	return Render(t, v)
}

func (s *Service) vars(ctx context.Context, list, name, publicID, _ string) (Vars, error) {
	v := Vars{Name: name, SenderName: s.cfg.SenderName, PostalAddress: s.cfg.PostalAddress, Contact: s.cfg.Contact,
		ArchiveURL: s.cfg.BaseURL + "/archive"}
	if s.issues != nil {
		slug, title, ok, err := s.issues.LatestIssue(ctx, list)
		if err != nil {
			return Vars{}, err
		}
		if ok {
			v.IssueTitle, v.IssueURL = title, s.cfg.BaseURL+"/issues/"+slug
		}
	}
	if publicID != "" {
		u, err := s.tokens.UnsubscribeToken(publicID, list)
		if err != nil {
			return Vars{}, err
		}
		p, err := s.tokens.PreferencesToken(publicID, list)
		if err != nil {
			return Vars{}, err
		}
		v.UnsubscribeURL, v.PreferencesURL = s.cfg.BaseURL+"/u/"+u, s.cfg.BaseURL+"/p/"+p
	}
	return v, nil
}

// Emit sends the welcome mail of a subscriber.confirmed event: for the
// list the reader confirmed (the event's List; without one, the first of
// the reader's lists whose welcome is on), if its welcome is on, queued
// with the key welcome:<public id>:<list> so that a reader is welcomed to
// a list once. The queue keeps the mail in its outbox until the relay
// accepts it (queue.ListMessage), so a task Redis loses is queued again
// and still sent once. Failures are logged: the confirmation stands
// whatever happens here.
func (s *Service) Emit(ctx context.Context, typ string, data any) {
	if typ != subscribers.EventConfirmed {
		return
	}
	d, ok := data.(subscribers.EventData)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	if err := s.welcome(ctx, d.Subscriber, d.List); err != nil {
		s.log.WarnContext(ctx, "welcome mail not queued", "subscriber_id", d.Subscriber.ID, "err", err)
	}
}

func (s *Service) welcome(ctx context.Context, sub subscribers.EventSubscriber, confirmed string) error {
	lists := sub.Lists
	if confirmed != "" {
		lists = []string{confirmed}
	}
	for _, list := range lists {
		t, err := s.Template(ctx, list)
		if err != nil {
			return err
		}
		if !t.Enabled {
			continue
		}
		v, err := s.vars(ctx, list, sub.Name, sub.PublicID, sub.Email)
		if err != nil {
			return err
		}
		m, err := Render(t, v)
		if err != nil {
			return fmt.Errorf("list %s: %w", list, err)
		}
		_, err = s.queue.EnqueueListMessage(ctx, queue.ListMessage{
			List: list, Kind: "welcome", SubscriberID: sub.ID, To: sub.Email, Subject: m.Subject,
			Text: []byte(m.Text), HTML: []byte(m.HTML), UnsubscribeURL: v.UnsubscribeURL,
			Key: fmt.Sprintf("welcome:%s:%s", sub.PublicID, list),
		})
		if errors.Is(err, queue.ErrDuplicate) {
			return nil
		}
		if err == nil {
			s.log.InfoContext(ctx, "welcome mail queued", "subscriber_id", sub.ID, "list", list)
		}
		return err
	}
	return nil
}

// SendsLike is the queue's list of sends (implemented by *queue.Service).
type SendsLike interface {
	List(ctx context.Context, limit int) ([]*queue.Send, error)
	Get(ctx context.Context, id int64) (*queue.Send, error)
}

// LatestFromSends names a list's latest issue from the queue's sends: the
// newest send to the list that went out.
type LatestFromSends struct{ Sends SendsLike }

// LatestIssue implements Issues.
func (l LatestFromSends) LatestIssue(ctx context.Context, list string) (string, string, bool, error) {
	sends, err := l.Sends.List(ctx, 50)
	if err != nil {
		return "", "", false, err
	}
	for _, snd := range sends {
		if snd.List != list || snd.Issue == nil {
			continue
		}
		if snd.State == queue.Done || (snd.State != queue.Scheduled && snd.Counts.Sent > 0) {
			full, err := l.Sends.Get(ctx, snd.ID) // List carries only the slug
			if err != nil {
				return "", "", false, err
			}
			return full.Issue.Slug, full.Issue.Title, true, nil
		}
	}
	return "", "", false, nil
}
