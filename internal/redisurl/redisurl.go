// Package redisurl reads TAYORI_REDIS_URL, the address of the Redis that
// Asynq, the delivery rate limit, the connection cap and the web limits
// share, and builds the one go-redis client a process uses for all of them.
//
// Two forms are accepted. The first names one Redis server:
//
//	redis://[[user]:password@]host[:port][/db][?option=value&…]
//	rediss://…                                  (TLS)
//
// The port defaults to 6379 and db to 0. The second names Redis Sentinels,
// which tell the client where the primary of a replicated set is and move
// it to the new primary when they fail the old one over:
//
//	redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master[/db][?option=value&…]
//	rediss+sentinel://…                         (TLS to the Sentinels and to the Redis servers)
//
// host:port pairs are the Sentinels (the port defaults to 26379; an IPv6
// address goes in brackets), master is the name the Sentinels monitor
// (`sentinel monitor NAME …` in sentinel.conf), and db is 0–15. The user
// and password are those of the Redis servers (primary and replicas), as
// in the first form. When the Sentinels themselves require a password
// (`requirepass` in sentinel.conf), pass it as the option
// sentinel_password (and sentinel_username for an ACL user). Passwords
// may be percent-encoded.
//
// Options of either form are go-redis's URL options (dial_timeout,
// read_timeout, write_timeout, pool_size, max_retries, skip_verify for
// TLS, …); an unknown option is an error. In the Sentinel form, master_name,
// addr, db, username and password come from the URL's structure and are
// refused as options, as are route_by_latency, route_randomly and
// replica_only (Tayori reads and writes on the primary only).
//
// Redact hides every password of either form, for logs and `tayori
// config`; it works on malformed URLs too, so that error messages never
// carry a password.
package redisurl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Schemes of the two forms.
const (
	SchemeRedis          = "redis"
	SchemeRedisTLS       = "rediss"
	SchemeSentinel       = "redis+sentinel"
	SchemeSentinelTLS    = "rediss+sentinel"
	defaultSentinelPort  = "26379"
	maxDB                = 15
	sentinelPasswordOpt  = "sentinel_password"
	sentinelUsernameOpt  = "sentinel_username"
	redactedPlaceholder  = "xxxxx"
	grammarPlain         = "redis://[:password@]host:port/db"
	grammarSentinel      = "redis+sentinel://[:password@]host:port[,host:port…]/master/db"
	grammarEitherSummary = grammarPlain + " or " + grammarSentinel
)

// Grammar is what TAYORI_REDIS_URL expects, for error messages and docs.
const Grammar = grammarEitherSummary

// Options is a parsed TAYORI_REDIS_URL. Exactly one of its forms is set.
type Options struct {
	plain    *redis.Options
	failover *redis.FailoverOptions
}

// Error is a TAYORI_REDIS_URL that does not parse: what was wrong, and the
// URL with its passwords hidden.
type Error struct {
	URL    string // redacted
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("want %s, got %q: %s", Grammar, e.URL, e.Reason)
}

// Parse reads either form of TAYORI_REDIS_URL. Its errors are *Error and
// never contain a password.
func Parse(s string) (*Options, error) {
	bad := func(format string, args ...any) error {
		return &Error{URL: redact(s, true), Reason: fmt.Sprintf(format, args...)}
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, bad("no scheme (redis://, rediss://, redis+sentinel:// or rediss+sentinel://)")
	}
	switch strings.ToLower(scheme) {
	case SchemeRedis, SchemeRedisTLS:
		return parsePlain(s, bad)
	case SchemeSentinel, SchemeSentinelTLS:
		return parseSentinel(strings.ToLower(scheme) == SchemeSentinelTLS, rest, bad)
	default:
		return nil, bad("unknown scheme %q", scheme)
	}
}

func parsePlain(s string, bad func(string, ...any) error) (*Options, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad("%s", stripURLError(err))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("no host")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, bad("a fragment (#…) has no meaning here")
	}
	if err := checkPort(u.Port(), true); err != nil {
		return nil, bad("%v", err)
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if _, err := parseDB(db); err != nil {
			return nil, bad("%v", err)
		}
	}
	opt, err := redis.ParseURL(s)
	if err != nil {
		return nil, bad("%s", strings.TrimPrefix(err.Error(), "redis: "))
	}
	return &Options{plain: opt}, nil
}

func parseSentinel(useTLS bool, rest string, bad func(string, ...any) error) (*Options, error) {
	if strings.Contains(rest, "#") {
		return nil, bad("a fragment (#…) has no meaning here")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	var userinfo string
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	user, pass, err := parseUserinfo(userinfo)
	if err != nil {
		return nil, bad("%v", err)
	}
	if authority == "" {
		return nil, bad("no Sentinel host:port before the master name")
	}
	var addrs []string
	for _, h := range strings.Split(authority, ",") {
		a, err := sentinelAddr(h)
		if err != nil {
			return nil, bad("%v", err)
		}
		addrs = append(addrs, a)
	}
	parts := strings.Split(path, "/")
	if len(parts) > 0 && parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1] // one trailing slash
	}
	if len(parts) == 0 || parts[0] == "" {
		return nil, bad("no master name after the Sentinels (…/mymaster/0)")
	}
	master, err := url.PathUnescape(parts[0])
	if err != nil || !validMasterName(master) {
		return nil, bad("master name %q: want letters, digits, '.', '-' or '_'", parts[0])
	}
	db := 0
	switch len(parts) {
	case 1:
	case 2:
		if db, err = parseDB(parts[1]); err != nil {
			return nil, bad("%v", err)
		}
	default:
		return nil, bad("path %q: want /master or /master/db", "/"+path)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, bad("options: %s", stripURLError(err))
	}
	for _, k := range []string{"master_name", "addr", "db", "username", "password"} {
		if q.Has(k) {
			return nil, bad("option %s: give it in the URL itself (%s)", k, grammarSentinel)
		}
	}
	for _, k := range []string{"route_by_latency", "route_randomly", "replica_only"} {
		if q.Has(k) {
			return nil, bad("option %s: Tayori writes to the primary only", k)
		}
	}
	sentUser, sentPass := q.Get(sentinelUsernameOpt), q.Get(sentinelPasswordOpt)
	q.Del(sentinelUsernameOpt)
	q.Del(sentinelPasswordOpt)
	// The remaining options are go-redis's own: let it read them, with
	// the structure of the URL handed over in its own failover form.
	q.Set("master_name", master)
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	if user != "" {
		q.Set("username", user)
	}
	if pass != "" {
		q.Set("password", pass)
	}
	gu := url.URL{Scheme: SchemeRedis, Host: addrs[0], Path: "/" + strconv.Itoa(db), RawQuery: q.Encode()}
	if useTLS {
		gu.Scheme = SchemeRedisTLS
	}
	if sentUser != "" || sentPass != "" {
		gu.User = url.UserPassword(sentUser, sentPass)
	}
	fo, err := redis.ParseFailoverURL(gu.String())
	if err != nil {
		return nil, bad("%s", strings.TrimPrefix(err.Error(), "redis: "))
	}
	if fo.TLSConfig != nil {
		// go-redis names the first Sentinel as the server to verify; each
		// Sentinel and Redis server must be verified under its own name.
		fo.TLSConfig.ServerName = ""
		fo.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return &Options{failover: fo}, nil
}

func parseUserinfo(s string) (user, pass string, err error) {
	if s == "" {
		return "", "", nil
	}
	u, p, _ := strings.Cut(s, ":")
	if user, err = url.PathUnescape(u); err != nil {
		return "", "", errors.New("user name: bad percent-encoding")
	}
	if pass, err = url.PathUnescape(p); err != nil {
		return "", "", errors.New("password: bad percent-encoding")
	}
	return user, pass, nil
}

// sentinelAddr checks one host[:port] of the Sentinel list and adds the
// default port.
func sentinelAddr(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty Sentinel address in the list (host:port,host:port)")
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("Sentinel %q: unclosed '[' of an IPv6 address", h)
		}
		host, port = h[1:end], h[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", fmt.Errorf("Sentinel %q: want [ipv6]:port", h)
		}
		port = strings.TrimPrefix(port, ":")
		if net.ParseIP(host) == nil {
			return "", fmt.Errorf("Sentinel %q: %q is not an IPv6 address", h, host)
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("Sentinel %q: put an IPv6 address in brackets, [addr]:port", h)
		}
	}
	if host == "" {
		return "", fmt.Errorf("Sentinel %q: no host", h)
	}
	if strings.ContainsAny(host, " \t\r\n%@/?#") || strings.ContainsRune(host, 0) {
		return "", fmt.Errorf("Sentinel %q: %q is not a host name", h, host)
	}
	if port == "" {
		port = defaultSentinelPort
	}
	if err := checkPort(port, false); err != nil {
		return "", fmt.Errorf("Sentinel %q: %v", h, err)
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(p string, optional bool) error {
	if p == "" && optional {
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return fmt.Errorf("port %q: want a number 1–65535", p)
	}
	return nil
}

func parseDB(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxDB || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("database %q: want a number 0–%d", s, maxDB)
	}
	return n, nil
}

func validMasterName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// stripURLError keeps the reason of a *url.Error, whose message would
// repeat the URL with its password.
func stripURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Sentinel reports whether the URL is of the Sentinel form.
func (o *Options) Sentinel() bool { return o.failover != nil }

// MasterName is the master the Sentinels monitor ("" in the plain form).
func (o *Options) MasterName() string {
	if o.failover == nil {
		return ""
	}
	return o.failover.MasterName
}

// Addrs are the Redis server's address (plain form) or the Sentinels'.
func (o *Options) Addrs() []string {
	if o.failover != nil {
		return append([]string(nil), o.failover.SentinelAddrs...)
	}
	return []string{o.plain.Addr}
}

// DB is the database number.
func (o *Options) DB() int {
	if o.failover != nil {
		return o.failover.DB
	}
	return o.plain.DB
}

// TLS reports whether connections use TLS.
func (o *Options) TLS() bool {
	if o.failover != nil {
		return o.failover.TLSConfig != nil
	}
	return o.plain.TLSConfig != nil
}

// Password is the Redis servers' password ("" if none).
func (o *Options) Password() string {
	if o.failover != nil {
		return o.failover.Password
	}
	return o.plain.Password
}

// SentinelPassword is the Sentinels' password ("" if none or plain form).
func (o *Options) SentinelPassword() string {
	if o.failover == nil {
		return ""
	}
	return o.failover.SentinelPassword
}

// String describes where the client connects, without passwords, for
// messages such as "Redis at … does not answer".
func (o *Options) String() string {
	if o.failover != nil {
		return fmt.Sprintf("master %q via Sentinel %s (db %d)", o.failover.MasterName,
			strings.Join(o.failover.SentinelAddrs, ","), o.failover.DB)
	}
	return fmt.Sprintf("%s (db %d)", o.plain.Addr, o.plain.DB)
}

// NewClient returns the process's client: a plain client, or in the
// Sentinel form a failover client that finds the primary through the
// Sentinels and follows it when they fail it over. Its pool holds at least
// poolSize connections (asynq's workers, the limiter and the web share it).
// name, unless the URL sets client_name, names its connections (CLIENT
// SETNAME), so that CLIENT LIST shows which process holds which.
func (o *Options) NewClient(name string, poolSize int) redis.UniversalClient {
	if o.failover != nil {
		fo := *o.failover
		fo.PoolSize = max(fo.PoolSize, poolSize)
		if fo.ClientName == "" {
			fo.ClientName = name
		}
		if fo.TLSConfig != nil {
			fo.TLSConfig = fo.TLSConfig.Clone()
		}
		return redis.NewFailoverClient(&fo)
	}
	po := *o.plain
	po.PoolSize = max(po.PoolSize, poolSize)
	if po.ClientName == "" {
		po.ClientName = name
	}
	if po.TLSConfig != nil {
		po.TLSConfig = po.TLSConfig.Clone()
	}
	return redis.NewClient(&po)
}

// Redact returns s with every password replaced by "xxxxx": the one in the
// userinfo (user:password@) and the values of the options password and
// sentinel_password. It does not need s to parse: in a URL that does not,
// anything that may be a password is hidden, even at the cost of hiding
// more than that.
func Redact(s string) string {
	_, err := Parse(s)
	return redact(s, err != nil)
}

// redact hides passwords; careful is for URLs that do not parse, where an
// '@' after a '/', '?' or '#' may still end a password.
func redact(s string, careful bool) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if !careful {
			return s
		}
		scheme, rest = "", s
	} else {
		scheme += "://"
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		if c := strings.IndexByte(authority[:at], ':'); c >= 0 {
			authority = authority[:c+1] + redactedPlaceholder + authority[at:]
		}
	} else if at := strings.IndexByte(rest, '@'); careful && at >= 0 {
		// A password holding '/', '?' or '#' unencoded: hide from the
		// first ':' up to the '@'.
		if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
			authority, tail = rest[:c+1]+redactedPlaceholder, rest[at:]
		}
	}
	if q := strings.IndexByte(tail, '?'); q >= 0 {
		tail = tail[:q+1] + redactQuery(tail[q+1:])
	}
	return scheme + authority + tail
}

// redactQuery hides the values of password options in a raw query,
// keeping everything else byte for byte.
func redactQuery(raw string) string {
	frag := ""
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw, frag = raw[:i], raw[i:]
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, has := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if has && strings.Contains(strings.ToLower(name), "password") {
			parts[i] = k + "=" + redactedPlaceholder
		}
	}
	return strings.Join(parts, "&") + frag
}
