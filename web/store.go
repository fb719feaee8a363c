package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/tayori-news/tayori/compose"
)

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

// Store keeps the web's own data through a [Storage]: editors (passwords
// hashed with argon2id), console sessions and API tokens (stored as SHA-256
// hashes only), and uploaded issues with their revisions. It holds the
// rules; the Storage holds the rows. It is safe for concurrent use.
type Store struct {
	st  Storage
	now func() time.Time
	// hashParams are the argon2id costs of new password hashes.
	hashParams argonParams
}

// NewStore returns a Store keeping its data in st (store.Web opens the one
// of TAYORI_DB's engine; its schema is applied by store.Migrate). now is
// the clock; nil means time.Now.
func NewStore(st Storage, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{st: st, now: now, hashParams: defaultArgon}
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
// sign-in takes as long for unknown names as for wrong passwords. It is
// made on the first sign-in, not at package init: argon2id with
// defaultArgon takes 19 MiB and tens of milliseconds, which every process
// linking this package (workers too) paid at start, and which stayed in
// their peak RSS.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("tayori-dummy-password", defaultArgon)
	return h
})

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
	id, err := s.st.InsertEditor(ctx, name, h, now)
	if errors.Is(err, ErrExists) {
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
	if err := s.st.SetPasswordHash(ctx, name, h, s.now()); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("editor %q: %w", name, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// Editors lists the editors by name.
func (s *Store) Editors(ctx context.Context) ([]Editor, error) {
	eds, err := s.st.Editors(ctx)
	if err != nil {
		return nil, fmt.Errorf("list editors: %w", err)
	}
	return eds, nil
}

// Authenticate checks an editor's name and password. Any failure is
// ErrUnauthorized, and takes about as long whether or not the name exists.
func (s *Store) Authenticate(ctx context.Context, name, password string) (Editor, error) {
	dummy := dummyHash() // made before the look-up, so the first sign-in of either kind pays for it
	e, h, err := s.st.EditorCredentials(ctx, name)
	if errors.Is(err, ErrNotFound) {
		checkPassword(dummy, password)
		return Editor{}, ErrUnauthorized
	}
	if err != nil {
		return Editor{}, fmt.Errorf("authenticate: %w", err)
	}
	if !checkPassword(h, password) {
		return Editor{}, ErrUnauthorized
	}
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
// cookie value (256 random bits; only its hash is stored). Expired
// sessions are removed whenever someone signs in.
func (s *Store) NewSession(ctx context.Context, editorID int64, ttl time.Duration) (string, Session, error) {
	id := randomToken(32)
	csrf := randomToken(32)
	now := s.now()
	if err := s.st.InsertSession(ctx, hashSecret(id), editorID, csrf, now, now.Add(ttl)); err != nil {
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
	sess, err := s.st.Session(ctx, hashSecret(cookie), s.now())
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	return sess, nil
}

// EndSession deletes the session of a cookie value (signing out).
func (s *Store) EndSession(ctx context.Context, cookie string) error {
	if err := s.st.DeleteSession(ctx, hashSecret(cookie)); err != nil {
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
	tok := APITokenPrefix + randomToken(32)
	err := s.st.InsertAPIToken(ctx, editor, label, hashSecret(tok), s.now())
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("editor %q: %w", editor, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("new API token: %w", err)
	}
	return tok, nil
}

// RevokeAPITokens revokes every API token of the named editor and returns
// how many were live.
func (s *Store) RevokeAPITokens(ctx context.Context, editor string) (int64, error) {
	n, err := s.st.RevokeAPITokens(ctx, editor, s.now())
	if err != nil {
		return 0, fmt.Errorf("revoke API tokens: %w", err)
	}
	return n, nil
}

// APIToken returns the editor a bearer token belongs to, or
// ErrUnauthorized. The time of last use is kept, to help an operator find
// stale tokens.
func (s *Store) APIToken(ctx context.Context, tok string) (Editor, error) {
	if !strings.HasPrefix(tok, APITokenPrefix) || len(tok) > 128 {
		return Editor{}, ErrUnauthorized
	}
	e, err := s.st.APIToken(ctx, hashSecret(tok), s.now())
	if errors.Is(err, ErrNotFound) {
		return Editor{}, ErrUnauthorized
	}
	if err != nil {
		return Editor{}, fmt.Errorf("API token: %w", err)
	}
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
	is, js, err := s.st.Issue(ctx, slug)
	if errors.Is(err, ErrNotFound) {
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
	return is, nil
}

// Issues lists stored issues, most recently updated first (without sources).
func (s *Store) Issues(ctx context.Context) ([]*StoredIssue, error) {
	list, err := s.st.Issues(ctx)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	return list, nil
}
