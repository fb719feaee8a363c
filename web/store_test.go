package web_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/web"
)

func TestStoreEditorsSessionsTokens(t *testing.T) {
	e := newEnv(t, envOpts{})
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
	if err := e.db.QueryRow(`SELECT password_hash FROM web_editors WHERE id = ?`, ed.ID).Scan(&stored); err != nil {
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
	e.db.QueryRow(`SELECT count(*) FROM web_sessions WHERE id_hash = ?`, cookie).Scan(&n)
	if n != 0 {
		t.Error("the session id is stored in the clear")
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
