package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Console sign-in limits. Two counters guard the sign-in form, both in
// Redis so that every server process shares them: attempts per client IP
// (generous, for an office of editors behind one NAT) and failed attempts
// per account from any IP (a lock for the rest of LoginWindow after
// LoginPerAccount failures, so that guessing one editor's password from
// many addresses gets nowhere). Each failure is also kept in a short list
// the console shows on /admin/signins.

// signinLogKey is the Redis list of the latest failed sign-ins, newest
// first, capped at maxSigninLog entries.
const (
	signinLogKey = "tayori:web:signin-failures"
	maxSigninLog = 200
)

// FailedSignin is one failed console sign-in as the console lists it.
type FailedSignin struct {
	At time.Time `json:"at"`
	// Account is the editor name tried when it names an editor; empty
	// when it names none (what was typed may be a password in the wrong
	// field, so it is not kept).
	Account string `json:"account,omitempty"`
	// Network is the client's IP cut to its network: /24 for IPv4, /48
	// for IPv6 ("203.0.113.0/24").
	Network string `json:"network"`
	// Locked is true when the attempt was refused because the account
	// had too many failures already.
	Locked bool `json:"locked,omitempty"`
}

// ipNetwork cuts ip to the network it belongs to, enough to tell an
// office from a stranger without keeping anyone's address.
func ipNetwork(ip string) string {
	p := net.ParseIP(ip)
	switch {
	case p == nil:
		return "?"
	case p.To4() != nil:
		return (&net.IPNet{IP: p.To4().Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	default:
		return (&net.IPNet{IP: p.Mask(net.CIDRMask(48, 128)), Mask: net.CIDRMask(48, 128)}).String()
	}
}

// accountKey is the limiter key of an account name as typed.
func accountKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// accountLocked reports whether name has had LoginPerAccount failures in
// the current LoginWindow.
func (s *server) accountLocked(ctx context.Context, name string) (bool, error) {
	n, err := s.rl.count(ctx, "login-account", accountKey(name), s.cfg.LoginWindow)
	if err != nil {
		return false, err
	}
	return n >= int64(s.cfg.LoginPerAccount), nil
}

// failedSignin counts a failure against the account and records it for
// the console. It returns the editor's name when name is an editor's
// account, "" otherwise: what was typed in the name field is never kept
// (it may be a mistyped password). Errors are logged, not returned: the
// reader of the form gets the same answer either way.
func (s *server) failedSignin(ctx context.Context, name, ip string, locked bool) string {
	if !locked {
		if _, err := s.rl.allow(ctx, "login-account", accountKey(name), s.cfg.LoginPerAccount, s.cfg.LoginWindow); err != nil {
			s.log.WarnContext(ctx, "sign-in limiter", "err", err)
		}
	}
	f := FailedSignin{At: s.now().UTC(), Network: ipNetwork(ip), Locked: locked}
	if eds, err := s.deps.Store.Editors(ctx); err == nil {
		for _, e := range eds {
			if accountKey(e.Name) == accountKey(name) {
				f.Account = e.Name
			}
		}
	}
	b, _ := json.Marshal(f)
	pipe := s.deps.Redis.TxPipeline()
	pipe.LPush(ctx, signinLogKey, b)
	pipe.LTrim(ctx, signinLogKey, 0, maxSigninLog-1)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "record failed sign-in", "err", err)
	}
	return f.Account
}

// failedSignins returns the latest failed sign-ins, newest first.
func (s *server) failedSignins(ctx context.Context, limit int) ([]FailedSignin, error) {
	raw, err := s.deps.Redis.LRange(ctx, signinLogKey, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("failed sign-ins: %w", err)
	}
	out := make([]FailedSignin, 0, len(raw))
	for _, r := range raw {
		var f FailedSignin
		if err := json.Unmarshal([]byte(r), &f); err != nil {
			continue // not ours; skip rather than fail the page
		}
		out = append(out, f)
	}
	return out, nil
}

// handleAdminSignins lists the latest failed sign-ins (GET /admin/signins).
func (s *server) handleAdminSignins(w http.ResponseWriter, r *http.Request) {
	list, err := s.failedSignins(r.Context(), 100)
	if err != nil {
		s.adminError(w, r, err)
		return
	}
	s.adminPage(w, r, http.StatusOK, "admin_signins", map[string]any{"Failures": list,
		"PerAccount": s.cfg.LoginPerAccount, "Window": int(s.cfg.LoginWindow.Minutes())})
}

// errAccountLocked: too many failed sign-ins on one account.
var errAccountLocked = errors.New("account locked for a while after failed sign-ins")
