package queue

import (
	"context"
	"time"
)

// Events receives what happened to sends once it is recorded (package
// webhooks implements it). Emit must not block for long and handles its
// own failures: the send goes on whatever it does.
type Events interface {
	Emit(ctx context.Context, eventType string, data any)
}

// The event types the queue emits.
const (
	EventSendStarted  = "send.started"  // planning began: the first copies are on their way
	EventSendFinished = "send.finished" // every delivery has an outcome
	EventSendPaused   = "send.paused"   // by an editor, or by a policy refusal of the relay
)

// SendEvent is the data of a send event.
type SendEvent struct {
	Send struct {
		ID          int64     `json:"id"`
		Issue       string    `json:"issue"`
		List        string    `json:"list"`
		State       State     `json:"state"`
		Counts      Counts    `json:"counts"`
		StartedAt   time.Time `json:"started_at,omitzero"`
		FinishedAt  time.Time `json:"finished_at,omitzero"`
		PauseReason string    `json:"pause_reason,omitempty"`
	} `json:"send"`
}

// emit emits an event of send id as it is now, if Deps.Events is set.
func (s *Service) emit(ctx context.Context, typ string, id int64) {
	if s.deps.Events == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	snd, err := s.Get(ctx, id)
	if err != nil {
		s.log.WarnContext(ctx, "send event: read failed", "send_id", id, "type", typ, "err", err)
		return
	}
	var e SendEvent
	e.Send.ID, e.Send.List, e.Send.State, e.Send.Counts = snd.ID, snd.List, snd.State, snd.Counts
	e.Send.StartedAt, e.Send.FinishedAt, e.Send.PauseReason = snd.StartedAt, snd.FinishedAt, snd.PauseReason
	if snd.Issue != nil {
		e.Send.Issue = snd.Issue.Slug
	}
	s.deps.Events.Emit(ctx, typ, e)
}
