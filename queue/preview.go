package queue

import (
	"context"
	"fmt"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// PreviewReader names the reader whose copy PreviewCopy builds: a
// subscriber of the list (SubscriberID), who gets the copy the worker
// would send them, links and all; or, with SubscriberID zero, a reader
// with Prefs and Name, whose links go to BaseURL/u/preview and
// BaseURL/p/preview.
type PreviewReader struct {
	SubscriberID int64
	Prefs        audience.Prefs
	Name         string
}

// Copy is one reader's copy of an issue as the worker builds it.
type Copy struct {
	Variant string         // the variant's key
	Prefs   audience.Prefs // the reader's preferences
	Email   string         // the subscriber's address; "" for a reader by preferences
	Subject string
	Text    []byte
	HTML    []byte
	// Raw is the whole message as the Sender builds it for the relay
	// (headers, both parts, the DKIM signature); nil when the Sender is
	// not a Builder. Its Date and Message-ID differ from copy to copy.
	Raw []byte
}

// PreviewCopy builds the copy of issue that reader would get from a send
// to list, through the same renderer, personalisation and message builder
// as the worker. A reader who wants none of the issue's items gets the
// renderer's nothing-to-send error (templates.ErrNothingToSend); a
// subscriber who is not an active reader of list is ErrNotFound.
func (s *Service) PreviewCopy(ctx context.Context, issue *compose.Issue, list string, reader PreviewReader) (*Copy, error) {
	if issue == nil || list == "" {
		return nil, fmt.Errorf("%w: issue and list are required", ErrInvalid)
	}
	// A reader by preferences gets an example address of a common length,
	// for the size of the copy.
	r := Recipient{Prefs: reader.Prefs, Name: reader.Name, Email: "yamada.taro@example.jp"}
	if reader.SubscriberID != 0 {
		rs, err := s.deps.Directory.Lookup(ctx, list, []int64{reader.SubscriberID})
		if err != nil {
			return nil, fmt.Errorf("queue: preview: %w", err)
		}
		if len(rs) != 1 || !rs[0].Active || rs[0].ID != reader.SubscriberID {
			return nil, fmt.Errorf("queue: preview: subscriber %d is not an active reader of %q: %w", reader.SubscriberID, list, ErrNotFound)
		}
		r = rs[0]
	}
	rendered, err := s.deps.Renderer.Render(ctx, issue, r.Prefs)
	if err != nil {
		return nil, fmt.Errorf("queue: preview: %w", err)
	}
	sc := &sendCache{snd: &Send{Issue: issue, List: list}, listID: s.listID(list), feedbackID: s.feedbackID(issue, list)}
	var m *Message
	if r.ID != 0 {
		m, err = s.newsletterMessage(sc, &r, rendered)
		if err != nil {
			return nil, fmt.Errorf("queue: preview: %w", err)
		}
	} else {
		m = s.copyMessage(sc, &r, rendered, s.cfg.BaseURL+"/u/preview", s.cfg.BaseURL+"/p/preview", "")
	}
	out := &Copy{Variant: s.deps.Renderer.Variant(issue, r.Prefs), Prefs: r.Prefs, Subject: m.Subject}
	if r.ID != 0 {
		out.Email = r.Email
	}
	if out.Text, out.HTML, err = m.AppendBodies(nil, nil); err != nil {
		return nil, fmt.Errorf("queue: preview: %w", err)
	}
	if b, ok := s.deps.Sender.(Builder); ok {
		if out.Raw, err = b.Build(m); err != nil {
			return nil, fmt.Errorf("queue: preview: %w", err)
		}
	}
	return out, nil
}
