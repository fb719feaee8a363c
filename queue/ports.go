package queue

import (
	"context"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// Recipient is a subscriber of a list as the queue needs it.
type Recipient struct {
	ID       int64
	PublicID string // names the subscriber in tokens; never the integer id
	Email    string
	Name     string
	Prefs    audience.Prefs
	// Active is false for anyone who must not receive the list now:
	// unsubscribed, bounced, complained or still pending confirmation.
	Active bool
}

// Directory is the subscriber store as the queue sees it.
type Directory interface {
	// Recipients returns up to limit active recipients of list whose id is
	// greater than afterID, in ascending id order (keyset pagination).
	Recipients(ctx context.Context, list string, afterID int64, limit int) ([]Recipient, error)
	// Lookup returns the current state of the given subscribers of list.
	// Subscribers who are not active members of the list now may be
	// absent or present with Active false.
	Lookup(ctx context.Context, list string, ids []int64) ([]Recipient, error)
	// MarkBounced records a hard bounce (5.1.x) so that no further mail goes
	// to the subscriber.
	MarkBounced(ctx context.Context, subscriberID int64, reason string) error
	// HasList reports whether a list with this key exists (members or
	// not). Create refuses a send to a list that does not.
	HasList(ctx context.Context, list string) (bool, error)
}

// ChangeFeed is what a Directory may also offer: the subscribers whose
// status, lists, preferences, address or name changed, so that a running
// batch re-reads only those, every quarter of a second, and an
// unsubscribe or a preference change takes effect for every copy not yet
// handed to the relay.
type ChangeFeed interface {
	// ChangeMark returns the position of the newest change.
	ChangeMark(ctx context.Context) (int64, error)
	// ChangedSince returns the subscribers changed after mark (each once)
	// and the mark to pass next. complete is false when the changes since
	// mark are no longer all known: the caller re-reads everyone.
	ChangedSince(ctx context.Context, mark int64) (ids []int64, next int64, complete bool, err error)
}

// ListSettings is what a Directory may also offer: a list's settings.
type ListSettings interface {
	// SkipsNothing reports whether a send to list leaves out the readers
	// whose chosen sections all have nothing this month (their variant
	// key starts with NothingVariantPrefix). False, the default, sends
	// them the short copy that says so.
	SkipsNothing(ctx context.Context, list string) (bool, error)
}

// Clicks counts clicks on the item links of sends in aggregate, without
// naming readers (package clicks; Deps.Clicks, optional).
type Clicks interface {
	// Prepare is called by Create once a send is recorded, before any
	// copy can go: if the list counts clicks, it records the send's
	// links and reports true. The choice holds for the whole send.
	Prepare(ctx context.Context, sendID int64, list string, issue *compose.Issue) (bool, error)
	// LinkURLs returns the counting address of each item link of a send
	// by the item's index in the issue (counting through the sections)
	// and the link's index in the item; nil when the send does not count
	// clicks. The addresses are the same in every reader's copy.
	LinkURLs(ctx context.Context, sendID int64) (func(item, link int) string, error)
}

// LinkRenderer is a Renderer that can also render a variant with its item
// links rewritten (Deps.Clicks needs one): key names the rewriting, and
// url gives each link's address ("" keeps it).
type LinkRenderer interface {
	RenderLinks(ctx context.Context, issue *compose.Issue, prefs audience.Prefs, key string, url func(item, link int) string) (Rendered, error)
}

// NothingVariantPrefix starts the variant key (Renderer.Variant) of a
// reader whose chosen sections all have nothing this month ("該当なし"):
// their copy is a short one that says so, with the issue's link.
const NothingVariantPrefix = "empty:"

// Tokens mints the signed, opaque tokens that go into a reader's links
// (*subscribers.Store implements it).
type Tokens interface {
	// UnsubscribeToken returns the one-click unsubscribe token of the
	// subscriber with publicID on list.
	UnsubscribeToken(publicID, list string) (string, error)
	// PreferencesToken returns the preference-centre token of the
	// subscriber with publicID on list.
	PreferencesToken(publicID, list string) (string, error)
}

// Personal is what differs between two readers of the same variant.
type Personal struct {
	Name           string
	UnsubscribeURL string
	PreferencesURL string
}

// Rendered is one variant of an issue, rendered once and personalised per
// reader. Implementations must be safe for concurrent use.
type Rendered interface {
	// AppendPersonalized appends one reader's plain-text and HTML bodies to
	// text and html and returns the extended buffers. Test sends use it,
	// and Senders that cannot build from the Rendered directly (see
	// [Message.Body]).
	AppendPersonalized(text, html []byte, p Personal) ([]byte, []byte, error)
}

// Renderer selects and renders the variants of an issue.
type Renderer interface {
	// Variant returns the key of the variant of issue for prefs; equal keys
	// render equal content. It returns "" when no section is for the
	// reader, and a key starting with NothingVariantPrefix when every
	// section for the reader has nothing this month.
	Variant(issue *compose.Issue, prefs audience.Prefs) string
	// Render renders the variant of issue for prefs.
	Render(ctx context.Context, issue *compose.Issue, prefs audience.Prefs) (Rendered, error)
}

// Message is one copy to send. Newsletter messages carry the list headers;
// transactional messages (test sends, confirmations) leave them empty.
type Message struct {
	From    string // display name and address, e.g. "AI政策動向 <news@example.jp>"
	ReplyTo string
	To      string // address
	ToName  string
	Subject string
	// The sender generates Date (at send time) and a Message-ID unique per copy.

	// SendID and SubscriberID name a newsletter copy (zero for a test copy):
	// a Sender that tags copies for bounce and complaint correlation
	// (VERP return path, Message-ID) writes them there, sealed.
	SendID       int64 `json:"send_id,omitempty"`
	SubscriberID int64 `json:"subscriber_id,omitempty"`

	ListID                string // "label.domain" without brackets (RFC 2919), newsletter only
	ListName              string // optional phrase of List-Id, e.g. the newsletter's name
	ListUnsubscribe       string // https one-click URL, newsletter only
	ListUnsubscribeMailto string // "mailto:…", optional
	FeedbackID            string // "a:b:c:SenderID", newsletter only

	Text []byte
	HTML []byte

	// Body, for a newsletter copy, stands in for Text and HTML: the
	// reader's copy is Body personalised with Personal. A Sender that
	// knows the Rendered's type (it came from the same Renderer adapter)
	// can then prepare the variant's fixed text once for all its readers;
	// any other calls [Message.AppendBodies]. Neither is sent to Redis.
	Body     Rendered `json:"-"`
	Personal Personal `json:"-"`
}

// AppendBodies appends m's plain-text and HTML bodies to text and html:
// Text and HTML, or Body personalised for Personal.
func (m *Message) AppendBodies(text, html []byte) ([]byte, []byte, error) {
	if m.Body != nil {
		return m.Body.AppendPersonalized(text, html, m.Personal)
	}
	return append(text, m.Text...), append(html, m.HTML...), nil
}

// Stream sends a run of copies on one connection, writing a copy before
// the earlier ones are answered where the relay allows it (PIPELINING and
// CHUNKING). done is called exactly once per Send, on the caller's
// goroutine, during that Send, a later one or Close, with what
// Sender.Send would have returned. A Stream is used by one goroutine.
type Stream interface {
	Send(ctx context.Context, m *Message, done func(reply string, err error))
	// Close waits for the outstanding replies and releases the connection.
	Close(ctx context.Context)
}

// StreamSender is a Sender that also offers Streams; the batch worker
// sends each batch through one when its Sender does.
type StreamSender interface {
	Sender
	Stream() Stream
}

// Builder is a Sender that can also build a copy without sending it: the
// bytes the relay would get. The console's preview uses it for the size of
// a copy; without it the preview has no size.
type Builder interface {
	Build(m *Message) ([]byte, error)
}

// Sender sends one message over a pooled SMTP connection and returns the
// relay's reply to the end of DATA. Implementations must be safe for
// concurrent use; the queue's rate limiter and connection semaphore are
// plugged into the implementation by the caller (see [Limiter.Wait] and
// [Semaphore.Acquire]).
type Sender interface {
	Send(ctx context.Context, m *Message) (reply string, err error)
}

// ErrorClass says what an SMTP failure means for the delivery.
type ErrorClass int

// Error classes, from the relay's reply code and enhanced status code.
const (
	// Temporary: 4xx replies and network errors; retried with backoff.
	Temporary ErrorClass = iota
	// Permanent: 5xx replies other than the two below; recorded, not retried.
	Permanent
	// BadMailbox: 5.1.x; recorded and the subscriber marked bounced.
	BadMailbox
	// Policy: 5.7.x (policy or authentication); recorded, the subscriber is
	// left alone and the whole send is paused for the editor.
	Policy
	// Unavailable: the relay could not be reached at all (connection
	// refused, no greeting, its circuit breaker open), so nothing was
	// sent. The copy is left open without an attempt counted, and the
	// batch stops and runs again after Config.RelayRetry: the send slows
	// down while the relay is down and goes on by itself when it is back.
	Unavailable
)

// String returns the class name used in logs.
func (c ErrorClass) String() string {
	switch c {
	case Temporary:
		return "temporary"
	case Permanent:
		return "permanent"
	case BadMailbox:
		return "bad_mailbox"
	case Policy:
		return "policy"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}
