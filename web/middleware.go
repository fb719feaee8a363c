package web

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// cspDefault allows no inline script or style and no framing.
const cspDefault = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// cspMail is for rendered issues (archive, console preview): mail HTML
// needs inline styles and remote images, and never runs script.
const cspMail = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"

// securityHeaders sets the headers every response carries. Handlers that
// serve mail HTML replace the CSP with cspMail.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", cspDefault)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		if s.cfg.secure() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs every request once at info level: method, path (with
// the token of signed links cut short), status and duration; never a
// query string, body or address.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if s.deps.Metrics != nil {
			// r.Pattern is the route the mux chose ("GET /archive/{slug}").
			s.deps.Metrics.Request(r.Pattern, r.Method, rec.status, time.Since(start))
		}
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" || strings.HasPrefix(r.URL.Path, "/static/") {
			return
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", slog.String("method", r.Method),
			slog.String("path", redactPath(r.URL.Path)), slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)))
	})
}

// mailFrame relaxes the headers for a rendered issue shown in the
// console's same-origin preview frame or as an archive page.
func mailFrame(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", cspMail)
	w.Header().Set("X-Frame-Options", "SAMEORIGIN")
}

// recoverer turns a panic into a logged 500.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "method", r.Method, "path", redactPath(r.URL.Path), "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// clientIP is the connection's address, or the last X-Forwarded-For entry
// when the configuration trusts a proxy.
func (s *server) clientIP(r *http.Request) string {
	if s.cfg.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if ip := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(ip) != nil {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newCrossOrigin refuses cross-site state-changing browser requests (by
// Sec-Fetch-Site and Origin). The base URL's origin is trusted as well, for
// a reverse proxy that changes the Host header. Requests from non-browsers
// carry neither header and pass, which is why the console also checks a
// CSRF token.
func newCrossOrigin(baseURL string) (*http.CrossOriginProtection, error) {
	cop := http.NewCrossOriginProtection()
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if err := cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		return nil, fmt.Errorf("web: BaseURL as a trusted origin: %w", err)
	}
	return cop, nil
}

func (s *server) sameOrigin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			s.pageErrorStatus(w, r, http.StatusForbidden, err)
			return
		}
		next(w, r)
	}
}

func (s *server) pageErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.logError(r, err, status)
	s.message(w, r, status, messageData{Kind: "error", Title: "error.title", Body: []string{"error.body"}})
}

// ---- console sessions ----

type ctxKey int

const (
	ctxSession ctxKey = iota
	ctxEditor
)

func (s *server) cookieName() string {
	if s.cfg.secure() {
		return "__Host-tayori_session" // needs Secure and Path=/, binds to this host
	}
	return "tayori_session"
}

func (s *server) setSessionCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.secure(), SameSite: http.SameSiteStrictMode,
	})
}

// A flash is a one-time notice for the next console page, carried by a
// short-lived cookie: set before a redirect, read and cleared by the page
// it is keyed to (the send gate's warning, shown on the new send's page).
func (s *server) flashName() string {
	if s.cfg.secure() {
		return "__Host-tayori_flash"
	}
	return "tayori_flash"
}

// maxFlash bounds a flash's text, in bytes, well inside a cookie.
const maxFlash = 1500

func (s *server) setFlash(w http.ResponseWriter, key, msg string) {
	if len(msg) > maxFlash {
		msg = strings.ToValidUTF8(msg[:maxFlash], "") + "…"
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.flashName(), Value: base64.RawURLEncoding.EncodeToString([]byte(key + "\n" + msg)), Path: "/", MaxAge: 300,
		HttpOnly: true, Secure: s.cfg.secure(), SameSite: http.SameSiteStrictMode,
	})
}

// takeFlash returns the flash keyed to key and clears it; "" if there is
// none (or it is meant for another page, which keeps it).
func (s *server) takeFlash(w http.ResponseWriter, r *http.Request, key string) string {
	c, err := r.Cookie(s.flashName())
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	k, msg, ok := strings.Cut(string(b), "\n")
	if err == nil && ok && k != key {
		return ""
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.flashName(), Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.secure(), SameSite: http.SameSiteStrictMode,
	})
	if err != nil || !ok || !utf8.ValidString(msg) {
		return ""
	}
	return msg
}

func sessionFrom(ctx context.Context) Session {
	sess, _ := ctx.Value(ctxSession).(Session)
	return sess
}

// editor wraps a console handler: it requires a live session (else
// redirects GETs to the sign-in page) and, for any method other than GET
// and HEAD, the session's CSRF token in the form field "csrf" or the
// X-CSRF-Token header, and a same-origin request.
func (s *server) editor(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookieName())
		var sess Session
		if err == nil {
			sess, err = s.deps.Store.Session(r.Context(), c.Value)
		}
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) && !errors.Is(err, http.ErrNoCookie) {
				s.fail(w, r, err)
				return
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/admin/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.adminError(w, r, newError(codeUnauthorized, "sign in first"))
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+1<<20)
			if err := s.cop.Check(r); err != nil {
				s.adminError(w, r, wrapError(codeForbidden, "cross-origin request refused", err))
				return
			}
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
				s.adminError(w, r, newError(codeForbidden, "missing or wrong CSRF token: reload the page and try again"))
				return
			}
		}
		ctx := context.WithValue(r.Context(), ctxSession, sess)
		next(w, r.WithContext(ctx))
	}
}

// ---- API authentication ----

// apiAuth requires "Authorization: Bearer tyr_…". API requests carry no
// cookies, so they need no CSRF token.
func (s *server) apiAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tayori"`)
			s.apiError(w, r, newError(codeUnauthorized, "missing bearer token"))
			return
		}
		ed, err := s.deps.Store.APIToken(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tayori", error="invalid_token"`)
			s.apiError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), ctxEditor, ed)
		next(w, r.WithContext(ctx))
	}
}

func editorFrom(ctx context.Context) Editor {
	if ed, ok := ctx.Value(ctxEditor).(Editor); ok {
		return ed
	}
	return sessionFrom(ctx).Editor
}
