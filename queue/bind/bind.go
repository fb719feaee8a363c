package bind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
)

// Directory is a subscribers.Store seen as a queue.Directory.
type Directory struct {
	Store *subscribers.Store
}

var _ queue.Directory = Directory{}

// Recipients returns up to limit active members of list after afterID.
func (d Directory) Recipients(ctx context.Context, list string, afterID int64, limit int) ([]queue.Recipient, error) {
	out := make([]queue.Recipient, 0, limit)
	for r, err := range d.Store.Recipients(ctx, subscribers.RecipientQuery{List: list, AfterID: afterID, BatchSize: limit}) {
		if err != nil {
			return nil, err
		}
		out = append(out, queue.Recipient{ID: r.ID, PublicID: r.PublicID, Email: r.Email, Name: r.Name, Prefs: r.Prefs, Active: true})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// Lookup returns the given subscribers that are active members of list
// now; the others are absent. One keyset range query covers the ids
// (a batch's ids are close together in id order), so it costs what
// streaming recipients costs rather than a lookup per id.
func (d Directory) Lookup(ctx context.Context, list string, ids []int64) ([]queue.Recipient, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	lo, hi := want[0], want[len(want)-1]
	out := make([]queue.Recipient, 0, len(want))
	q := subscribers.RecipientQuery{List: list, AfterID: lo - 1, UpToID: hi, BatchSize: min(int(hi-lo+1), subscribers.MaxBatchSize)}
	for r, err := range d.Store.Recipients(ctx, q) {
		if err != nil {
			return nil, err
		}
		if _, ok := slices.BinarySearch(want, r.ID); ok {
			out = append(out, queue.Recipient{ID: r.ID, PublicID: r.PublicID, Email: r.Email, Name: r.Name, Prefs: r.Prefs, Active: true})
		}
	}
	return out, nil
}

// SkipsNothing reports whether the list leaves out the readers whose
// chosen sections all have nothing this month (queue.ListSettings).
func (d Directory) SkipsNothing(ctx context.Context, list string) (bool, error) {
	return d.Store.ListSkipsNothing(ctx, list)
}

// HasList reports whether the list exists.
func (d Directory) HasList(ctx context.Context, list string) (bool, error) {
	return d.Store.HasList(ctx, list)
}

// MarkBounced records a hard bounce.
func (d Directory) MarkBounced(ctx context.Context, id int64, reason string) error {
	return d.Store.MarkBounced(ctx, id, reason)
}

var _ queue.ChangeFeed = Directory{}

// ChangeMark returns the position of the store's newest subscriber change.
func (d Directory) ChangeMark(ctx context.Context) (int64, error) { return d.Store.ChangeMark(ctx) }

// ChangedSince returns the subscribers changed after mark.
func (d Directory) ChangedSince(ctx context.Context, mark int64) ([]int64, int64, bool, error) {
	return d.Store.ChangedSince(ctx, mark)
}

// Renderer is a templates.Renderer seen as a queue.Renderer.
type Renderer struct {
	R *templates.Renderer
}

var _ queue.Renderer = Renderer{}

// Variant returns the selection key of issue for prefs, "" for nothing;
// the short copy of a reader whose chosen sections all have nothing this
// month has a key starting with queue.NothingVariantPrefix.
func (r Renderer) Variant(issue *compose.Issue, prefs audience.Prefs) string {
	sel, err := templates.Select(issue, prefs)
	if err != nil {
		return ""
	}
	if sel.OnlyNothing() {
		return queue.NothingVariantPrefix + strings.TrimPrefix(sel.Key(), templates.NothingKeyPrefix)
	}
	return sel.Key()
}

// Render renders (or finds in the renderer's cache) the variant for prefs.
func (r Renderer) Render(_ context.Context, issue *compose.Issue, prefs audience.Prefs) (queue.Rendered, error) {
	sel, err := templates.Select(issue, prefs)
	if err != nil {
		return nil, err
	}
	v, err := r.R.Render(issue, sel)
	if err != nil {
		return nil, err
	}
	return newVariant(v), nil
}

var _ queue.LinkRenderer = Renderer{}

// RenderLinks renders (or finds in the renderer's cache) the variant for
// prefs with its item links rewritten by url (counted clicks): once per
// variant and key, so a copy costs what it costs without counting.
func (r Renderer) RenderLinks(_ context.Context, issue *compose.Issue, prefs audience.Prefs, key string, url func(item, link int) string) (queue.Rendered, error) {
	sel, err := templates.Select(issue, prefs)
	if err != nil {
		return nil, err
	}
	v, err := r.R.RenderLinks(issue, sel, &templates.Links{Key: key, URL: url})
	if err != nil {
		return nil, err
	}
	return newVariant(v), nil
}

func newVariant(v *templates.Variant) variant {
	out := variant{v: v}
	// The fixed text of both parts, laid out once for every reader of the
	// variant. Rendered text is valid UTF-8, so this does not fail; if it
	// did, copies would be built whole and the builder would say why.
	if tl, err := mailer.NewLayout(v.TextFixed()...); err == nil {
		if hl, err := mailer.NewLayout(v.HTMLFixed()...); err == nil {
			out.text, out.html = tl, hl
		}
	}
	return out
}

type variant struct {
	v          *templates.Variant
	text, html *mailer.Layout // nil: build copies from whole text
}

func (v variant) AppendPersonalized(text, html []byte, p queue.Personal) ([]byte, []byte, error) {
	tp := personal(p)
	if err := tp.Check(); err != nil {
		return text, html, err
	}
	return v.v.AppendText(text, tp), v.v.AppendHTML(html, tp), nil
}

func personal(p queue.Personal) templates.Personal {
	return templates.Personal{Name: p.Name, UnsubscribeURL: p.UnsubscribeURL, PreferencesURL: p.PreferencesURL}
}

// Sender builds queue messages with a mailer.Builder and sends them over
// a mailer.Pool.
type Sender struct {
	Builder *mailer.Builder
	Pool    *mailer.Pool
	// EnvelopeFrom is MAIL FROM (the bounce address); default the From address.
	EnvelopeFrom string
	// Tagger, when set, names each newsletter copy for bounce and complaint
	// correlation: MAIL FROM is its VERP return path
	// (b+TOKEN@bounce.<domain>, instead of EnvelopeFrom) and its Message-ID
	// carries the same sealed token. Test copies (no subscriber) keep
	// EnvelopeFrom and get a random Message-ID.
	Tagger *feedback.Tagger
	// NoVERP keeps EnvelopeFrom as MAIL FROM even with a Tagger (only the
	// Message-ID is tagged): for a relay that sets its own return path.
	NoVERP bool
	// Bulk adds "Precedence: bulk" to copies with a List-Id (newsletter
	// and test copies; not confirmation mail).
	Bulk bool

	from atomic.Pointer[parsedFrom] // the last From parsed: it is the same for every copy
	bufs sync.Pool                  // *sendBuffers, reused once a message is sent
}

type parsedFrom struct {
	s string
	a mailer.Address
}

// sendBuffers are one message's working memory: the raw message and the
// personal values of its two parts.
type sendBuffers struct {
	raw        []byte
	text, html slotValues
	tb, hb     mailer.Body
}

// slotValues holds the values of a Layout's slots in one buffer.
type slotValues struct {
	b    []byte
	ends []int
	vals [][]byte
}

func (sv *slotValues) fill(n int, slot func([]byte, int, templates.Personal) []byte, p templates.Personal) [][]byte {
	sv.b, sv.ends, sv.vals = sv.b[:0], sv.ends[:0], sv.vals[:0]
	for i := range n {
		sv.b = slot(sv.b, i, p)
		sv.ends = append(sv.ends, len(sv.b))
	}
	start := 0
	for _, e := range sv.ends {
		sv.vals = append(sv.vals, sv.b[start:e:e])
		start = e
	}
	return sv.vals
}

var _ queue.StreamSender = (*Sender)(nil)

// Send builds m and sends it; the reply is the relay's text.
func (s *Sender) Send(ctx context.Context, m *queue.Message) (string, error) {
	sb := s.buffers()
	defer s.release(sb)
	built, env, err := s.build(m, sb)
	if err != nil {
		return "", err
	}
	reply, err := s.Pool.Send(ctx, env, m.To, built.Raw)
	if err != nil {
		return "", err
	}
	return reply.String(), nil
}

var _ queue.Builder = (*Sender)(nil)

// Build builds m exactly as Send would and returns the bytes, without
// sending them (the console's preview shows their size).
func (s *Sender) Build(m *queue.Message) ([]byte, error) {
	sb := s.buffers()
	defer s.release(sb)
	built, _, err := s.build(m, sb)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(built.Raw), nil
}

// Stream returns a queue.Stream that sends on one pooled connection,
// several copies per round trip where the relay allows (mailer.Conn.Start).
func (s *Sender) Stream() queue.Stream { return &stream{s: s} }

type stream struct {
	s    *Sender
	conn *mailer.Conn
}

func (st *stream) Send(ctx context.Context, m *queue.Message, done func(string, error)) {
	sb := st.s.buffers()
	defer st.s.release(sb) // Start has written the bytes when it returns
	built, env, err := st.s.build(m, sb)
	if err != nil {
		done("", err)
		return
	}
	if st.conn == nil {
		if st.conn, err = st.s.Pool.Get(ctx); err != nil {
			done("", err)
			return
		}
	}
	st.conn.StartBuilt(ctx, env, m.To, built, func(r mailer.Reply, err error) {
		if err != nil {
			done("", err)
			return
		}
		done(r.String(), nil)
	})
}

func (st *stream) Close(ctx context.Context) {
	if st.conn != nil {
		st.conn.Wait(ctx)
		st.s.Pool.Put(st.conn)
		st.conn = nil
	}
}

func (s *Sender) buffers() *sendBuffers {
	if sb, _ := s.bufs.Get().(*sendBuffers); sb != nil {
		return sb
	}
	return new(sendBuffers)
}

// release takes back sb once its message is written (huge buffers are left
// to the collector).
func (s *Sender) release(sb *sendBuffers) {
	if cap(sb.raw) <= 1<<20 {
		sb.raw = sb.raw[:0]
		sb.tb, sb.hb = mailer.Body{}, mailer.Body{}
		s.bufs.Put(sb)
	}
}

// build turns m into a message in sb's buffer and returns it with the
// envelope sender.
func (s *Sender) build(m *queue.Message, sb *sendBuffers) (built mailer.Built, envelopeFrom string, err error) {
	var from mailer.Address
	if pf := s.from.Load(); pf != nil && pf.s == m.From {
		from = pf.a
	} else {
		a, err := address(m.From)
		if err != nil {
			return mailer.Built{}, "", fmt.Errorf("from: %w: %w", err, mailer.ErrInvalidMessage)
		}
		s.from.Store(&parsedFrom{s: m.From, a: a})
		from = a
	}
	msg := &mailer.Message{
		From:    from,
		To:      mailer.Address{Name: m.ToName, Email: m.To},
		Subject: m.Subject,
		ListID:  m.ListID, ListName: m.ListName,
		UnsubscribeURL: m.ListUnsubscribe, UnsubscribeMailto: m.ListUnsubscribeMailto,
		AnnounceOnly: m.ListID != "",
		Bulk:         s.Bulk && m.ListID != "",
		FeedbackID:   m.FeedbackID,
	}
	envelopeFrom = s.EnvelopeFrom
	if envelopeFrom == "" {
		envelopeFrom = from.Email
	}
	if s.Tagger != nil && m.SubscriberID != 0 {
		ref := feedback.Ref{SendID: m.SendID, SubscriberID: m.SubscriberID}
		msg.MessageID = s.Tagger.MessageID(ref)
		if !s.NoVERP {
			envelopeFrom = s.Tagger.ReturnPath(ref)
		}
	}
	if m.ReplyTo != "" {
		if msg.ReplyTo, err = address(m.ReplyTo); err != nil {
			return mailer.Built{}, "", fmt.Errorf("reply-to: %w: %w", err, mailer.ErrInvalidMessage)
		}
	}
	if v, ok := m.Body.(variant); ok && v.text != nil {
		// The variant's fixed text is laid out once; a copy adds its
		// values (greeting, links).
		p := personal(m.Personal)
		if err := p.Check(); err != nil {
			return mailer.Built{}, "", err
		}
		sb.tb = mailer.Body{Layout: v.text, Values: sb.text.fill(v.text.Slots(), v.v.AppendTextSlot, p)}
		sb.hb = mailer.Body{Layout: v.html, Values: sb.html.fill(v.html.Slots(), v.v.AppendHTMLSlot, p)}
		msg.TextBody, msg.HTMLBody = &sb.tb, &sb.hb
	} else {
		text, html, err := m.AppendBodies(nil, nil)
		if err != nil {
			return mailer.Built{}, "", err
		}
		msg.Text, msg.HTML = string(text), string(html)
	}
	if built, err = s.Builder.AppendBuild(sb.raw, msg); err != nil {
		return mailer.Built{}, "", err
	}
	sb.raw = built.Raw
	return built, envelopeFrom, nil
}

func address(s string) (mailer.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return mailer.Address{}, err
	}
	return mailer.Address{Name: a.Name, Email: a.Address}, nil
}

// Classify maps a mailer error to a queue.ErrorClass. A relay that could
// not be reached (mailer.ErrRelayUnavailable: a failed dial, a 4xx at
// connection time, the relay's circuit breaker open) is Unavailable: no
// fault of the reader's, and no attempt counted.
func Classify(err error) queue.ErrorClass {
	switch {
	case errors.Is(err, mailer.ErrRelayUnavailable):
		return queue.Unavailable
	case mailer.IsPolicy(err):
		return queue.Policy
	case mailer.IsBadMailbox(err):
		return queue.BadMailbox
	case mailer.IsPermanent(err), errors.Is(err, mailer.ErrInvalidMessage),
		errors.Is(err, templates.ErrInvalidPersonal):
		return queue.Permanent
	}
	return queue.Temporary
}

// RelayState turns the mailer's report of the relay's circuit breaker
// into the queue's record of it (queue.Service.SetRelayState).
func RelayState(st mailer.RelayState) queue.RelayState {
	return queue.RelayState{Relay: st.Relay, Down: !st.Up, Since: st.Since, Kind: st.Kind, Cause: st.Cause, Retry: st.Retry}
}
