package bind

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
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

// MarkBounced records a hard bounce.
func (d Directory) MarkBounced(ctx context.Context, id int64, reason string) error {
	return d.Store.MarkBounced(ctx, id, reason)
}

// Renderer is a templates.Renderer seen as a queue.Renderer.
type Renderer struct {
	R *templates.Renderer
}

var _ queue.Renderer = Renderer{}

// Variant returns the selection key of issue for prefs, "" for nothing.
func (r Renderer) Variant(issue *compose.Issue, prefs audience.Prefs) string {
	sel, err := templates.Select(issue, prefs)
	if err != nil {
		return ""
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
	return variant{v}, nil
}

type variant struct{ v *templates.Variant }

func (v variant) AppendPersonalized(text, html []byte, p queue.Personal) ([]byte, []byte, error) {
	tp := templates.Personal{Name: p.Name, UnsubscribeURL: p.UnsubscribeURL, PreferencesURL: p.PreferencesURL}
	if err := tp.Check(); err != nil {
		return text, html, err
	}
	return v.v.AppendText(text, tp), v.v.AppendHTML(html, tp), nil
}

// Sender builds queue messages with a mailer.Builder and sends them over
// a mailer.Pool.
type Sender struct {
	Builder *mailer.Builder
	Pool    *mailer.Pool
	// EnvelopeFrom is MAIL FROM (the bounce address); default the From address.
	EnvelopeFrom string

	from atomic.Pointer[parsedFrom] // the last From parsed: it is the same for every copy
	raws sync.Pool                  // *[]byte: message buffers, reused once sent
}

type parsedFrom struct {
	s string
	a mailer.Address
}

var _ queue.Sender = (*Sender)(nil)

// Send builds m and sends it; the reply is the relay's text.
func (s *Sender) Send(ctx context.Context, m *queue.Message) (string, error) {
	var from mailer.Address
	if pf := s.from.Load(); pf != nil && pf.s == m.From {
		from = pf.a
	} else {
		a, err := address(m.From)
		if err != nil {
			return "", fmt.Errorf("from: %w: %w", err, mailer.ErrInvalidMessage)
		}
		s.from.Store(&parsedFrom{s: m.From, a: a})
		from = a
	}
	var err error
	msg := &mailer.Message{
		From:    from,
		To:      mailer.Address{Name: m.ToName, Email: m.To},
		Subject: m.Subject,
		ListID:  m.ListID, ListName: m.ListName,
		UnsubscribeURL: m.ListUnsubscribe, UnsubscribeMailto: m.ListUnsubscribeMailto,
		AnnounceOnly: m.ListID != "",
		FeedbackID:   m.FeedbackID,
		Text:         string(m.Text), HTML: string(m.HTML),
	}
	if m.ReplyTo != "" {
		if msg.ReplyTo, err = address(m.ReplyTo); err != nil {
			return "", fmt.Errorf("reply-to: %w: %w", err, mailer.ErrInvalidMessage)
		}
	}
	bp, _ := s.raws.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	built, err := s.Builder.AppendBuild(*bp, msg)
	if err != nil {
		s.raws.Put(bp)
		return "", err
	}
	defer func() {
		// Pool.Send has written the bytes: the buffer can take the next
		// message (huge ones are left to the collector).
		if cap(built.Raw) <= 1<<20 {
			*bp = built.Raw[:0]
			s.raws.Put(bp)
		}
	}()
	env := s.EnvelopeFrom
	if env == "" {
		env = from.Email
	}
	reply, err := s.Pool.Send(ctx, env, m.To, built.Raw)
	if err != nil {
		return "", err
	}
	return reply.String(), nil
}

func address(s string) (mailer.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return mailer.Address{}, err
	}
	return mailer.Address{Name: a.Name, Email: a.Address}, nil
}

// Classify maps a mailer error to a queue.ErrorClass.
func Classify(err error) queue.ErrorClass {
	switch {
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
