package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// subscribeData is the data of the subscribe page.
type subscribeData struct {
	Form           signupForm
	Errors         []string
	Regions        []choice
	Topics         []choice
	ConsentText    string
	ConsentVersion string
}

func (s *server) subscribePage(w http.ResponseWriter, r *http.Request, status int, f signupForm, problems []string) {
	lang := pickLang(r)
	if r.Method == http.MethodPost {
		lang = f.Lang
	}
	prefs := f.Prefs
	if r.Method == http.MethodGet {
		prefs = audience.All()
	}
	s.render(w, r, status, "subscribe", &page{Lang: lang, Data: subscribeData{
		Form: f, Errors: problems, Regions: regionChoices(prefs), Topics: topicChoices(prefs),
		ConsentText: consentText(lang, s.cfg.SenderName), ConsentVersion: ConsentVersion,
	}})
}

// handleSubscribeForm shows the subscribe form (GET /subscribe).
func (s *server) handleSubscribeForm(w http.ResponseWriter, r *http.Request) {
	s.subscribePage(w, r, http.StatusOK, signupForm{}, nil)
}

// handleSubscribe takes a signup (POST /subscribe). Whatever the address's
// state (new, pending, active, unsubscribed or suppressed) the answer is
// the same page; only a new or not-yet-active address gets a confirmation
// mail, and at most ConfirmPerAddress of them per ConfirmWindow (beyond,
// the signup is recorded and the mail silently not sent, so that a
// stranger typing someone's address cannot lock its owner out). Past the
// per-IP limit the answer is 429.
func (s *server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	ok, err := s.rl.allow(ctx, "signup-ip", s.clientIP(r), s.cfg.SignupPerIP, s.cfg.SignupWindow)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if !ok {
		s.pageError(w, r, errRateLimited)
		return
	}
	f, problems := parseSignup(r.PostForm)
	if f.Honeypot {
		s.log.DebugContext(ctx, "signup honeypot filled", "ip", s.clientIP(r))
		s.signupDone(w, r, f.Lang)
		return
	}
	if len(problems) > 0 {
		s.subscribePage(w, r, http.StatusUnprocessableEntity, f, problems)
		return
	}
	if err := s.signup(ctx, f); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.signupDone(w, r, f.Lang)
}

func (s *server) signupDone(w http.ResponseWriter, r *http.Request, lang string) {
	s.render(w, r, http.StatusOK, "message", &page{Lang: lang, Data: messageData{
		Kind: "ok", Title: "subscribe.sent_title", Body: []string{"subscribe.sent"}}})
}

// signup records the pending subscriber and queues the confirmation mail
// unless the address already receives the list.
func (s *server) signup(ctx context.Context, f signupForm) error {
	sub, err := s.deps.Subscribers.Add(ctx, subscribers.NewSubscriber{
		Email: f.Norm, Name: f.Name, Prefs: &f.Prefs, Lists: []string{s.cfg.List},
		Method: subscribers.DoubleOptIn, Cause: "web signup",
	})
	if err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	if sub.Sendable(s.cfg.List) {
		s.log.InfoContext(ctx, "signup of an active subscriber: no mail", "subscriber_id", sub.ID)
		return nil
	}
	// The store kept the form's choice (applied now if pending, on
	// confirming otherwise). Mails to one address are capped.
	ok, err := s.rl.allow(ctx, "confirm-mail", strings.ToLower(f.Norm), s.cfg.ConfirmPerAddress, s.cfg.ConfirmWindow)
	if err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	if !ok {
		s.log.InfoContext(ctx, "signup: confirmation mail cap reached, none sent", "subscriber_id", sub.ID)
		return nil
	}
	tok, err := s.deps.Subscribers.ConfirmToken(ctx, sub.ID, s.cfg.List)
	if err != nil {
		return fmt.Errorf("signup: %w", err)
	}
	if err := s.sendConfirmation(ctx, sub, tok, f.Lang); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "signup: confirmation queued", "subscriber_id", sub.ID, "status", sub.Status)
	return nil
}

// confirmationMail returns the confirmation message: plain text only, no
// advertising, no list headers (so no List-Unsubscribe-Post), with "if you
// did not ask for this, ignore it" and the sender's details. The name on
// the form is left out of To: it was typed by whoever filled in the form,
// who need not be the address's owner.
func (s *server) confirmationMail(to, tok, lang string) queue.TransactionalMessage {
	link := s.cfg.BaseURL + "/confirm/" + tok
	if lang == langEN {
		link += "?lang=en"
	}
	vars := []string{"sender", s.cfg.SenderName, "address", s.cfg.PostalAddress, "contact", s.cfg.Contact, "url", link}
	return queue.TransactionalMessage{
		To:      to,
		Subject: translate(lang, "mail.confirm.subject", vars...),
		Text:    []byte(translate(lang, "mail.confirm.body", vars...)),
		Kind:    queue.KindConfirmation,
	}
}

func (s *server) sendConfirmation(ctx context.Context, sub subscribers.Subscriber, tok, lang string) error {
	if s.deps.Sends == nil {
		return wrapError(codeUnavailable, "mail is not configured", errors.New("web: no Sends dependency"))
	}
	m := s.confirmationMail(sub.Email, tok, lang)
	if _, err := s.deps.Sends.EnqueueMessage(ctx, m); err != nil {
		return fmt.Errorf("queue confirmation of subscriber %d: %w", sub.ID, err)
	}
	return nil
}

// confirmData is the data of the confirm page.
type confirmData struct {
	Action         string
	ConsentText    string
	ConsentVersion string
}

// handleConfirmPage shows the confirm button (GET /confirm/{token}). It
// checks the token without using it, so a mail scanner's GET changes
// nothing and an expired link gets the start-again page at once.
func (s *server) handleConfirmPage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	sub, claims, err := s.deps.Subscribers.VerifyToken(r.Context(), tok, token.Confirm)
	if err != nil {
		s.pageError(w, r, tokenErr(err))
		return
	}
	if s.alreadySubscribed(w, r, sub, claims, pickLang(r)) {
		return
	}
	lang := pickLang(r)
	s.render(w, r, http.StatusOK, "confirm", &page{Lang: lang, Data: confirmData{
		Action: "/confirm/" + tok, ConsentText: consentText(lang, s.cfg.SenderName), ConsentVersion: ConsentVersion,
	}})
}

// handleConfirm confirms a subscription (POST /confirm/{token}) and
// records the consent: the wording shown (version and SHA-256), the
// request's IP and user agent.
func (s *server) handleConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	lang := langJA
	if r.PostForm.Get("lang") == langEN {
		lang = langEN
	}
	text := consentText(lang, s.cfg.SenderName)
	sub, err := s.deps.Subscribers.Confirm(ctx, r.PathValue("token"), subscribers.Consent{
		Method:      subscribers.DoubleOptIn,
		FormVersion: ConsentVersion + "/" + lang,
		Text:        text,
		TextSHA256:  subscribers.HashText(text),
		IP:          s.clientIP(r),
		UserAgent:   truncate(r.UserAgent(), 512),
	})
	if errors.Is(err, token.ErrUsed) {
		// A link used already: a reader who is subscribed is told so,
		// not asked to start again.
		if sub, claims, verr := s.deps.Subscribers.VerifyToken(ctx, r.PathValue("token"), token.Confirm); verr == nil &&
			s.alreadySubscribed(w, r, sub, claims, lang) {
			return
		}
	}
	if err != nil {
		s.pageError(w, r, tokenErr(err))
		return
	}
	s.log.InfoContext(ctx, "subscription confirmed", "subscriber_id", sub.ID)
	prefsTok, err := s.deps.Subscribers.PreferencesToken(sub.PublicID, s.cfg.List)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "message", &page{Lang: lang, Data: messageData{
		Kind: "ok", Title: "confirm.done_title", Body: []string{"confirm.done"},
		Link: &linkData{Href: "/p/" + prefsTok, Label: "confirm.prefs_link"}}})
}

// alreadySubscribed answers a confirm link whose reader already receives
// its list with the "already subscribed" page (and their preferences
// link, as the page after confirming gives), and reports whether it did.
func (s *server) alreadySubscribed(w http.ResponseWriter, r *http.Request, sub subscribers.Subscriber, claims token.Claims, lang string) bool {
	list := claims.List
	if list == "" {
		list = s.cfg.List
	}
	if !sub.ErasedAt.IsZero() || !sub.Sendable(list) {
		return false
	}
	d := messageData{Kind: "ok", Title: "confirm.already_title", Body: []string{"confirm.already"}}
	if prefsTok, err := s.deps.Subscribers.PreferencesToken(sub.PublicID, list); err == nil {
		d.Link = &linkData{Href: "/p/" + prefsTok, Label: "confirm.prefs_link"}
	}
	s.render(w, r, http.StatusOK, "message", &page{Lang: lang, Data: d})
	return true
}

// tokenErr makes an unknown or erased subscriber behind a validly signed
// confirm or preferences token look like an invalid link.
func tokenErr(err error) error {
	if errors.Is(err, subscribers.ErrNotFound) {
		return fmt.Errorf("%w: %w", token.ErrInvalid, err)
	}
	return err
}

// prefsData is the data of the preference centre.
type prefsData struct {
	Action string
	// Address is the address the page manages, partly masked
	// (maskAddress): its owner recognises it, a forwarded link does not
	// give it away whole.
	Address      string
	Regions      []choice
	Topics       []choice
	Saved        bool
	Unsubscribed bool
	Errors       []string
}

func (s *server) prefsPage(w http.ResponseWriter, r *http.Request, status int, tok string, sub subscribers.Subscriber, list string, d prefsData) {
	d.Action = "/p/" + tok
	d.Regions, d.Topics = regionChoices(sub.Prefs), topicChoices(sub.Prefs)
	d.Unsubscribed = !sub.Sendable(list)
	d.Address = maskAddress(sub.Email)
	s.render(w, r, status, "prefs", &page{Data: d})
}

func (s *server) prefsSubject(ctx context.Context, tok string) (subscribers.Subscriber, string, error) {
	sub, claims, err := s.deps.Subscribers.VerifyToken(ctx, tok, token.Preferences)
	if err != nil {
		return sub, "", tokenErr(err)
	}
	if !sub.ErasedAt.IsZero() {
		return sub, "", fmt.Errorf("%w: subscriber erased", token.ErrInvalid)
	}
	list := claims.List
	if list == "" {
		list = s.cfg.List
	}
	return sub, list, nil
}

// handlePrefsPage shows the preference centre (GET /p/{token}); no login,
// the signed link is the key.
func (s *server) handlePrefsPage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	sub, list, err := s.prefsSubject(r.Context(), tok)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.prefsPage(w, r, http.StatusOK, tok, sub, list, prefsData{Saved: r.URL.Query().Get("saved") == "1"})
}

// handlePrefs saves preferences or unsubscribes from everything (POST
// /p/{token}, field action=save|unsubscribe). The delivery worker re-reads
// the subscriber before every copy, so a change applies to every send not
// yet delivered to them.
func (s *server) handlePrefs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok := r.PathValue("token")
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, wrapError(codeInvalid, "unreadable form", err))
		return
	}
	sub, list, err := s.prefsSubject(ctx, tok)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	switch r.PostForm.Get("action") {
	case "unsubscribe":
		if err := s.deps.Subscribers.Unsubscribe(ctx, sub.ID, "", "preference centre: unsubscribe from everything"); err != nil {
			s.pageError(w, r, err)
			return
		}
		s.log.InfoContext(ctx, "unsubscribed from everything", "subscriber_id", sub.ID, "via", "preferences")
		s.message(w, r, http.StatusOK, messageData{Kind: "ok", Title: "unsub.done_title", Body: []string{"unsub.done"},
			Link: &linkData{Href: "/subscribe", Label: "unsub.resubscribe"}})
	case "save":
		p, problems := parsePrefs(r.PostForm)
		if len(problems) > 0 {
			sub.Prefs = p
			s.prefsPage(w, r, http.StatusUnprocessableEntity, tok, sub, list, prefsData{Errors: problems})
			return
		}
		// Keep the editor's custom tags: the public form shows only the
		// standard topics.
		for _, t := range sub.Prefs.Topics {
			if !t.IsStandard() && !slices.Contains(p.Topics, t) {
				p.Topics = append(p.Topics, t)
			}
		}
		if _, err := s.deps.Subscribers.Update(ctx, sub.ID, subscribers.Update{Prefs: &p}); err != nil {
			s.pageError(w, r, err)
			return
		}
		s.log.InfoContext(ctx, "preferences changed", "subscriber_id", sub.ID, "prefs", p.Key())
		// Post/redirect/get, so that reloading does not resubmit.
		http.Redirect(w, r, "/p/"+tok+"?saved=1", http.StatusSeeOther)
	default:
		s.pageError(w, r, newError(codeInvalid, "unknown action"))
	}
}

// handleUnsubscribePage shows the unsubscribe button (GET /u/{token}): a
// GET never unsubscribes, because link scanners follow links.
func (s *server) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	if _, _, err := s.deps.Subscribers.VerifyToken(r.Context(), tok, token.Unsubscribe); err != nil &&
		!errors.Is(err, subscribers.ErrNotFound) {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "unsubscribe", &page{Data: map[string]string{"Action": "/u/" + tok}})
}

// handleUnsubscribe is the RFC 8058 one-click endpoint (POST /u/{token}).
// It needs no cookie or session, answers 200 without a redirect, is
// idempotent, and answers 200 too for an erased or unknown subscriber
// behind a validly signed token. A tampered or wrong-purpose token is 400
// and changes nothing.
func (s *server) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		body = nil // the token authorises; an oversized body is no reason to refuse
	}
	cause := "unsubscribe page"
	if oneClick(r.Header.Get("Content-Type"), body) {
		cause = "one-click unsubscribe"
	}
	sub, err := s.deps.Subscribers.UnsubscribeByToken(ctx, r.PathValue("token"), cause)
	switch {
	case errors.Is(err, subscribers.ErrNotFound):
		s.log.InfoContext(ctx, "unsubscribe of an unknown subscriber", "cause", cause)
	case err != nil:
		s.pageError(w, r, err)
		return
	default:
		s.log.InfoContext(ctx, "unsubscribed", "subscriber_id", sub.ID, "cause", cause)
	}
	s.message(w, r, http.StatusOK, messageData{Kind: "ok", Title: "unsub.done_title", Body: []string{"unsub.done"},
		Link: &linkData{Href: "/subscribe", Label: "unsub.resubscribe"}})
}

// handleUnsubscribeHelp explains how to unsubscribe (GET /unsubscribe):
// the web copies of issues link here, since they carry no reader's token.
func (s *server) handleUnsubscribeHelp(w http.ResponseWriter, r *http.Request) {
	s.message(w, r, http.StatusOK, messageData{Title: "unsubhelp.title", Body: []string{"unsubhelp.body", "footer.contact"}})
}

// handleHealth answers 200 "ok" when the backing services answer.
func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ping := s.deps.Ping
	if ping == nil {
		ping = func(ctx context.Context) error { return s.deps.Redis.Ping(ctx).Err() }
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := ping(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unavailable\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// maskAddress keeps the first two characters of an address's local part
// (one when it is short), its last character and the whole domain:
// "hanako@example.jp" → "ha***o@example.jp".
func maskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return ""
	}
	rs := []rune(local)
	switch {
	case len(rs) <= 2:
		return string(rs[:1]) + "***@" + domain
	case len(rs) <= 4:
		return string(rs[:1]) + "***" + string(rs[len(rs)-1:]) + "@" + domain
	}
	return string(rs[:2]) + "***" + string(rs[len(rs)-1:]) + "@" + domain
}

// handleNotFound answers every path no route knows with the public pages'
// 404 page.
func (s *server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.pageError(w, r, newError(codeNotFound, "no such page"))
}
