package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ListMessage is a mail to one reader of a list that is not an issue: the
// welcome mail. It goes out on the transactional queue with the same list
// headers as an issue's copy (List-Id, List-Unsubscribe with
// List-Unsubscribe-Post, Feedback-ID, a Message-ID of its own) and the
// same bounce and complaint tagging.
//
// A list mail with a Key is durable: EnqueueListMessage records it in the
// ledger's outbox (ListMailOutbox) before it queues the task, the worker
// marks it sent once the relay accepted it (and does not send a mail
// already marked sent again), and every worker's reconciler queues again,
// under the same task id, a pending one whose task Redis lost. So a lost
// task still sends the mail, once.
type ListMessage struct {
	List         string // list key
	Kind         string // what it is, for Feedback-ID ("welcome")
	SubscriberID int64
	To, ToName   string
	Subject      string
	Text, HTML   []byte
	// UnsubscribeURL is the reader's one-click URL (List-Unsubscribe).
	UnsubscribeURL string
	// Key de-duplicates, as TransactionalMessage.Key, and makes the mail
	// durable: a second mail with a key the outbox has kept (for
	// Config.Retention after the first was sent) is ErrDuplicate.
	Key string
}

// List mail states in the outbox.
const (
	ListMailPending = "pending" // recorded; its task queued or to be queued again
	ListMailSent    = "sent"    // the relay accepted it, or the reader had left the list
	ListMailFailed  = "failed"  // refused for good, or out of attempts
)

// ListMailRow is a list mail in the outbox.
type ListMailRow struct {
	Key          string
	SubscriberID int64
	List         string
	// Payload is the task's JSON (a TransactionalMessage); nil once the
	// row is final.
	Payload []byte
	At      time.Time
}

// ListMailOutbox is the ledger's outbox of list mails.
type ListMailOutbox interface {
	// AddListMail records r, pending, and reports whether it did: false if
	// r.Key is recorded already (nothing is written).
	AddListMail(ctx context.Context, r ListMailRow) (bool, error)
	// ListMailState returns the state of the list mail under key; ok is
	// false if there is none.
	ListMailState(ctx context.Context, key string) (state string, ok bool, err error)
	// SetListMailState records a pending list mail's final state
	// (ListMailSent or ListMailFailed) and drops its payload.
	SetListMailState(ctx context.Context, key, state string, now time.Time) error
	// PendingListMail lists, by key after after, up to limit pending list
	// mails recorded or changed before before, with their payloads.
	PendingListMail(ctx context.Context, before time.Time, after string, limit int) ([]ListMailRow, error)
	// TrimListMail deletes the final list mails changed before before.
	TrimListMail(ctx context.Context, before time.Time) (int64, error)
}

// EnqueueListMessage queues m and returns its task id. With a Key, m is
// first recorded in the outbox: from then on it will be sent, so a failure
// to reach Redis is logged, not returned (the reconciler queues it), and
// the task id is returned all the same.
func (s *Service) EnqueueListMessage(ctx context.Context, m ListMessage) (string, error) {
	if m.List == "" || m.SubscriberID == 0 || m.UnsubscribeURL == "" {
		return "", fmt.Errorf("%w: a list message needs its list, reader and unsubscribe URL", ErrInvalid)
	}
	clean := func(v string) string { return strings.Trim(listIDUnsafe.ReplaceAllString(v, "-"), "-") }
	tm := TransactionalMessage{
		To: m.To, ToName: m.ToName, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Key: m.Key,
		ListUnsubscribe: m.UnsubscribeURL, ListID: s.listID(m.List),
		FeedbackID:   clean(m.Kind) + ":" + clean(m.List) + ":list:" + s.cfg.FeedbackID,
		SubscriberID: m.SubscriberID, List: m.List, Kind: MailKind(m.Kind),
	}
	if m.Key == "" {
		return s.EnqueueMessage(ctx, tm)
	}
	t, err := NewMessageTask(tm) // checks the address before anything is recorded
	if err != nil {
		return "", err
	}
	added, err := s.ledger.AddListMail(ctx, ListMailRow{Key: m.Key, SubscriberID: m.SubscriberID, List: m.List,
		Payload: t.Payload(), At: s.cfg.Now()})
	if err != nil {
		return "", fmt.Errorf("queue: record list message %q: %w", m.Key, err)
	}
	if !added {
		return "", fmt.Errorf("message %q: %w", m.Key, ErrDuplicate)
	}
	id, err := s.EnqueueMessage(ctx, tm)
	if errors.Is(err, ErrDuplicate) {
		return "message:" + m.Key, nil // a task of a trimmed row, still retained: it checks the outbox
	}
	if err != nil {
		s.log.WarnContext(ctx, "list message recorded, not queued yet: a worker will queue it",
			"subscriber_id", m.SubscriberID, "list", m.List, "err", err)
		return "message:" + m.Key, nil
	}
	return id, nil
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

// handleMessageTask runs handleMessage with the outbox around a list
// mail's task: a mail the outbox holds as sent or failed is not sent
// again (a task re-created after Redis lost the first), and the outcome is
// recorded once the relay answered.
func (s *Service) handleMessageTask(ctx context.Context, t *asynq.Task) error {
	var m TransactionalMessage
	if err := json.Unmarshal(t.Payload(), &m); err != nil || m.Key == "" || m.List == "" || m.SubscriberID == 0 {
		return s.handleMessage(ctx, t)
	}
	state, ok, err := s.ledger.ListMailState(ctx, m.Key)
	if err != nil {
		return fmt.Errorf("list message %q: %w", m.Key, err)
	}
	if !ok {
		return s.handleMessage(ctx, t) // queued before the outbox, or trimmed from it
	}
	if state != ListMailPending {
		s.log.InfoContext(ctx, "list message already "+state+": not sent again", "subscriber_id", m.SubscriberID, "list", m.List)
		return nil
	}
	err = s.handleMessage(ctx, t)
	final := ListMailSent
	if err != nil {
		retry, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if !errors.Is(err, asynq.SkipRetry) && retry < maxRetry {
			return err // asynq tries again
		}
		final = ListMailFailed
	}
	if serr := s.ledger.SetListMailState(context.WithoutCancel(ctx), m.Key, final, s.cfg.Now()); serr != nil {
		// Not returned: a retry would send the mail again. The row stays
		// pending, its task retained: the reconciler leaves it alone.
		s.log.WarnContext(ctx, "list message "+final+", not recorded", "subscriber_id", m.SubscriberID, "list", m.List, "err", serr)
	}
	return err
}

// ReconcileListMail queues again, under their task ids, the pending list
// mails recorded more than Config.ReconcileInterval ago (EnqueueListMessage
// queues a new one itself) whose task Redis lost, trims the final ones
// older than Config.Retention, and returns how many it queued.
func (s *Service) ReconcileListMail(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	if _, err := s.ledger.TrimListMail(ctx, now.Add(-s.cfg.Retention)); err != nil {
		return 0, fmt.Errorf("queue: trim list messages: %w", err)
	}
	var client *asynq.Client // its own: see Requeue
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	n, after := 0, ""
	for {
		rows, err := s.ledger.PendingListMail(ctx, now.Add(-s.cfg.ReconcileInterval), after, 200)
		if err != nil || len(rows) == 0 {
			if n > 0 {
				s.log.WarnContext(ctx, "list messages missing from Redis queued again", "messages", n)
			}
			return n, err
		}
		after = rows[len(rows)-1].Key
		cmds := make([]*redis.IntCmd, len(rows))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range rows {
				cmds[i] = p.Exists(ctx, taskKey(QueueTransactional, "message:"+r.Key))
			}
			return nil
		}); err != nil {
			return n, fmt.Errorf("queue: look for list message tasks in Redis: %w", err)
		}
		for i, r := range rows {
			if cmds[i].Val() > 0 || len(r.Payload) == 0 {
				continue
			}
			if client == nil {
				client = asynq.NewClientFromRedisClient(s.rdb)
			}
			t := asynq.NewTask(TypeMessageSend, r.Payload, asynq.Queue(QueueTransactional), asynq.TaskID("message:"+r.Key),
				asynq.MaxRetry(8), asynq.Timeout(2*time.Minute), asynq.Retention(24*time.Hour))
			if _, err := client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				return n, fmt.Errorf("queue: queue list message again: %w", err)
			}
			n++
		}
	}
}
