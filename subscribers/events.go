package subscribers

import (
	"context"
	"sync"

	"github.com/tayori-news/tayori/audience"
)

// Events receives what happened to subscribers once it is committed
// (package webhooks implements it). Emit must not block for long and
// handles its own failures: the change is made whatever it does.
type Events interface {
	Emit(ctx context.Context, eventType string, data any)
}

// The event types the store emits.
const (
	EventCreated            = "subscriber.created"
	EventConfirmed          = "subscriber.confirmed"
	EventPreferencesChanged = "subscriber.preferences_changed"
	EventUnsubscribed       = "subscriber.unsubscribed"
	EventBounced            = "subscriber.bounced"
	EventComplained         = "subscriber.complained"
)

// EventData is the data of a subscriber event: the subscriber as they are
// after the change (never the internal id; the address and name are empty
// once erased) and the status they had before.
type EventData struct {
	Subscriber     EventSubscriber `json:"subscriber"`
	PreviousStatus Status          `json:"previous_status,omitempty"`
}

// EventSubscriber is a subscriber as events describe them.
type EventSubscriber struct {
	// ID is the internal id, for the process's own use (the welcome mail);
	// it is never serialised.
	ID       int64          `json:"-"`
	PublicID string         `json:"public_id"`
	Email    string         `json:"email"`
	Name     string         `json:"name"`
	Status   Status         `json:"status"`
	Lists    []string       `json:"lists"`
	Prefs    audience.Prefs `json:"prefs"`
}

// SetEvents makes the store emit an event to each of es after each
// committed change of a subscriber's status (created, confirmed,
// unsubscribed, bounced, complained) or preferences, from any path but the
// bulk CSV import. Call it before the store is used.
func (s *Store) SetEvents(es ...Events) { s.ev.sinks = es }

// eventHub collects the events of each open transaction and emits them
// after it commits (a rolled-back change emits nothing).
type eventHub struct {
	sinks   []Events
	mu      sync.Mutex
	pending map[dbtx][]noted
}

type noted struct {
	typ  string
	id   int64
	from Status
}

// noteStatus records the event of a status change made in tx, if any.
func (h *eventHub) noteStatus(tx dbtx, id int64, from, to Status) {
	var typ string
	switch {
	case from == to:
		return
	case from == "":
		typ = EventCreated
	case to == Active:
		typ = EventConfirmed
	case to == Unsubscribed:
		typ = EventUnsubscribed
	case to == Bounced:
		typ = EventBounced
	case to == Complained:
		typ = EventComplained
	default:
		return
	}
	h.note(tx, noted{typ, id, from})
}

// notePrefs records a change of preferences made in tx.
func (h *eventHub) notePrefs(tx dbtx, id int64) {
	h.note(tx, noted{typ: EventPreferencesChanged, id: id})
}

// track starts collecting the events of tx (only transactions of inTx
// are tracked: the bulk import's are not).
func (h *eventHub) track(tx dbtx) {
	if len(h.sinks) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending == nil {
		h.pending = map[dbtx][]noted{}
	}
	h.pending[tx] = []noted{}
}

func (h *eventHub) note(tx dbtx, n noted) {
	if len(h.sinks) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ns, ok := h.pending[tx]; ok {
		h.pending[tx] = append(ns, n)
	}
}

func (h *eventHub) take(tx dbtx) []noted {
	if len(h.sinks) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ns := h.pending[tx]
	delete(h.pending, tx)
	return ns
}

// eventsDone ends tx's events: emitted if it committed, dropped if not.
func (s *Store) eventsDone(ctx context.Context, tx dbtx, committed bool) {
	ns := s.ev.take(tx)
	if !committed {
		return
	}
	for _, n := range ns {
		sub, err := s.Get(ctx, n.id)
		if err != nil {
			s.log.WarnContext(ctx, "subscriber event: re-read failed", "subscriber_id", n.id, "err", err)
			continue
		}
		d := EventData{PreviousStatus: n.from, Subscriber: EventSubscriber{ID: sub.ID,
			PublicID: sub.PublicID, Email: sub.Email, Name: sub.Name, Status: sub.Status, Lists: sub.Lists, Prefs: sub.Prefs}}
		for _, sink := range s.ev.sinks {
			sink.Emit(ctx, n.typ, d)
		}
	}
}
