package web_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/web"
)

// storeEnv is a web Store on a fresh database of one engine, with the
// database for looking at the rows and a clock that can jump.
type storeEnv struct {
	ctx   context.Context
	store *web.Store
	db    *store.DB
	clock *clock
}

// q writes a query's one placeholder in the engine's form.
func (e storeEnv) q(query string) string {
	if e.db.Engine == store.Postgres {
		return strings.Replace(query, "?", "$1", 1)
	}
	return query
}

// onEngines runs f as a subtest on every engine (testutil.Engines).
func onEngines(t *testing.T, f func(t *testing.T, e storeEnv)) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			db := testutil.OpenStore(t, eng)
			c := &clock{}
			f(t, storeEnv{ctx: context.Background(), store: web.NewStore(store.Web(db), c.Now), db: db, clock: c})
		})
	}
}

func TestStoreEditorsSessionsTokens(t *testing.T) { onEngines(t, testStoreEditorsSessionsTokens) }

func testStoreEditorsSessionsTokens(t *testing.T, e storeEnv) {
	s, ctx := e.store, e.ctx
	if _, err := s.AddEditor(ctx, "hanako", "short"); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("short password: %v", err)
	}
	if _, err := s.AddEditor(ctx, "has space", editorPassword); !errors.Is(err, web.ErrInvalid) {
		t.Errorf("name with a space: %v", err)
	}
	ed, err := s.AddEditor(ctx, "hanako", editorPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddEditor(ctx, "hanako", editorPassword); !errors.Is(err, web.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	var stored string
	if err := e.db.SQL.QueryRow(e.q(`SELECT password_hash FROM web_editors WHERE id = ?`), ed.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(stored, editorPassword) {
		t.Errorf("stored hash %q", stored)
	}
	for _, tc := range []struct{ name, pw string }{{"hanako", "wrong password"}, {"nobody", editorPassword}, {"hanako", ""}} {
		if _, err := s.Authenticate(ctx, tc.name, tc.pw); !errors.Is(err, web.ErrUnauthorized) {
			t.Errorf("Authenticate(%q, %q): %v", tc.name, tc.pw, err)
		}
	}
	if got, err := s.Authenticate(ctx, "hanako", editorPassword); err != nil || got.ID != ed.ID {
		t.Fatalf("Authenticate: %+v %v", got, err)
	}

	// Sessions expire with the clock and end with a password change.
	cookie, sess, err := s.NewSession(ctx, ed.ID, time.Hour)
	if err != nil || sess.Editor.Name != "hanako" || len(sess.CSRF) < 40 {
		t.Fatalf("NewSession: %+v %v", sess, err)
	}
	var n int
	if err := e.db.SQL.QueryRow(e.q(`SELECT count(*) FROM web_sessions WHERE id_hash = ?`), []byte(cookie)).Scan(&n); err != nil || n != 0 {
		t.Errorf("the session id is stored in the clear (%d, %v)", n, err)
	}
	sum := sha256.Sum256([]byte(cookie))
	if err := e.db.SQL.QueryRow(e.q(`SELECT count(*) FROM web_sessions WHERE id_hash = ?`), sum[:]).Scan(&n); err != nil || n != 1 {
		t.Errorf("sessions stored under the cookie's hash: %d, %v; want 1", n, err)
	}
	if _, err := s.Session(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(61 * time.Minute)
	if _, err := s.Session(ctx, cookie); !errors.Is(err, web.ErrUnauthorized) {
		t.Errorf("expired session: %v", err)
	}
	cookie, _, _ = s.NewSession(ctx, ed.ID, time.Hour)
	if err := s.SetPassword(ctx, "hanako", "another long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, cookie); !errors.Is(err, web.ErrUnauthorized) {
		t.Errorf("session after a password change: %v", err)
	}
	if _, err := s.Authenticate(ctx, "hanako", editorPassword); !errors.Is(err, web.ErrUnauthorized) {
		t.Error("old password still works")
	}

	// API tokens: hashed, revocable.
	tok, err := s.NewAPIToken(ctx, "hanako", "ci")
	if err != nil || !strings.HasPrefix(tok, web.APITokenPrefix) {
		t.Fatalf("NewAPIToken: %q %v", tok, err)
	}
	if _, err := s.NewAPIToken(ctx, "nobody", ""); !errors.Is(err, web.ErrNotFound) {
		t.Errorf("token for nobody: %v", err)
	}
	if got, err := s.APIToken(ctx, tok); err != nil || got.Name != "hanako" {
		t.Fatalf("APIToken: %+v %v", got, err)
	}
	if _, err := s.APIToken(ctx, tok+"x"); !errors.Is(err, web.ErrUnauthorized) {
		t.Errorf("altered token: %v", err)
	}
	if n, err := s.RevokeAPITokens(ctx, "hanako"); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if _, err := s.APIToken(ctx, tok); !errors.Is(err, web.ErrUnauthorized) {
		t.Errorf("revoked token: %v", err)
	}
	eds, err := s.Editors(ctx)
	if err != nil || len(eds) != 1 || eds[0].Name != "hanako" {
		t.Errorf("Editors: %+v %v", eds, err)
	}
}

// The audit log on every engine: newest first, a page at a time, long
// fields clipped on a character boundary, and the readiness check.
func TestStoreAudit(t *testing.T) {
	onEngines(t, func(t *testing.T, e storeEnv) {
		long := strings.Repeat("十一月号", 200) // 2,400 bytes
		for i, a := range []string{"signin", "save", "send"} {
			if err := e.store.Audit(e.ctx, web.AuditEntry{Editor: "花子", Action: a, Subject: long, Detail: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		page, err := e.store.AuditLog(e.ctx, 0, 2)
		if err != nil || len(page) != 2 || page[0].Action != "send" || page[1].Action != "save" || page[0].Editor != "花子" {
			t.Fatalf("the newest two: %+v %v", page, err)
		}
		if !utf8.ValidString(page[0].Subject) || !strings.HasSuffix(page[0].Subject, "…") || len(page[0].Subject) > 1000+len("…") {
			t.Errorf("a long subject is kept as %d bytes: %q…", len(page[0].Subject), page[0].Subject[:30])
		}
		if d := time.Since(page[0].At); d < 0 || d > time.Minute {
			t.Errorf("entry time %v", page[0].At)
		}
		rest, err := e.store.AuditLog(e.ctx, page[1].ID, 10)
		if err != nil || len(rest) != 1 || rest[0].Action != "signin" {
			t.Errorf("the page before %d: %+v %v", page[1].ID, rest, err)
		}
		n := 0
		for _, err := range e.store.AllAudit(e.ctx) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("AllAudit yielded %d entries, want 3", n)
		}
		if err := e.store.Ping(e.ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// TestStoreTrimAudit: the audit log keeps the entries of the last keep
// days by the store's clock and drops older ones, on every engine; a keep
// of zero means web.DefaultAuditKeep (400 days).
func TestStoreTrimAudit(t *testing.T) {
	onEngines(t, func(t *testing.T, e storeEnv) {
		actions := func() []string {
			var out []string
			for en, err := range e.store.AllAudit(e.ctx) {
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, en.Action)
			}
			return out
		}
		audit := func(action string) {
			if err := e.store.Audit(e.ctx, web.AuditEntry{Editor: "花子", Action: action}); err != nil {
				t.Fatal(err)
			}
		}
		audit("signin") // day 0
		e.clock.Advance(10 * 24 * time.Hour)
		audit("send") // day 10
		const keep = 30 * 24 * time.Hour
		e.clock.Advance(20*24*time.Hour - time.Minute) // day 30, a minute early
		if n, err := e.store.TrimAudit(e.ctx, keep); err != nil || n != 0 {
			t.Errorf("TrimAudit within 30 days of the oldest entry = %d, %v; want 0", n, err)
		}
		e.clock.Advance(2 * time.Minute)
		if n, err := e.store.TrimAudit(e.ctx, keep); err != nil || n != 1 {
			t.Errorf("TrimAudit a minute past 30 days of the oldest entry = %d, %v; want 1", n, err)
		}
		if got := actions(); len(got) != 1 || got[0] != "send" {
			t.Errorf("left after the trim: %v, want [send]", got)
		}
		// The default keeps 400 days.
		e.clock.Advance(web.DefaultAuditKeep - 21*24*time.Hour) // 399 days after "send"
		if n, err := e.store.TrimAudit(e.ctx, 0); err != nil || n != 0 {
			t.Errorf("TrimAudit(0) 399 days after the entry = %d, %v; want 0", n, err)
		}
		e.clock.Advance(2 * 24 * time.Hour)
		if n, err := e.store.TrimAudit(e.ctx, 0); err != nil || n != 1 {
			t.Errorf("TrimAudit(0) 401 days after the entry = %d, %v; want 1", n, err)
		}
		if got := actions(); len(got) != 0 {
			t.Errorf("left after the default trim: %v, want none", got)
		}
	})
}
