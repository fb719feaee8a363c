package subscribers

import (
	"context"

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
// once erased), the status they had before, and the list the change
// concerns, if it concerns one.
//
// A change of lists is an event too, though the status stays: a reader who
// leaves one list and stays on others is subscriber.unsubscribed with List
// set and their status unchanged (active), and an active reader who
// confirms another list is subscriber.confirmed with List set and
// PreviousStatus active. Leaving the last list, or every list, is
// subscriber.unsubscribed with the status unsubscribed (List set when one
// list was named); a first confirmation names the list confirmed.
type EventData struct {
	Subscriber     EventSubscriber `json:"subscriber"`
	PreviousStatus Status          `json:"previous_status,omitempty"`
	List           string          `json:"list,omitempty"`
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

// eventHub holds the sinks of the store's events.
type eventHub struct {
	sinks []Events
}

type noted struct {
	typ  string
	id   int64
	from Status
	list string
}

// txNotes is the Queries of one transaction of inTx, with the events of
// the changes made in it, emitted once it commits (a rolled-back change
// emits nothing). The bulk import's transactions are not of inTx.
type txNotes struct {
	Queries
	notes []noted
}

// noteStatus records the event of a status change made in tx, if any.
func noteStatus(tx Queries, id int64, from, to Status) {
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
	note(tx, noted{typ: typ, id: id, from: from})
}

// notePrefs records a change of preferences made in tx.
func notePrefs(tx Queries, id int64) {
	note(tx, noted{typ: EventPreferencesChanged, id: id})
}

func note(tx Queries, n noted) {
	if tn, ok := tx.(*txNotes); ok {
		tn.notes = append(tn.notes, n)
	}
}

// noteList records a change of id's lists made in tx (left or joined
// list) that keeps their status from.
func noteList(tx Queries, id int64, typ string, from Status, list string) {
	note(tx, noted{typ: typ, id: id, from: from, list: list})
}

// nameList sets the list of the last event of type typ noted in tx for
// id, if it names none: the status change that leaving or joining list
// caused.
func nameList(tx Queries, id int64, typ, list string) {
	tn, ok := tx.(*txNotes)
	if !ok {
		return
	}
	for i := len(tn.notes) - 1; i >= 0; i-- {
		if n := &tn.notes[i]; n.id == id && n.typ == typ {
			if n.list == "" {
				n.list = list
			}
			return
		}
	}
}

// emitNotes emits the events of a committed transaction.
func (s *Store) emitNotes(ctx context.Context, ns []noted) {
	if len(s.ev.sinks) == 0 {
		return
	}
	for _, n := range ns {
		sub, err := s.Get(ctx, n.id)
		if err != nil {
			s.log.WarnContext(ctx, "subscriber event: re-read failed", "subscriber_id", n.id, "err", err)
			continue
		}
		d := EventData{PreviousStatus: n.from, List: n.list, Subscriber: EventSubscriber{ID: sub.ID,
			PublicID: sub.PublicID, Email: sub.Email, Name: sub.Name, Status: sub.Status, Lists: sub.Lists, Prefs: sub.Prefs}}
		for _, sink := range s.ev.sinks {
			sink.Emit(ctx, n.typ, d)
		}
	}
}
