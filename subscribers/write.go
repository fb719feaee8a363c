package subscribers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/subscribers/token"
)

// MaxNameLen is the longest display name accepted, in characters.
const MaxNameLen = 200

// NewSubscriber is the input of Store.Add.
type NewSubscriber struct {
	// Email is normalised with NormalizeEmail. Required.
	Email string
	// Name is the display name; optional, at most 200 characters, no
	// control characters.
	Name string
	// Prefs are the regions and topics chosen; nil means audience.All().
	Prefs *audience.Prefs
	// Lists are the list keys to join; empty means DefaultList.
	Lists []string
	// Method is how the subscriber came: DoubleOptIn for a web signup
	// (always pending until confirmed; the default), Imported or API.
	Method Method
	// Consent is the consent collected elsewhere (Imported or API): with it
	// the subscriber is active at once and the record is stored; without it
	// they are pending. Ignored for DoubleOptIn (consent is recorded by
	// Confirm).
	Consent *Consent
	// Cause goes into the status history ("web signup", "cli add").
	Cause string
}

// Add creates a subscriber.
//
// With Method DoubleOptIn (a web signup) the suppression list is not
// consulted, since confirming is a fresh opt-in. If the address is already
// known the existing subscriber is returned unchanged with a nil error
// (joining any new lists only once they confirm), so the web handler can
// answer identically in every case and send a confirmation mail unless the
// subscriber is already active.
//
// With Imported or API, a suppressed address gives ErrSuppressed and a
// known one ErrExists; the subscriber is active if Consent is set and
// pending otherwise.
func (s *Store) Add(ctx context.Context, n NewSubscriber) (Subscriber, error) {
	email, prefs, lists, err := s.validateNew(ctx, &n)
	if err != nil {
		return Subscriber{}, fmt.Errorf("add subscriber: %w", err)
	}
	var id int64
	err = s.inTx(ctx, func(tx Queries) error {
		existing, err := s.getByEmail(ctx, tx, email)
		switch {
		case err == nil && n.Method == DoubleOptIn:
			id = existing.ID
			return s.keepChoice(ctx, tx, existing, n, prefs, lists)
		case err == nil:
			return ErrExists
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if n.Method != DoubleOptIn {
			sup, err := s.isSuppressed(ctx, tx, email)
			if err != nil {
				return err
			}
			if sup {
				return ErrSuppressed
			}
		}
		status := Pending
		if n.Method != DoubleOptIn && n.Consent != nil {
			status = Active
		}
		cause := n.Cause
		if cause == "" {
			cause = string(n.Method)
		}
		id, err = s.insert(ctx, tx, email, strings.TrimSpace(n.Name), status, prefs, lists, cause)
		if err != nil {
			return err
		}
		if status == Active {
			_, err := s.recordConsent(ctx, tx, id, *n.Consent, n.Method, lists, prefs)
			return err
		}
		return nil
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("add subscriber: %w", err)
	}
	s.log.DebugContext(ctx, "subscriber added", "subscriber_id", id, "method", string(n.Method))
	return s.Get(ctx, id)
}

// choice is a returning reader's signup choice, kept in the
// pending_choice column until they confirm.
type choice struct {
	Name  string         `json:"name"`
	Prefs audience.Prefs `json:"prefs"`
}

// keepChoice records the name and preferences of a double opt-in signup
// of a known address: a pending subscriber (who receives nothing yet)
// takes them at once; one who would receive nothing until confirming
// (unsubscribed, bounced, complained, or active but not in the lists
// signed up for) keeps them in pending_choice, applied by Confirm; an
// active member of every list keeps their stored choice.
func (s *Store) keepChoice(ctx context.Context, tx Queries, sub Subscriber, n NewSubscriber, prefs audience.Prefs, lists []int64) error {
	if !sub.ErasedAt.IsZero() {
		return nil
	}
	// The public form shows only the standard topics: keep the editor's
	// custom tags.
	for _, t := range sub.Prefs.Topics {
		if !t.IsStandard() && !slices.Contains(prefs.Topics, t) {
			prefs.Topics = append(prefs.Topics, t)
		}
	}
	name := strings.TrimSpace(n.Name)
	now := s.nowUTC()
	switch {
	case sub.Status == Pending:
		if name != sub.Name {
			if err := tx.SetName(ctx, sub.ID, name, now); err != nil {
				return fmt.Errorf("signup choice: %w", err)
			}
		}
		if n.Prefs != nil && prefs.Key() != sub.Prefs.Key() {
			if err := s.setPrefs(ctx, tx, sub.ID, prefs, now); err != nil {
				return fmt.Errorf("signup choice: %w", err)
			}
		}
		return nil
	case sub.Status == Active && s.memberOfAll(sub, s.listKeys(ctx, tx, lists)):
		return nil
	}
	c := choice{Name: name, Prefs: sub.Prefs}
	if n.Prefs != nil {
		c.Prefs = prefs
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("signup choice: %w", err)
	}
	if err := tx.SetPendingChoice(ctx, sub.ID, string(b), now); err != nil {
		return fmt.Errorf("signup choice: %w", err)
	}
	return nil
}

func (s *Store) memberOfAll(sub Subscriber, keys []string) bool {
	for _, k := range keys {
		if !slices.Contains(sub.Lists, k) {
			return false
		}
	}
	return true
}

// applyChoice applies and clears the choice keepChoice kept for sub, and
// returns the preferences sub has afterwards.
func (s *Store) applyChoice(ctx context.Context, tx Queries, sub Subscriber, now time.Time) (audience.Prefs, error) {
	raw, err := tx.PendingChoice(ctx, sub.ID)
	if err != nil {
		return sub.Prefs, fmt.Errorf("signup choice: %w", err)
	}
	if raw == "" {
		return sub.Prefs, nil
	}
	var c choice
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return sub.Prefs, fmt.Errorf("signup choice of subscriber %d: %w", sub.ID, err)
	}
	if err := tx.SetPendingChoice(ctx, sub.ID, "", now); err != nil {
		return sub.Prefs, fmt.Errorf("signup choice: %w", err)
	}
	if err := tx.SetName(ctx, sub.ID, c.Name, now); err != nil {
		return sub.Prefs, fmt.Errorf("signup choice: %w", err)
	}
	if err := s.setPrefs(ctx, tx, sub.ID, c.Prefs, now); err != nil {
		return sub.Prefs, fmt.Errorf("signup choice: %w", err)
	}
	return c.Prefs, nil
}

func (s *Store) validateNew(ctx context.Context, n *NewSubscriber) (string, audience.Prefs, []int64, error) {
	if n.Method == "" {
		n.Method = DoubleOptIn
	}
	var problems []*FieldError
	email, err := NormalizeEmail(n.Email)
	if err != nil {
		problems = append(problems, asFieldError(err, "email"))
	}
	if p := checkName(n.Name); p != nil {
		problems = append(problems, p)
	}
	prefs := audience.All()
	if n.Prefs != nil {
		prefs = *n.Prefs
		problems = append(problems, checkPrefs(prefs)...)
	}
	switch n.Method {
	case DoubleOptIn, Imported, API:
	default:
		problems = append(problems, fieldErr("method", "%q is not one of double_opt_in, import, api", n.Method))
	}
	if n.Consent != nil && n.Method != DoubleOptIn {
		problems = append(problems, checkConsent(*n.Consent)...)
	}
	keys := n.Lists
	if len(keys) == 0 {
		keys = []string{DefaultList}
	}
	var lists []int64
	for _, k := range keys {
		id, err := s.listID(ctx, s.st, k)
		if err != nil {
			problems = append(problems, fieldErr("lists", "unknown list %q", k))
			continue
		}
		if !slices.Contains(lists, id) {
			lists = append(lists, id)
		}
	}
	if len(problems) > 0 {
		return "", audience.Prefs{}, nil, &ValidationError{Problems: problems}
	}
	return email, prefs, lists, nil
}

func asFieldError(err error, field string) *FieldError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return &FieldError{Field: field, Reason: err.Error()}
}

func checkName(name string) *FieldError {
	if !utf8.ValidString(name) {
		return fieldErr("name", "not valid UTF-8")
	}
	if utf8.RuneCountInString(name) > MaxNameLen {
		return fieldErr("name", "longer than %d characters", MaxNameLen)
	}
	for _, r := range name {
		if r == '\r' || r == '\n' {
			return fieldErr("name", "contains a line break (CR or LF)")
		}
		if unicode.IsControl(r) {
			return fieldErr("name", "contains a control character")
		}
	}
	return nil
}

func checkPrefs(p audience.Prefs) []*FieldError {
	var out []*FieldError
	for _, r := range p.Regions {
		if _, err := audience.ParseRegion(string(r)); err != nil || string(r) != strings.ToLower(string(r)) {
			out = append(out, fieldErr("regions", "unknown region %q", r))
		}
	}
	for _, t := range p.Topics {
		if pt, err := audience.ParseTopic(string(t)); err != nil || pt != t {
			out = append(out, fieldErr("topics", "invalid topic %q (a-z, 0-9 and '-', at most 32)", t))
		}
	}
	return out
}

// maxConsentField bounds free-text consent fields.
const maxConsentField = 512

// isHexSHA256 reports whether s is 64 lower-case hex digits. (A loop,
// not a regular expression: an import checks it on every row.)
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkConsent(c Consent) []*FieldError {
	var out []*FieldError
	if c.At.IsZero() {
		out = append(out, fieldErr("consent_at", "missing"))
	}
	if c.TextSHA256 != "" && !isHexSHA256(c.TextSHA256) {
		out = append(out, fieldErr("consent_text_sha256", "not 64 lower-case hex digits"))
	}
	for _, f := range []struct{ name, v string }{
		{"consent_version", c.FormVersion}, {"consent_ip", c.IP}, {"consent_user_agent", c.UserAgent},
	} {
		if len(f.v) > maxConsentField {
			out = append(out, fieldErr(f.name, "longer than %d bytes", maxConsentField))
		} else if !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, unicode.IsControl) {
			out = append(out, fieldErr(f.name, "contains control characters or invalid UTF-8"))
		}
	}
	return out
}

func (s *Store) listID(ctx context.Context, q Queries, key string) (int64, error) {
	if key == DefaultList && s.defListID != 0 {
		return s.defListID, nil
	}
	id, err := q.ListID(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("list %q: %w", key, err)
	}
	return id, nil
}

// insert writes a new subscriber row, tags, memberships and the creation
// history entry.
func (s *Store) insert(ctx context.Context, tx Queries, email, name string, status Status, prefs audience.Prefs, lists []int64, cause string) (int64, error) {
	now := s.nowUTC()
	regions, topics, custom := maskOf(prefs)
	id, err := tx.InsertSubscriber(ctx, NewRecord{Email: email, EmailKey: emailKey(email), Name: name, Status: status,
		Regions: regions, Topics: topics, At: now})
	if err != nil {
		return 0, fmt.Errorf("insert subscriber: %w", err)
	}
	if len(custom) > 0 {
		if err := tx.AddTags(ctx, id, custom); err != nil {
			return 0, fmt.Errorf("insert tag: %w", err)
		}
	}
	for _, l := range lists {
		if _, err := tx.JoinList(ctx, l, id, now); err != nil {
			return 0, fmt.Errorf("join list: %w", err)
		}
	}
	if err := s.history(ctx, tx, id, "", status, "", cause); err != nil {
		return 0, err
	}
	return id, nil
}

func (s *Store) history(ctx context.Context, tx Queries, id int64, from, to Status, list, cause string) error {
	noteStatus(tx, id, from, to)
	if err := tx.InsertHistory(ctx, id, StatusChange{At: s.nowUTC(), From: from, To: to, List: list, Cause: truncate(cause, 1000)}); err != nil {
		return fmt.Errorf("status history: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (s *Store) listKeys(ctx context.Context, q Queries, ids []int64) []string {
	var keys []string
	for _, id := range ids {
		if k, err := q.ListKey(ctx, id); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// recordConsent stores a consent record unless the same one (time, method,
// form version, text hash) is already there, and reports whether it wrote.
func (s *Store) recordConsent(ctx context.Context, tx Queries, id int64, c Consent, m Method, lists []int64, prefs audience.Prefs) (bool, error) {
	if c.Method == "" {
		c.Method = m
	}
	if c.TextSHA256 == "" && c.Text != "" {
		c.TextSHA256 = HashText(c.Text)
	}
	if c.At.IsZero() {
		c.At = s.now()
	}
	if len(c.Lists) == 0 {
		c.Lists = s.listKeys(ctx, tx, lists)
	}
	if len(c.Prefs.Regions) == 0 && len(c.Prefs.Topics) == 0 {
		c.Prefs = prefs
	}
	row := ConsentRow{At: c.At.UTC().Truncate(time.Microsecond), Method: c.Method, FormVersion: c.FormVersion, TextSHA256: c.TextSHA256,
		IP: c.IP, Agent: c.UserAgent, Prefs: c.Prefs.Key(), RecordedAt: s.nowUTC()}
	exists, err := tx.ConsentExists(ctx, id, row)
	if err != nil {
		return false, fmt.Errorf("consent: %w", err)
	}
	if exists {
		return false, nil // the same record is already there (re-import)
	}
	slices.Sort(c.Lists)
	row.Lists = strings.Join(c.Lists, ",")
	if err := tx.InsertConsent(ctx, id, row); err != nil {
		return false, fmt.Errorf("consent: %w", err)
	}
	return true, nil
}

// setStatus moves a subscriber to status to, recording the change.
func (s *Store) setStatus(ctx context.Context, tx Queries, sub Subscriber, to Status, cause string) error {
	if sub.Status == to {
		return nil
	}
	if err := tx.SetStatus(ctx, sub.ID, to, s.nowUTC()); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	return s.history(ctx, tx, sub.ID, sub.Status, to, "", cause)
}

// allowed reports whether a subscriber may move from one status to
// another. freshOptIn is true only when the subscriber confirmed a double
// opt-in just now; it is the only way back from unsubscribed, bounced or
// complained.
func allowed(from, to Status, freshOptIn bool) bool {
	if from == to {
		return true
	}
	switch to {
	case Active:
		return from == Pending || freshOptIn
	case Unsubscribed:
		return from == Pending || from == Active
	case Bounced:
		return from != Complained
	case Complained:
		return true
	}
	return false // nothing moves back to pending
}

// ---- tokens ----

// ConfirmToken mints a confirm token for subscriber id and list (empty:
// DefaultList), valid for Options.ConfirmTTL and only until the subscriber
// next confirms.
func (s *Store) ConfirmToken(ctx context.Context, id int64, list string) (string, error) {
	sub, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if !sub.ErasedAt.IsZero() {
		return "", fmt.Errorf("confirm token: subscriber %d: %w", id, ErrNotFound)
	}
	if list == "" {
		list = DefaultList
	}
	now := s.now()
	return s.ring.Mint(token.Claims{Purpose: token.Confirm, Subject: sub.PublicID, List: list,
		IssuedAt: now, ExpiresAt: now.Add(s.opts.ConfirmTTL), Nonce: sub.confirmSeq})
}

// UnsubscribeToken mints a never-expiring unsubscribe token for a
// subscriber's public id and list (empty: every list). It does no I/O and
// costs a few microseconds.
func (s *Store) UnsubscribeToken(publicID, list string) (string, error) {
	return s.ring.Mint(token.Claims{Purpose: token.Unsubscribe, Subject: publicID, List: list})
}

// PreferencesToken mints a preference-centre token for a subscriber's
// public id and list. It does not expire (like the unsubscribe link, it
// must keep working from old issues). No I/O.
func (s *Store) PreferencesToken(publicID, list string) (string, error) {
	return s.ring.Mint(token.Claims{Purpose: token.Preferences, Subject: publicID, List: list})
}

// VerifyToken checks a token for purpose and returns the subscriber it
// names. Errors: the token package's sentinels (all wrapping
// token.ErrInvalid), ErrNotFound for an unknown subscriber.
func (s *Store) VerifyToken(ctx context.Context, tok string, purpose token.Purpose) (Subscriber, token.Claims, error) {
	c, err := s.ring.Verify(tok, purpose)
	if err != nil {
		return Subscriber{}, token.Claims{}, err
	}
	sub, err := s.GetByPublicID(ctx, c.Subject)
	if err != nil {
		return Subscriber{}, token.Claims{}, err
	}
	return sub, c, nil
}

// Confirm completes a double opt-in with a confirm token: the subscriber
// becomes active (from any status: this is the fresh opt-in that may bring
// back an unsubscribed, bounced or complained address, and it lifts the
// address's suppression), joins the token's list, and c is stored as the
// consent record (Method DoubleOptIn; At defaults to now). The token is
// used up. Errors: token sentinels (token.ErrUsed for a second use),
// ErrNotFound for an unknown or erased subscriber.
func (s *Store) Confirm(ctx context.Context, tok string, c Consent) (Subscriber, error) {
	claims, err := s.ring.Verify(tok, token.Confirm)
	if err != nil {
		return Subscriber{}, fmt.Errorf("confirm: %w", err)
	}
	if p := checkConsent(Consent{At: s.now(), TextSHA256: c.TextSHA256, FormVersion: c.FormVersion, IP: c.IP, UserAgent: c.UserAgent}); len(p) > 0 {
		return Subscriber{}, fmt.Errorf("confirm: %w", &ValidationError{Problems: p})
	}
	var id int64
	err = s.inTx(ctx, func(tx Queries) error {
		sub, err := s.getByPublicID(ctx, tx, claims.Subject)
		if err != nil {
			return err
		}
		if !sub.ErasedAt.IsZero() {
			return ErrNotFound
		}
		if sub.confirmSeq != claims.Nonce {
			return token.ErrUsed
		}
		id = sub.ID
		listKey := claims.List
		if listKey == "" {
			listKey = DefaultList
		}
		listID, err := s.listID(ctx, tx, listKey)
		if err != nil {
			return err
		}
		now := s.nowUTC()
		if err := tx.AdvanceConfirm(ctx, sub.ID, now); err != nil {
			return err
		}
		joined, err := tx.JoinList(ctx, listID, sub.ID, now)
		if err != nil {
			return err
		}
		if joined && sub.Status == Active {
			if err := s.history(ctx, tx, sub.ID, Active, Active, listKey, "joined by double opt-in"); err != nil {
				return err
			}
			noteList(tx, sub.ID, EventConfirmed, Active, listKey)
		}
		if err := s.setStatus(ctx, tx, sub, Active, "double opt-in confirmed"); err != nil {
			return err
		}
		nameList(tx, sub.ID, EventConfirmed, listKey)
		if err := s.unsuppress(ctx, tx, sub.Email); err != nil {
			return err
		}
		prefs, err := s.applyChoice(ctx, tx, sub, now)
		if err != nil {
			return err
		}
		c.Method = DoubleOptIn
		c.Lists = []string{listKey}
		c.Prefs = prefs
		_, err = s.recordConsent(ctx, tx, sub.ID, c, DoubleOptIn, nil, prefs)
		return err
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("confirm: %w", err)
	}
	s.log.InfoContext(ctx, "subscriber confirmed", "subscriber_id", id)
	return s.Get(ctx, id)
}

// Unsubscribe removes subscriber id from list (empty: from every list).
// It is idempotent and succeeds for erased, bounced or complained
// subscribers. Leaving the last list (or all) makes an active or pending
// subscriber unsubscribed. An unknown list key unsubscribes from every
// list, erring on the reader's side.
func (s *Store) Unsubscribe(ctx context.Context, id int64, list, cause string) error {
	err := s.inTx(ctx, func(tx Queries) error {
		sub, err := s.getByID(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.unsubscribe(ctx, tx, sub, list, cause)
	})
	if err != nil {
		return fmt.Errorf("unsubscribe %d: %w", id, err)
	}
	s.log.InfoContext(ctx, "subscriber unsubscribed", "subscriber_id", id, "list", list)
	return nil
}

func (s *Store) unsubscribe(ctx context.Context, tx Queries, sub Subscriber, list, cause string) error {
	if !sub.ErasedAt.IsZero() {
		return nil
	}
	if cause == "" {
		cause = "unsubscribe"
	}
	now := s.nowUTC()
	all := list == ""
	if !all {
		listID, err := s.listID(ctx, tx, list)
		if errors.Is(err, ErrNotFound) {
			all = true
		} else if err != nil {
			return err
		} else {
			left, err := tx.LeaveList(ctx, listID, sub.ID, now)
			if err != nil {
				return err
			}
			if left {
				if err := s.history(ctx, tx, sub.ID, sub.Status, sub.Status, list, cause); err != nil {
					return err
				}
			}
			n, err := tx.Memberships(ctx, sub.ID)
			if err != nil {
				return err
			}
			if n > 0 {
				if left {
					noteList(tx, sub.ID, EventUnsubscribed, sub.Status, list)
				}
				return nil
			}
		}
	}
	if all {
		if err := tx.LeaveAll(ctx, sub.ID, now); err != nil {
			return err
		}
	}
	if allowed(sub.Status, Unsubscribed, false) {
		if err := s.setStatus(ctx, tx, sub, Unsubscribed, cause); err != nil {
			return err
		}
		if !all {
			nameList(tx, sub.ID, EventUnsubscribed, list)
		}
	}
	return nil
}

// UnsubscribeByToken verifies an unsubscribe token and unsubscribes its
// subscriber from its list (RFC 8058 one-click). It is idempotent: a
// second use, or a use after erasure, succeeds and changes nothing.
func (s *Store) UnsubscribeByToken(ctx context.Context, tok, cause string) (Subscriber, error) {
	c, err := s.ring.Verify(tok, token.Unsubscribe)
	if err != nil {
		return Subscriber{}, fmt.Errorf("unsubscribe: %w", err)
	}
	sub, err := s.GetByPublicID(ctx, c.Subject)
	if err != nil {
		return Subscriber{}, fmt.Errorf("unsubscribe: %w", err)
	}
	if err := s.Unsubscribe(ctx, sub.ID, c.List, cause); err != nil {
		return Subscriber{}, err
	}
	return s.Get(ctx, sub.ID)
}

// MarkBounced records a hard bounce: the subscriber becomes bounced and the
// address is suppressed. cause is kept in the history (e.g. the DSN status
// and diagnostic). Idempotent.
func (s *Store) MarkBounced(ctx context.Context, id int64, cause string) error {
	return s.markBad(ctx, id, Bounced, ReasonBounced, cause, false)
}

// MarkComplained records a complaint (ARF abuse report): the subscriber
// leaves every list, becomes complained and the address is suppressed.
// Idempotent.
func (s *Store) MarkComplained(ctx context.Context, id int64, cause string) error {
	return s.markBad(ctx, id, Complained, ReasonComplained, cause, true)
}

func (s *Store) markBad(ctx context.Context, id int64, to Status, reason Reason, cause string, leaveAll bool) error {
	err := s.inTx(ctx, func(tx Queries) error {
		sub, err := s.getByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !sub.ErasedAt.IsZero() {
			return nil
		}
		if leaveAll {
			if err := tx.LeaveAll(ctx, sub.ID, s.nowUTC()); err != nil {
				return err
			}
		}
		if allowed(sub.Status, to, false) {
			if err := s.setStatus(ctx, tx, sub, to, cause); err != nil {
				return err
			}
		}
		return s.suppress(ctx, tx, sub.Email, reason)
	})
	if err != nil {
		return fmt.Errorf("mark %s %d: %w", to, id, err)
	}
	s.log.InfoContext(ctx, "subscriber marked "+string(to), "subscriber_id", id)
	return nil
}

// Update changes a subscriber's name and/or preferences; nil fields are
// left alone.
type Update struct {
	Name  *string
	Prefs *audience.Prefs
}

// Update applies u to subscriber id and returns the result. Erased
// subscribers give ErrNotFound.
func (s *Store) Update(ctx context.Context, id int64, u Update) (Subscriber, error) {
	var problems []*FieldError
	if u.Name != nil {
		if p := checkName(*u.Name); p != nil {
			problems = append(problems, p)
		}
	}
	if u.Prefs != nil {
		problems = append(problems, checkPrefs(*u.Prefs)...)
	}
	if len(problems) > 0 {
		return Subscriber{}, fmt.Errorf("update subscriber %d: %w", id, &ValidationError{Problems: problems})
	}
	err := s.inTx(ctx, func(tx Queries) error {
		sub, err := s.getByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !sub.ErasedAt.IsZero() {
			return ErrNotFound
		}
		now := s.nowUTC()
		if u.Name != nil {
			if err := tx.SetName(ctx, id, strings.TrimSpace(*u.Name), now); err != nil {
				return err
			}
		}
		if u.Prefs != nil {
			if u.Prefs.Key() != sub.Prefs.Key() {
				notePrefs(tx, id)
			}
			return s.setPrefs(ctx, tx, id, *u.Prefs, now)
		}
		return nil
	})
	if err != nil {
		return Subscriber{}, fmt.Errorf("update subscriber %d: %w", id, err)
	}
	return s.Get(ctx, id)
}

func (s *Store) setPrefs(ctx context.Context, tx Queries, id int64, p audience.Prefs, now time.Time) error {
	regions, topics, custom := maskOf(p)
	return tx.SetPrefs(ctx, id, regions, topics, custom, now)
}

// Erase removes a subscriber's personal data (GDPR Art. 17): the address,
// name, preferences, tags, memberships and consent records go, status
// history causes are blanked, and a suppression entry (a keyed hash of the
// address) is kept so that no import or bulk add can bring the address
// back. The row stays as a tombstone so that old links still resolve.
// Idempotent.
func (s *Store) Erase(ctx context.Context, id int64, cause string) error {
	err := s.inTx(ctx, func(tx Queries) error {
		sub, err := s.getByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !sub.ErasedAt.IsZero() {
			return nil
		}
		if err := s.suppress(ctx, tx, sub.Email, ReasonErased); err != nil {
			return err
		}
		to := sub.Status
		if to == Pending || to == Active {
			to = Unsubscribed
		}
		if err := tx.EraseData(ctx, id, to, s.nowUTC()); err != nil {
			return err
		}
		if cause == "" {
			cause = "erasure request"
		}
		return s.history(ctx, tx, id, sub.Status, to, "", "erased: "+cause)
	})
	if err != nil {
		return fmt.Errorf("erase subscriber %d: %w", id, err)
	}
	s.log.InfoContext(ctx, "subscriber erased", "subscriber_id", id)
	return nil
}

// SetLegalHold sets or clears a legal hold, which keeps the subscriber's
// consent records from PurgeConsents.
func (s *Store) SetLegalHold(ctx context.Context, id int64, hold bool) error {
	found, err := s.st.SetLegalHold(ctx, id, hold, s.nowUTC())
	if err != nil {
		return fmt.Errorf("legal hold %d: %w", id, err)
	}
	if !found {
		return fmt.Errorf("legal hold %d: %w", id, ErrNotFound)
	}
	return nil
}

// PurgeConsents deletes the consent records of subscribers who stopped
// receiving mail (unsubscribed, bounced, complained) more than
// Options.ConsentRetention ago and are not under legal hold, and returns
// how many records went. Run it daily.
func (s *Store) PurgeConsents(ctx context.Context) (int64, error) {
	n, err := s.st.PurgeConsents(ctx, s.nowUTC().Add(-s.opts.ConsentRetention))
	if err != nil {
		return 0, fmt.Errorf("purge consents: %w", err)
	}
	return n, nil
}

// PurgePending deletes subscribers who signed up but never confirmed and
// were created more than olderThan ago (30 days is usual), with everything
// about them: someone who never consented should not stay on file. It
// returns how many went.
func (s *Store) PurgePending(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("purge pending: olderThan must be positive")
	}
	n, err := s.st.PurgePending(ctx, s.nowUTC().Add(-olderThan))
	if err != nil {
		return 0, fmt.Errorf("purge pending: %w", err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "unconfirmed subscribers purged", "count", n)
	}
	return n, nil
}

var listKeyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// CreateList creates a list with a short key (lower-case letters, digits,
// '-', at most 32) and a name. An existing key gives ErrExists.
func (s *Store) CreateList(ctx context.Context, key, name string) (List, error) {
	var problems []*FieldError
	if !listKeyRE.MatchString(key) {
		problems = append(problems, fieldErr("key", "want a-z, 0-9 and '-', at most 32"))
	}
	if p := checkName(name); p != nil {
		problems = append(problems, p)
	} else if strings.TrimSpace(name) == "" {
		problems = append(problems, fieldErr("name", "empty"))
	}
	if len(problems) > 0 {
		return List{}, fmt.Errorf("create list: %w", &ValidationError{Problems: problems})
	}
	if _, err := s.listID(ctx, s.st, key); err == nil {
		return List{}, fmt.Errorf("create list %q: %w", key, ErrExists)
	}
	now := s.nowUTC()
	id, err := s.st.InsertList(ctx, key, strings.TrimSpace(name), now)
	if err != nil {
		return List{}, fmt.Errorf("create list %q: %w", key, err)
	}
	return List{ID: id, Key: key, Name: strings.TrimSpace(name), CreatedAt: now}, nil
}

// HasList reports whether a list with this key exists, whether or not it
// has members.
func (s *Store) HasList(ctx context.Context, key string) (bool, error) {
	_, err := s.listID(ctx, s.st, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list %q: %w", key, err)
	}
	return true, nil
}

// Lists returns every list with its member counts, ordered by key.
func (s *Store) Lists(ctx context.Context) ([]List, error) {
	out, err := s.st.Lists(ctx)
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	return out, nil
}

// ListSkipsNothing reports whether list leaves out of a send the readers
// whose chosen sections all have nothing this month (false, the default:
// they get a short copy that says so). ErrNotFound for an unknown list.
func (s *Store) ListSkipsNothing(ctx context.Context, list string) (bool, error) {
	skip, err := s.st.ListSkipsNothing(ctx, list)
	if err != nil {
		return false, fmt.Errorf("list %q: %w", list, err)
	}
	return skip, nil
}

// SetListSkipsNothing sets list's ListSkipsNothing setting (ErrNotFound
// for an unknown list).
func (s *Store) SetListSkipsNothing(ctx context.Context, list string, skip bool) error {
	if err := s.st.SetListSkipsNothing(ctx, list, skip); err != nil {
		return fmt.Errorf("list %q: %w", list, err)
	}
	return nil
}

// ListCountsClicks reports whether list counts clicks on the item links
// of its sends, in aggregate and without naming readers (package clicks;
// false, the default). ErrNotFound for an unknown list.
func (s *Store) ListCountsClicks(ctx context.Context, list string) (bool, error) {
	on, err := s.st.ListCountsClicks(ctx, list)
	if err != nil {
		return false, fmt.Errorf("list %q: %w", list, err)
	}
	return on, nil
}

// SetListCountsClicks sets list's ListCountsClicks setting (ErrNotFound
// for an unknown list). It applies to sends created afterwards.
func (s *Store) SetListCountsClicks(ctx context.Context, list string, on bool) error {
	if err := s.st.SetListCountsClicks(ctx, list, on); err != nil {
		return fmt.Errorf("list %q: %w", list, err)
	}
	return nil
}
