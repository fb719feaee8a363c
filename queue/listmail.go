package queue

import (
	"context"
	"fmt"
	"strings"
)

// ListMessage is a mail to one reader of a list that is not an issue: the
// welcome mail. It goes out on the transactional queue with the same list
// headers as an issue's copy (List-Id, List-Unsubscribe with
// List-Unsubscribe-Post, Feedback-ID, a Message-ID of its own) and the
// same bounce and complaint tagging.
type ListMessage struct {
	List         string // list key
	Kind         string // what it is, for Feedback-ID ("welcome")
	SubscriberID int64
	To, ToName   string
	Subject      string
	Text, HTML   []byte
	// UnsubscribeURL is the reader's one-click URL (List-Unsubscribe).
	UnsubscribeURL string
	// Key de-duplicates, as TransactionalMessage.Key.
	Key string
}

// EnqueueListMessage queues m and returns its task id.
func (s *Service) EnqueueListMessage(ctx context.Context, m ListMessage) (string, error) {
	if m.List == "" || m.SubscriberID == 0 || m.UnsubscribeURL == "" {
		return "", fmt.Errorf("%w: a list message needs its list, reader and unsubscribe URL", ErrInvalid)
	}
	clean := func(v string) string { return strings.Trim(listIDUnsafe.ReplaceAllString(v, "-"), "-") }
	return s.EnqueueMessage(ctx, TransactionalMessage{
		To: m.To, ToName: m.ToName, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Key: m.Key,
		ListUnsubscribe: m.UnsubscribeURL, ListID: s.listID(m.List),
		FeedbackID:   clean(m.Kind) + ":" + clean(m.List) + ":list:" + s.cfg.FeedbackID,
		SubscriberID: m.SubscriberID, List: m.List,
	})
}

// listMailGone reports whether m is a list mail whose reader is no longer
// an active member of its list: nothing is sent, and that is a success.
func (s *Service) listMailGone(ctx context.Context, m TransactionalMessage) (bool, error) {
	if m.SubscriberID == 0 || m.List == "" {
		return false, nil
	}
	rs, err := s.deps.Directory.Lookup(ctx, m.List, []int64{m.SubscriberID})
	if err != nil {
		return false, fmt.Errorf("list message: look up reader %d: %w", m.SubscriberID, err)
	}
	for _, r := range rs {
		if r.ID == m.SubscriberID && r.Active {
			return false, nil
		}
	}
	s.log.InfoContext(ctx, "list message not sent: the reader left the list", "subscriber_id", m.SubscriberID, "list", m.List)
	return true, nil
}
