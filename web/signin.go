package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Console sign-in limits. Two guards stand before the sign-in form, both
// in Redis so that every server process shares them: attempts per client
// IP (generous, for an office of editors behind one NAT), and a growing
// delay per account from any IP. After LoginPerAccount failures on one
// account, each further failure makes the account wait before the next
// attempt: LoginLock, then twice as long after each failure, up to
// LoginLockMax. A successful sign-in clears the account's failures, and
// so does a LoginWindow with no failure and no wait. Guessing one editor's
// password from many addresses is slowed to one guess per LoginLockMax,
// while a stranger who types an editor's name keeps that editor out for
// at most LoginLockMax at a time (the attempts refused during a wait do
// not make it longer). Each failure is also kept in a short list the
// console shows on /admin/signins.

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

// accountStateKey is the Redis key of an account's sign-in state (a hash:
// fails, until, last, in milliseconds of the server's clock). The name
// is hashed: what was typed is not kept in the clear.
func accountStateKey(name string) string {
	sum := sha256.Sum256([]byte("login-account\x00" + accountKey(name)))
	return "tayori:web:signin-account:" + hex.EncodeToString(sum[:12])
}

// attemptScript counts one sign-in attempt on an account before its
// password is checked, so that attempts made at once cannot all slip in
// before the first failure is counted. KEYS[1] is accountStateKey;
// ARGV: now, LoginPerAccount, LoginLock, LoginLockMax, LoginWindow (all
// durations in milliseconds). It returns {refused, until}: refused is 1
// when the account must still wait until `until`, and then nothing is
// counted. Otherwise the attempt counts as a failure (a successful
// sign-in clears the state afterwards): the failures are forgotten first
// when the last one (or the end of the last wait) is more than a
// LoginWindow ago, and from the LoginPerAccount-th failure on the account
// waits LoginLock·2^(failures−LoginPerAccount), at most LoginLockMax.
var attemptScript = redis.NewScript(`
local now, per, base, max, forget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'fails', 'until', 'last')
local fails, till, last = tonumber(st[1]) or 0, tonumber(st[2]) or 0, tonumber(st[3]) or 0
if now < till then return {1, till} end
if now - math.max(till, last) > forget then fails = 0 end
fails = fails + 1
till = 0
if fails >= per then
  local wait = base * 2 ^ math.min(fails - per, 40)
  if wait > max then wait = max end
  till = now + math.floor(wait)
end
redis.call('HSET', KEYS[1], 'fails', fails, 'until', string.format('%d', till), 'last', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.max(till - now, 0) + forget + 60000)
return {0, till}`)

// signinAttempt counts a sign-in attempt on the account name (see
// attemptScript) and reports whether it may go on; when it may not,
// until says when the account's wait ends.
func (s *server) signinAttempt(ctx context.Context, name string) (ok bool, until time.Time, err error) {
	res, err := attemptScript.Run(ctx, s.deps.Redis, []string{accountStateKey(name)},
		s.now().UnixMilli(), s.cfg.LoginPerAccount, s.cfg.LoginLock.Milliseconds(),
		s.cfg.LoginLockMax.Milliseconds(), s.cfg.LoginWindow.Milliseconds()).Int64Slice()
	if err != nil {
		return false, time.Time{}, fmt.Errorf("sign-in limit: %w", err)
	}
	if len(res) != 2 {
		return false, time.Time{}, fmt.Errorf("sign-in limit: the script answered %v", res)
	}
	return res[0] == 0, time.UnixMilli(res[1]), nil
}

// signinSucceeded clears the account's failures and wait.
func (s *server) signinSucceeded(ctx context.Context, name string) {
	if err := s.deps.Redis.Del(ctx, accountStateKey(name)).Err(); err != nil {
		s.log.WarnContext(ctx, "sign-in limiter", "err", err)
	}
}

// failedSignin records a failed sign-in (already counted against the
// account by signinAttempt) for the console. It returns the editor's
// name when name is an editor's account, "" otherwise: what was typed in
// the name field is never kept (it may be a mistyped password). Errors
// are logged, not returned: the reader of the form gets the same answer
// either way.
func (s *server) failedSignin(ctx context.Context, name, ip string, locked bool) string {
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
		"PerAccount": s.cfg.LoginPerAccount, "Lock": minutes(s.cfg.LoginLock), "LockMax": minutes(s.cfg.LoginLockMax)})
}

// minutes shows d in whole minutes, at least 1.
func minutes(d time.Duration) int {
	return max(1, int((d+time.Minute-1)/time.Minute))
}

// errAccountLocked: too many failed sign-ins on one account.
var errAccountLocked = errors.New("account locked for a while after failed sign-ins")
