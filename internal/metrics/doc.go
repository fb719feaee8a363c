// Package metrics holds Tayori's Prometheus metrics: one *Metrics per
// process, built on a registry of its own (never the default one, and no
// collector registered from an init function), handed to what reports.
//
// The delivery (package queue) counts the messages it hands the relay
// (readers' issue copies and the transactional mail: confirmations,
// welcome mails, test sends, reminders) by kind, outcome and class, and
// times the relay's replies to issue copies, through [Metrics.CopySent]
// and its siblings;
// the web server counts requests by route pattern and status through
// [Metrics.Request] and imports through [Metrics.Imported]; the relay's
// connections, the Asynq queues and the sends by state are read when the
// metrics are scraped ([Metrics.WatchPool], [Metrics.WatchQueues],
// [Metrics.WatchSends]). [Metrics.Handler] serves them in the Prometheus
// text format; [Metrics.Limiter] times the waits of the relay's rate limit.
//
// Every name starts with tayori_; docs/operations.md lists them with their
// meaning, and deploy/grafana-dashboard.json is built on them.
package metrics
