package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// sendCache keeps what does not change during a send: its issue and
// variant selection. State is read fresh for every batch.
type sendCache struct {
	snd *Send
	vs  *variants
	// The same for every copy of the send.
	listID, feedbackID string
	// links rewrites item links (counted clicks); nil: as written.
	links func(item, link int) string
}

func (s *Service) loadSend(ctx context.Context, id int64) (*sendCache, State, error) {
	st, err := s.currentState(ctx, id)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	sc := s.sends[id]
	s.mu.Unlock()
	if sc != nil {
		return sc, st, nil
	}
	snd, err := s.getSend(ctx, id, true)
	if err != nil {
		return nil, "", err
	}
	vs, err := s.withListSettings(ctx, newVariants(s.deps.Renderer, snd.Issue), snd.List)
	if err != nil {
		return nil, "", err
	}
	sc = &sendCache{snd: snd, vs: vs,
		listID: s.listID(snd.List), feedbackID: s.feedbackID(snd.Issue, snd.List)}
	if sc.links, err = s.clickLinks(ctx, id); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	if len(s.sends) > 64 {
		clear(s.sends)
	}
	s.sends[id] = sc
	s.mu.Unlock()
	return sc, st, nil
}

// renderOnce renders one variant of one send once per process.
type renderOnce struct {
	once sync.Once
	r    Rendered
	err  error
}

func (s *Service) render(ctx context.Context, sc *sendCache, key string, prefs audience.Prefs) (Rendered, error) {
	k := strconv.FormatInt(sc.snd.ID, 10) + "\x00" + key
	s.mu.Lock()
	ro := s.rendered[k]
	if ro == nil {
		if len(s.rendered) > 256 {
			clear(s.rendered)
		}
		ro = &renderOnce{}
		s.rendered[k] = ro
	}
	s.mu.Unlock()
	ro.once.Do(func() { ro.r, ro.err = s.renderVariant(ctx, sc, prefs) })
	if ro.err != nil {
		s.mu.Lock()
		delete(s.rendered, k) // try again next time
		s.mu.Unlock()
		return nil, fmt.Errorf("render variant %q of send %d: %w", key, sc.snd.ID, ro.err)
	}
	return ro.r, nil
}

// drainTimeout bounds the wait for the replies of copies in flight when a
// batch ends, also at shutdown: they are likely accepted already, and
// recording them saves sending them again.
const drainTimeout = 15 * time.Second

// claimed is an open delivery of the run's batch.
type claimed = ClaimedRow

// claim takes the batch for this run (one row in batch_claims, whatever
// the batch's size) under a lease that ends at until (Unix ms), and
// returns its unfinished deliveries. Rows a crashed earlier run left
// unrecorded are among them (their copies may have gone out: those are
// the at-most-in-flight duplicates). Outcomes are recorded only under the
// batch's current claim, so an earlier run that is still alive, if its
// batch was taken over, records nothing more. A batch that another run
// holds under a live lease is not claimed: errBusy. Copies an earlier run
// sent on their first attempt (batch_sent) are done and left out.
func (s *Service) claim(ctx context.Context, p *BatchPayload, token string) (out []claimed, until int64, err error) {
	if len(p.IDs) == 0 {
		return nil, 0, nil
	}
	// A batch's ids are consecutive in the send's planning order, so its
	// rows are one key range of the primary key.
	lo, hi := slices.Min(p.IDs), slices.Max(p.IDs)
	now := s.cfg.Now()
	until = now.Add(s.cfg.LeaseTTL).UnixMilli()
	out, err = s.ledger.Claim(ctx, BatchClaim{SendID: p.SendID, Batch: p.Batch, Claim: token,
		Now: now.UnixMilli(), Until: until, Lo: lo, Hi: hi})
	if errors.Is(err, errBusy) {
		return nil, 0, errBusy
	}
	if err != nil {
		return nil, 0, fmt.Errorf("queue: claim batch %d of send %d: %w", p.Batch, p.SendID, err)
	}
	return out, until, nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stateCheckEvery is how often a running batch looks at its send's state,
// so a pause or cancel stops it within that time.
const stateCheckEvery = 250 * time.Millisecond

func (s *Service) links(sub, list string) (unsub, prefs, mailto string, err error) {
	ut, err := s.deps.Tokens.UnsubscribeToken(sub, list)
	if err != nil {
		return "", "", "", fmt.Errorf("unsubscribe token: %w", err)
	}
	pt, err := s.deps.Tokens.PreferencesToken(sub, list)
	if err != nil {
		return "", "", "", fmt.Errorf("preferences token: %w", err)
	}
	unsub = s.cfg.BaseURL + "/u/" + ut
	prefs = s.cfg.BaseURL + "/p/" + pt
	if s.cfg.UnsubscribeMailto != "" {
		mailto = "mailto:" + s.cfg.UnsubscribeMailto + "?subject=" + url.PathEscape("unsubscribe "+ut)
	}
	return unsub, prefs, mailto, nil
}

// newsletterMessage makes r's copy: the rendered variant and r's
// personal values, which the Sender puts together.
func (s *Service) newsletterMessage(sc *sendCache, r *Recipient, rendered Rendered) (*Message, error) {
	unsub, prefs, mailto, err := s.links(r.PublicID, sc.snd.List)
	if err != nil {
		return nil, err
	}
	return s.copyMessage(sc, r, rendered, unsub, prefs, mailto), nil
}

// copyMessage is r's copy with the given links.
func (s *Service) copyMessage(sc *sendCache, r *Recipient, rendered Rendered, unsub, prefs, mailto string) *Message {
	return &Message{
		From: s.cfg.From, ReplyTo: s.cfg.ReplyTo, To: r.Email, ToName: r.Name,
		SendID: sc.snd.ID, SubscriberID: r.ID,
		Subject: sc.snd.Issue.Title,
		ListID:  sc.listID, ListName: sc.snd.Issue.Newsletter,
		ListUnsubscribe: unsub, ListUnsubscribeMailto: mailto,
		FeedbackID: sc.feedbackID,
		Body:       rendered, Personal: Personal{Name: r.Name, UnsubscribeURL: unsub, PreferencesURL: prefs},
	}
}

// EnqueueMessage queues one transactional message (test copies,
// confirmation mails) on the transactional queue, which workers serve
// before newsletters. With m.Key set, a second message with the same key
// within the retention window is dropped and ErrDuplicate returned.
func (s *Service) EnqueueMessage(ctx context.Context, m TransactionalMessage) (taskID string, err error) {
	t, err := NewMessageTask(m, asynq.MaxRetry(8), asynq.Timeout(2*time.Minute), asynq.Retention(24*time.Hour))
	if err != nil {
		return "", err
	}
	info, err := s.client.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return "", fmt.Errorf("message %q: %w", m.Key, ErrDuplicate)
	}
	if err != nil {
		return "", fmt.Errorf("queue: enqueue message: %w", err)
	}
	return info.ID, nil
}

// ErrDuplicate: a transactional message with the same key is queued or was sent.
var ErrDuplicate = errors.New("duplicate message")

func (s *Service) handleMessage(ctx context.Context, t *asynq.Task) error {
	var m TransactionalMessage
	if err := json.Unmarshal(t.Payload(), &m); err != nil || m.To == "" {
		return errPayload(TypeMessageSend, fmt.Errorf("%v", err))
	}
	if s.deps.Sender == nil {
		return errors.New("queue: this process has no Sender")
	}
	id, _ := asynq.GetTaskID(ctx)
	if skip, err := s.listMailGone(ctx, m); skip || err != nil {
		return err // listmail.go
	}
	msg := &Message{
		From: s.cfg.From, ReplyTo: s.cfg.ReplyTo, To: m.To, ToName: m.ToName, Subject: m.Subject,
		Text: m.Text, HTML: m.HTML,
		ListID: m.ListID, ListUnsubscribe: m.ListUnsubscribe, FeedbackID: m.FeedbackID, SubscriberID: m.SubscriberID,
	}
	kind := m.Kind
	if kind == "" {
		kind = KindOther
	}
	reply, err := s.deps.Sender.Send(ctx, msg)
	if err == nil {
		s.deps.Metrics.CopySent(kind)
		s.log.InfoContext(ctx, "transactional message sent", "task_id", id, "reply", reply)
		return nil
	}
	c := s.deps.Classify(err)
	if c == Temporary || c == Unavailable {
		// Asynq retries it, unless this was its last attempt.
		retried, _ := asynq.GetRetryCount(ctx)
		if most, ok := asynq.GetMaxRetry(ctx); ok && retried >= most {
			s.deps.Metrics.CopyFailed(kind, c)
		} else {
			s.deps.Metrics.CopyRetried(kind, c)
		}
		return fmt.Errorf("transactional message: %w", err)
	}
	s.deps.Metrics.CopyFailed(kind, c)
	return fmt.Errorf("transactional message refused: %w: %w", err, asynq.SkipRetry)
}

// TestCopy is one test copy that TestSend queued.
type TestCopy struct {
	Variant string         // variant key
	Prefs   audience.Prefs // preferences it was rendered for
	Readers int64          // readers of the list who get this variant (0 if the list is empty)
	TaskID  string
}

// TestSend queues one copy of each variant of issue that readers of list
// (narrowed by filter) would get, or only the variant whose key is
// variant, to the address to, on the transactional queue. Copies carry
// the list headers, a "[TEST]" subject prefix and links that identify no
// reader. With an empty list, the full issue is sent.
func (s *Service) TestSend(ctx context.Context, issue *compose.Issue, list string, filter *audience.Prefs, to, variant string) ([]TestCopy, error) {
	vcs, _, err := s.Preview(ctx, issue, list, filter)
	if err != nil {
		return nil, err
	}
	if len(vcs) == 0 {
		all := audience.All()
		vcs = []VariantCount{{Key: s.deps.Renderer.Variant(issue, all), Example: all}}
	}
	if variant != "" {
		var pick []VariantCount
		for _, vc := range vcs {
			if vc.Key == variant || vc.Example.Key() == variant {
				pick = append(pick, vc)
			}
		}
		if len(pick) == 0 {
			return nil, fmt.Errorf("%w: no variant %q among this list's %d", ErrInvalid, variant, len(vcs))
		}
		vcs = pick
	}
	unsub, prefsURL := s.cfg.BaseURL+"/u/test-copy", s.cfg.BaseURL+"/p/test-copy"
	var out []TestCopy
	for _, vc := range vcs {
		r, err := s.deps.Renderer.Render(ctx, issue, vc.Example)
		if err != nil {
			return out, fmt.Errorf("queue: test send: render %q: %w", vc.Key, err)
		}
		text, html, err := r.AppendPersonalized(nil, nil, Personal{Name: "", UnsubscribeURL: unsub, PreferencesURL: prefsURL})
		if err != nil {
			return out, fmt.Errorf("queue: test send: %w", err)
		}
		id, err := s.EnqueueMessage(ctx, TransactionalMessage{
			To: to, Subject: "[TEST] " + issue.Title, Text: text, HTML: html, Kind: KindTest,
			ListUnsubscribe: unsub, ListID: s.listID(list), FeedbackID: s.feedbackID(issue, list),
		})
		if err != nil {
			return out, err
		}
		out = append(out, TestCopy{Variant: vc.Key, Prefs: vc.Example, Readers: vc.Readers, TaskID: id})
	}
	return out, nil
}
