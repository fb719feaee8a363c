// Package webhooks posts Tayori's events (subscriber created, confirmed,
// preferences changed, unsubscribed, bounced, complained; send started,
// finished, paused) to the endpoints editors register, signed as the
// Standard Webhooks specification describes.
//
// [Service.Emit] (which implements subscribers.Events and queue.Events)
// writes an event to an outbox table in the database and never touches Redis.
// A dispatcher in each worker ([Service.Run]) fans the event out to one
// delivery per endpoint and one Asynq task per delivery, on the
// "webhooks" queue, retried with the specification's backoff; the
// webhook-id stays the same across retries and replays. Every attempt is
// logged with the endpoint's status and answer. The same workers queue
// again the deliveries whose task Redis lost and trim the delivery log
// ([Service.Reconcile], [Service.Trim]). The SQL is in internal/store (sqlite/webhooks.go,
// postgres/webhooks.go) behind [Store]. See docs/design/automation.md.
package webhooks
