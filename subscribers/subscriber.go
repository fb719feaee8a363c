package subscribers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/audience"
)

// Errors callers branch on, checked with errors.Is. Token failures are the
// sentinels of package token (token.ErrInvalid and its children).
var (
	// ErrNotFound: no such subscriber or list (or the subscriber was erased).
	ErrNotFound = errors.New("not found")
	// ErrExists: the address is already subscribed (API add).
	ErrExists = errors.New("already exists")
	// ErrSuppressed: the address was erased, hard-bounced or complained, so
	// only a fresh double opt-in may bring it back.
	ErrSuppressed = errors.New("address is suppressed")
	// ErrInvalid is wrapped by every validation error (*FieldError,
	// *ValidationError).
	ErrInvalid = errors.New("invalid")
	// ErrTransition: the status change is not allowed (for example
	// unsubscribed → active other than by a fresh double opt-in).
	ErrTransition = errors.New("status change not allowed")
)

// FieldError is one validation problem: the field, the CSV row when the
// input came from a file (0 otherwise) and the reason. It never contains
// the offending address, so it is safe to log.
type FieldError struct {
	Row    int    `json:"row,omitempty"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Error formats the problem as "row 3: email: missing @".
func (e *FieldError) Error() string {
	if e.Row > 0 {
		return fmt.Sprintf("row %d: %s: %s", e.Row, e.Field, e.Reason)
	}
	return e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ValidationError lists every problem found in one input.
type ValidationError struct {
	Problems []*FieldError
}

// Error joins the problems with "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Status is where a subscriber stands. Only active subscribers receive
// newsletters.
type Status string

// The statuses. Transitions: pending → active by confirming (or by an
// import or API add carrying a recorded consent); any status → active by a
// fresh double opt-in; pending/active → unsubscribed, bounced, complained.
// Nothing else reactivates an address.
const (
	Pending      Status = "pending"
	Active       Status = "active"
	Unsubscribed Status = "unsubscribed"
	Bounced      Status = "bounced"
	Complained   Status = "complained"
)

// Statuses lists every status.
var Statuses = []Status{Pending, Active, Unsubscribed, Bounced, Complained}

// ParseStatus parses a status name, case-insensitively.
func ParseStatus(s string) (Status, error) {
	st := Status(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Statuses, st) {
		return st, nil
	}
	return "", fieldErr("status", "%q is not one of pending, active, unsubscribed, bounced, complained", s)
}

// Method is how consent was given.
type Method string

// The consent methods.
const (
	DoubleOptIn Method = "double_opt_in" // web form, confirmed by the link in a confirmation mail
	Imported    Method = "import"        // consent collected elsewhere, brought in by CSV import
	API         Method = "api"           // added by an operator or another system (CLI, API)
)

// ParseMethod parses a consent method; "web" and "double-opt-in" are
// accepted for DoubleOptIn.
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "double_opt_in", "double-opt-in", "doubleoptin", "web":
		return DoubleOptIn, nil
	case "import", "imported":
		return Imported, nil
	case "api", "cli":
		return API, nil
	}
	return "", fieldErr("consent_method", "%q is not one of double_opt_in, import, api", s)
}

// DefaultList is the key of the list every new subscriber joins unless told
// otherwise; the first migration creates it.
const DefaultList = "monthly"

// Subscriber is one reader as the store knows them.
type Subscriber struct {
	// ID is the internal id; it never appears in a URL.
	ID int64 `json:"id"`
	// PublicID names the subscriber in tokens and URLs: 128 bits,
	// base64url, derived from ID with a keyed block cipher (see publicIDs)
	// or, for subscribers created before migration 3, random and stored.
	// Neither reveals ID or can be guessed.
	PublicID string `json:"public_id"`
	// Email is the normalised address; empty once erased.
	Email string `json:"email"`
	// Name is the display name, possibly empty.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Prefs are the regions and topics chosen. Slices returned by the
	// store may be shared: treat them as read-only.
	Prefs audience.Prefs `json:"prefs"`
	// Lists are the keys of the lists the subscriber is a member of (and
	// has not left), sorted.
	Lists     []string  `json:"lists"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ErasedAt is set once personal data was erased.
	ErasedAt time.Time `json:"erased_at,omitzero"`
	// LegalHold keeps consent records from being purged.
	LegalHold bool `json:"legal_hold,omitempty"`

	confirmSeq uint64
}

// Sendable reports whether the subscriber should receive mail for list
// now: active, not erased and a member of the list.
func (s Subscriber) Sendable(list string) bool {
	return s.Status == Active && s.ErasedAt.IsZero() && slices.Contains(s.Lists, list)
}

// List is a mailing list subscribers belong to.
type List struct {
	ID int64 `json:"id"`
	// Key is short and stable ("monthly"): lower-case letters, digits and
	// '-', at most 32.
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// Active and Total count the list's sendable members and all who
	// joined it (filled by Store.Lists).
	Active int64 `json:"active"`
	Total  int64 `json:"total"`
}

// Consent is a record of consent (特定電子メール法 Art. 3(2), GDPR Art. 7(1)).
type Consent struct {
	ID int64 `json:"id,omitempty"`
	// At is when consent was given.
	At time.Time `json:"at"`
	// Method is how it was given.
	Method Method `json:"method"`
	// FormVersion names the form or template shown ("signup-2026-01").
	FormVersion string `json:"form_version,omitempty"`
	// Text is the wording shown; it is not stored, only its hash. When
	// TextSHA256 is empty the store computes it from Text.
	Text string `json:"-"`
	// TextSHA256 is the hex SHA-256 of the text shown.
	TextSHA256 string `json:"text_sha256,omitempty"`
	// IP and UserAgent of the request, where there was one.
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// Lists and Prefs record what was consented to; the store fills them
	// from the subscriber when empty.
	Lists []string       `json:"lists"`
	Prefs audience.Prefs `json:"prefs"`
	// RecordedAt is when the store wrote the record.
	RecordedAt time.Time `json:"recorded_at"`
}

// HashText returns the hex SHA-256 of a consent text, as stored in
// Consent.TextSHA256.
func HashText(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// StatusChange is one entry of a subscriber's status history.
type StatusChange struct {
	At   time.Time `json:"at"`
	From Status    `json:"from,omitempty"` // empty when the subscriber was created
	To   Status    `json:"to"`
	// List is set when the change concerns one list (leaving or joining).
	List string `json:"list,omitempty"`
	// Cause says why: "confirm", "import", "one-click unsubscribe",
	// "bounce: 5.1.1 …".
	Cause string `json:"cause,omitempty"`
}
