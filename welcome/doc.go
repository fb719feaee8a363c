// Package welcome sends a welcome mail when a reader confirms their
// subscription: a plain-text template per list, edited in the console
// (with a preview of the mail as rendered), holding the latest issue's
// link and the reader's own preference and unsubscribe links. It goes
// through the queue as a list mail (queue.ListMessage): the same List-Id,
// List-Unsubscribe and List-Unsubscribe-Post, Feedback-ID and Message-ID
// as an issue's copy, tagged for bounce correlation, and not sent to a
// reader who left the list meanwhile. The editor may turn it off per list.
//
// [Service] implements subscribers.Events and acts on
// subscriber.confirmed. The SQL is in internal/store/{sqlite,postgres}/welcome.go (table welcome_templates).
package welcome
