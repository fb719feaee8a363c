package queue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// Task types ("noun:verb", as in asynq's README).
const (
	// TypeSendPlan plans a send: records its deliveries and enqueues batches.
	TypeSendPlan = "send:plan"
	// TypeSendBatch delivers one batch of a send's recipients.
	TypeSendBatch = "send:batch"
	// TypeSendMonthly is the monthly schedule's tick: it plans the month's send.
	TypeSendMonthly = "send:monthly"
	// TypeMessageSend sends one transactional message (test sends,
	// confirmation mails) on the transactional queue.
	TypeMessageSend = "message:send"
)

// Queue names. Transactional work has strict priority over newsletters.
const (
	QueueTransactional = "transactional"
	QueueNewsletter    = "newsletter"
)

// errPayload marks a payload that cannot be decoded; it wraps
// asynq.SkipRetry because retrying cannot help.
func errPayload(typ string, err error) error {
	return fmt.Errorf("%s: malformed payload: %w: %w", typ, err, asynq.SkipRetry)
}

// sendRef identifies a send in task ids: "<id>.<uid>".
func sendRef(id int64, uid string) string { return strconv.FormatInt(id, 10) + "." + uid }

// PlanPayload is the payload of a send:plan task.
type PlanPayload struct {
	SendID int64  `json:"send_id"`
	UID    string `json:"uid"`
}

// NewPlanTask returns the send:plan task of a send. Its TaskID
// "plan:<id>.<uid>" with Retention stops a second enqueue.
func NewPlanTask(sendID int64, uid string, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(PlanPayload{SendID: sendID, UID: uid})
	if err != nil {
		return nil, fmt.Errorf("queue: plan task: %w", err)
	}
	base := []asynq.Option{asynq.TaskID("plan:" + sendRef(sendID, uid)), asynq.Queue(QueueNewsletter)}
	return asynq.NewTask(TypeSendPlan, b, append(base, opts...)...), nil
}

// BatchPayload is the payload of a send:batch task: the send and the ids
// of the batch's subscribers, never content.
type BatchPayload struct {
	SendID int64
	UID    string
	Batch  int64
	IDs    []int64 // ascending
}

// batchPayloadVersion is the first byte of an encoded BatchPayload.
const batchPayloadVersion = 1

// MarshalBinary encodes p compactly: a version byte, uvarints for the
// send id, batch number, uid length and count, the uid, then the ids as
// uvarint deltas (an id list of 200 nearby ids takes about 200 bytes).
func (p BatchPayload) MarshalBinary() ([]byte, error) {
	if !slices.IsSorted(p.IDs) {
		return nil, errors.New("batch ids must be ascending")
	}
	b := make([]byte, 0, 16+len(p.UID)+2*len(p.IDs))
	b = append(b, batchPayloadVersion)
	b = binary.AppendUvarint(b, uint64(p.SendID))
	b = binary.AppendUvarint(b, uint64(p.Batch))
	b = binary.AppendUvarint(b, uint64(len(p.UID)))
	b = append(b, p.UID...)
	b = binary.AppendUvarint(b, uint64(len(p.IDs)))
	var prev int64
	for _, id := range p.IDs {
		if id < 0 {
			return nil, errors.New("batch ids must not be negative")
		}
		b = binary.AppendUvarint(b, uint64(id-prev))
		prev = id
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (p *BatchPayload) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != batchPayloadVersion {
		return errors.New("unknown batch payload version")
	}
	b = b[1:]
	next := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("truncated batch payload")
		}
		// Only the shortest encoding is valid, so each payload has one
		// form (an overlong varint ends in a 0x00 byte).
		if n > 1 && b[n-1] == 0 {
			return 0, errors.New("non-minimal varint in batch payload")
		}
		b = b[n:]
		return v, nil
	}
	sid, err := next()
	if err != nil {
		return err
	}
	batch, err := next()
	if err != nil {
		return err
	}
	ul, err := next()
	if err != nil {
		return err
	}
	if ul > uint64(len(b)) || ul > 64 {
		return errors.New("bad uid length in batch payload")
	}
	uid := string(b[:ul])
	b = b[ul:]
	count, err := next()
	if err != nil {
		return err
	}
	if count > uint64(len(b)) { // every id takes at least one byte
		return errors.New("bad id count in batch payload")
	}
	ids := make([]int64, 0, count)
	var prev uint64
	for range count {
		d, err := next()
		if err != nil {
			return err
		}
		if d == 0 && len(ids) > 0 || prev+d > 1<<62 {
			return errors.New("batch ids not strictly ascending")
		}
		prev += d
		ids = append(ids, int64(prev))
	}
	if len(b) != 0 {
		return errors.New("trailing bytes in batch payload")
	}
	if sid > 1<<62 || batch > 1<<62 {
		return errors.New("batch payload number out of range")
	}
	*p = BatchPayload{SendID: int64(sid), UID: uid, Batch: int64(batch), IDs: ids}
	return nil
}

// BatchTaskID returns the TaskID of batch n of a send, "batch:<id>.<uid>:<n>".
func BatchTaskID(sendID int64, uid string, n int64) string {
	return "batch:" + sendRef(sendID, uid) + ":" + strconv.FormatInt(n, 10)
}

// NewBatchTask returns the send:batch task for p, with TaskID
// "batch:<send>.<uid>:<n>" and the given options (queue, retention, retries).
func NewBatchTask(p BatchPayload, opts ...asynq.Option) (*asynq.Task, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("queue: batch task: %w", err)
	}
	base := []asynq.Option{asynq.TaskID(BatchTaskID(p.SendID, p.UID, p.Batch)), asynq.Queue(QueueNewsletter)}
	return asynq.NewTask(TypeSendBatch, b, append(base, opts...)...), nil
}

// TransactionalMessage is one message for the transactional queue: a test
// copy of a newsletter variant, or (later) a confirmation mail. It carries
// its content because it is small and one-off.
type TransactionalMessage struct {
	To      string `json:"to"`
	ToName  string `json:"to_name,omitempty"`
	Subject string `json:"subject"`
	Text    []byte `json:"text"`
	HTML    []byte `json:"html,omitempty"`
	// Key de-duplicates: a second message with the same key within the
	// retention window is not enqueued again. Empty: no de-duplication.
	Key string `json:"key,omitempty"`
	// ListUnsubscribe, if set, makes the copy carry the list headers (test
	// copies of a newsletter look exactly like the real thing).
	ListUnsubscribe string `json:"list_unsubscribe,omitempty"`
	ListID          string `json:"list_id,omitempty"`
	FeedbackID      string `json:"feedback_id,omitempty"`
	// SubscriberID and List, when set, name a reader's list mail that is
	// not an issue (the welcome mail, listmail.go): it is tagged for bounce
	// and complaint correlation as issues are, and not sent if the reader
	// is no longer an active member of List when the worker takes it.
	SubscriberID int64  `json:"subscriber_id,omitempty"`
	List         string `json:"list,omitempty"`
	// Kind says what the message is, for the metrics' kind label
	// (confirmation, welcome, test, reminder); empty counts as other.
	Kind MailKind `json:"kind,omitempty"`
}

// NewMessageTask returns the message:send task for m on the transactional queue.
func NewMessageTask(m TransactionalMessage, opts ...asynq.Option) (*asynq.Task, error) {
	if m.To == "" || !strings.Contains(m.To, "@") {
		return nil, fmt.Errorf("%w: transactional message needs an address", ErrInvalid)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("queue: message task: %w", err)
	}
	base := []asynq.Option{asynq.Queue(QueueTransactional)}
	if m.Key != "" {
		base = append(base, asynq.TaskID("message:"+m.Key))
	}
	return asynq.NewTask(TypeMessageSend, b, append(base, opts...)...), nil
}
