package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is the goose version table of the web package's migrations.
const VersionTable = "web_migrations"

// Errors of the Store, checked with errors.Is.
var (
	// ErrNotFound: no such editor, session, token or issue.
	ErrNotFound = errors.New("not found")
	// ErrExists: an editor with that name exists already.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a name or password that cannot be used.
	ErrInvalid = errors.New("invalid")
	// ErrUnauthorized: wrong name or password, or an unknown, expired or
	// revoked session or token.
	ErrUnauthorized = errors.New("unauthorized")
)

// Editor is a person who may use the console and the API.
type Editor struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is a signed-in editor's browser session.
type Session struct {
	Editor    Editor
	CSRF      string // token every state-changing form of the console carries
	ExpiresAt time.Time
}

// StoredIssue is an issue an editor uploaded.
type StoredIssue struct {
	Slug       string         `json:"slug"`
	Title      string         `json:"title"`
	SourceName string         `json:"source_name"`
	Source     []byte         `json:"-"`
	Issue      *compose.Issue `json:"-"`
	UploadedBy string         `json:"uploaded_by"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// Store keeps the web's own data in SQLite: editors (passwords hashed with
// argon2id), console sessions and API tokens (stored as SHA-256 hashes
// only), and uploaded issues. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
	// hashParams are the argon2id costs of new password hashes.
	hashParams argonParams
}

// OpenStore applies the web migrations (version table "web_migrations")
// to db and returns a Store. now is the clock; nil means time.Now.
func OpenStore(ctx context.Context, db *sql.DB, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Migrate(ctx, db, sub, VersionTable); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return &Store{db: db, now: now, hashParams: defaultArgon}, nil
}

// ---- passwords ----

// argonParams are argon2id costs. The default follows OWASP's password
// storage cheat sheet (19 MiB, 2 passes, 1 lane).
type argonParams struct {
	memKiB  uint32
	time    uint32
	threads uint8
}

var defaultArgon = argonParams{memKiB: 19 * 1024, time: 2, threads: 1}

// MinPasswordLen is the shortest password AddEditor accepts.
const MinPasswordLen = 12

// hashPassword returns a PHC string "$argon2id$v=19$m=…,t=…,p=…$salt$hash".
func hashPassword(pw string, p argonParams) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, p.time, p.memKiB, p.threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memKiB, p.time, p.threads,
		enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

// checkPassword reports whether pw matches the PHC string h, in constant
// time with respect to the hash.
func checkPassword(h, pw string) bool {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return false
	}
	var p argonParams
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memKiB, &p.time, &threads); err != nil || threads == 0 || threads > 255 {
		return false
	}
	if p.memKiB > 1<<20 || p.time > 16 { // refuse absurd costs from a tampered row
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memKiB, uint8(threads), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the editor does not exist, so that
// sign-in takes as long for unknown names as for wrong passwords.
var dummyHash, _ = hashPassword("tayori-dummy-password", defaultArgon)

func validEditorName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("%w: editor name must be 1–64 characters", ErrInvalid)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: editor name must not contain spaces or control characters", ErrInvalid)
		}
	}
	return nil
}

// AddEditor creates an editor with the given password (at least
// MinPasswordLen characters). An existing name is ErrExists.
func (s *Store) AddEditor(ctx context.Context, name, password string) (Editor, error) {
	if err := validEditorName(name); err != nil {
		return Editor{}, err
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return Editor{}, fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLen)
	}
	h, err := hashPassword(password, s.hashParams)
	if err != nil {
		return Editor{}, fmt.Errorf("hash password: %w", err)
	}
	now := s.now()
	var id int64
	err = s.db.QueryRowContext(ctx, `INSERT INTO web_editors (name, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id`, name, h, now.UnixMilli(), now.UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Editor{}, fmt.Errorf("editor %q: %w", name, ErrExists)
	}
	if err != nil {
		return Editor{}, fmt.Errorf("add editor: %w", err)
	}
	return Editor{ID: id, Name: name, CreatedAt: now.UTC()}, nil
}

// SetPassword replaces an editor's password and ends their sessions.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLen)
	}
	h, err := hashPassword(password, s.hashParams)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE web_editors SET password_hash = ?, updated_at = ? WHERE name = ?`,
		h, s.now().UnixMilli(), name)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("editor %q: %w", name, ErrNotFound)
	}
	_, err = s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE editor_id = (SELECT id FROM web_editors WHERE name = ?)`, name)
	return err
}

// Editors lists the editors by name.
func (s *Store) Editors(ctx context.Context) ([]Editor, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM web_editors WHERE disabled = 0 ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list editors: %w", err)
	}
	defer rows.Close()
	var out []Editor
	for rows.Next() {
		var e Editor
		var created int64
		if err := rows.Scan(&e.ID, &e.Name, &created); err != nil {
			return nil, err
		}
		e.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Authenticate checks an editor's name and password. Any failure is
// ErrUnauthorized, and takes about as long whether or not the name exists.
func (s *Store) Authenticate(ctx context.Context, name, password string) (Editor, error) {
	var e Editor
	var h string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM web_editors
		WHERE name = ? AND disabled = 0`, name).Scan(&e.ID, &e.Name, &h, &created)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(dummyHash, password)
		return Editor{}, ErrUnauthorized
	}
	if err != nil {
		return Editor{}, fmt.Errorf("authenticate: %w", err)
	}
	if !checkPassword(h, password) {
		return Editor{}, ErrUnauthorized
	}
	e.CreatedAt = time.UnixMilli(created).UTC()
	return e, nil
}

// ---- sessions ----

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// NewSession starts a session for editor valid for ttl and returns the
// cookie value (256 random bits; only its hash is stored).
func (s *Store) NewSession(ctx context.Context, editorID int64, ttl time.Duration) (string, Session, error) {
	id := randomToken(32)
	csrf := randomToken(32)
	now := s.now()
	exp := now.Add(ttl)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, editor_id, csrf, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, hashSecret(id), editorID, csrf, now.UnixMilli(), exp.UnixMilli()); err != nil {
		return "", Session{}, fmt.Errorf("new session: %w", err)
	}
	// Expired sessions are removed whenever someone signs in.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < ?`, now.UnixMilli()); err != nil {
		return "", Session{}, fmt.Errorf("new session: %w", err)
	}
	sess, err := s.Session(ctx, id)
	return id, sess, err
}

// Session returns the live session of a cookie value, or ErrUnauthorized.
func (s *Store) Session(ctx context.Context, cookie string) (Session, error) {
	if cookie == "" || len(cookie) > 128 {
		return Session{}, ErrUnauthorized
	}
	var sess Session
	var exp, created int64
	err := s.db.QueryRowContext(ctx, `SELECT e.id, e.name, e.created_at, s.csrf, s.expires_at
		FROM web_sessions s JOIN web_editors e ON e.id = s.editor_id
		WHERE s.id_hash = ? AND s.expires_at > ? AND e.disabled = 0`, hashSecret(cookie), s.now().UnixMilli()).
		Scan(&sess.Editor.ID, &sess.Editor.Name, &created, &sess.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	sess.Editor.CreatedAt = time.UnixMilli(created).UTC()
	sess.ExpiresAt = time.UnixMilli(exp).UTC()
	return sess, nil
}

// EndSession deletes the session of a cookie value (signing out).
func (s *Store) EndSession(ctx context.Context, cookie string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, hashSecret(cookie))
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// ---- API tokens ----

// APITokenPrefix starts every API token, so that secret scanners can
// recognise leaked tokens.
const APITokenPrefix = "tyr_"

// NewAPIToken mints a bearer token for the named editor and returns it;
// only its SHA-256 hash is stored, so it cannot be shown again.
func (s *Store) NewAPIToken(ctx context.Context, editor, label string) (string, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT id FROM web_editors WHERE name = ? AND disabled = 0`, editor).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("editor %q: %w", editor, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("new API token: %w", err)
	}
	tok := APITokenPrefix + randomToken(32)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO web_api_tokens (editor_id, label, token_hash, created_at)
		VALUES (?, ?, ?, ?)`, id, label, hashSecret(tok), s.now().UnixMilli()); err != nil {
		return "", fmt.Errorf("new API token: %w", err)
	}
	return tok, nil
}

// RevokeAPITokens revokes every API token of the named editor and returns
// how many were live.
func (s *Store) RevokeAPITokens(ctx context.Context, editor string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE web_api_tokens SET revoked_at = ?
		WHERE revoked_at IS NULL AND editor_id = (SELECT id FROM web_editors WHERE name = ?)`, s.now().UnixMilli(), editor)
	if err != nil {
		return 0, fmt.Errorf("revoke API tokens: %w", err)
	}
	return res.RowsAffected()
}

// APIToken returns the editor a bearer token belongs to, or
// ErrUnauthorized.
func (s *Store) APIToken(ctx context.Context, tok string) (Editor, error) {
	if !strings.HasPrefix(tok, APITokenPrefix) || len(tok) > 128 {
		return Editor{}, ErrUnauthorized
	}
	var e Editor
	var created, tid int64
	err := s.db.QueryRowContext(ctx, `SELECT t.id, e.id, e.name, e.created_at FROM web_api_tokens t
		JOIN web_editors e ON e.id = t.editor_id
		WHERE t.token_hash = ? AND t.revoked_at IS NULL AND e.disabled = 0`, hashSecret(tok)).Scan(&tid, &e.ID, &e.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Editor{}, ErrUnauthorized
	}
	if err != nil {
		return Editor{}, fmt.Errorf("API token: %w", err)
	}
	e.CreatedAt = time.UnixMilli(created).UTC()
	// Best effort: the time of last use helps an operator find stale tokens.
	_, _ = s.db.ExecContext(ctx, `UPDATE web_api_tokens SET last_used_at = ? WHERE id = ?`, s.now().UnixMilli(), tid)
	return e, nil
}

// ---- issues ----

// SaveIssue stores an uploaded issue with its source: revision 1 of a new
// slug, or a new revision of an existing one (without the conflict check:
// the earlier revisions are kept; on a sent issue it is a correction).
func (s *Store) SaveIssue(ctx context.Context, issue *compose.Issue, sourceName string, source []byte, by string) (*StoredIssue, error) {
	if issue == nil || issue.Slug == "" {
		return nil, fmt.Errorf("%w: issue has no slug", ErrInvalid)
	}
	nr := NewRevision{Slug: issue.Slug, Base: AnyBase, Kind: KindUpload, Author: by, SourceName: sourceName,
		Source: source, Issue: issue, Correction: true}
	_, err := s.CreateIssue(ctx, nr)
	if errors.Is(err, ErrExists) {
		_, err = s.SaveRevision(ctx, nr)
	}
	if err != nil {
		return nil, fmt.Errorf("save issue: %w", err)
	}
	return s.Issue(ctx, issue.Slug)
}

// Issue returns a stored issue by slug.
func (s *Store) Issue(ctx context.Context, slug string) (*StoredIssue, error) {
	var is StoredIssue
	var js []byte
	var created, updated int64
	err := s.db.QueryRowContext(ctx, `SELECT slug, title, source_name, source, issue_json, uploaded_by, created_at, updated_at
		FROM web_issues WHERE slug = ?`, slug).Scan(&is.Slug, &is.Title, &is.SourceName, &is.Source, &js, &is.UploadedBy, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("issue %q: %w", slug, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", slug, err)
	}
	is.Issue = new(compose.Issue)
	if err := json.Unmarshal(js, is.Issue); err != nil {
		return nil, fmt.Errorf("issue %q: %w", slug, err)
	}
	is.Issue.Source = is.SourceName // problem reports name the uploaded file
	is.CreatedAt, is.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &is, nil
}

// Issues lists stored issues, most recently updated first (without sources).
func (s *Store) Issues(ctx context.Context) ([]*StoredIssue, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT slug, title, source_name, uploaded_by, created_at, updated_at
		FROM web_issues ORDER BY updated_at DESC, slug DESC`)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	defer rows.Close()
	var out []*StoredIssue
	for rows.Next() {
		var is StoredIssue
		var created, updated int64
		if err := rows.Scan(&is.Slug, &is.Title, &is.SourceName, &is.UploadedBy, &created, &updated); err != nil {
			return nil, err
		}
		is.CreatedAt, is.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		out = append(out, &is)
	}
	return out, rows.Err()
}
