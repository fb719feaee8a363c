// Package rhythm is the monthly rhythm an editor sets in the console: one
// recurring send rule per list ("the first Tuesday at 10:00 Asia/Tokyo"),
// months to skip, and a reminder mailed to editors a few days before a
// run whose issue is not ready yet.
//
// [Rule] computes the runs (Nth weekday of each month, in the rule's zone;
// Asia/Tokyo has no daylight saving, other zones follow theirs through
// time.Date). The [Runner] applies the rules from the queue's existing
// scheduler (queue.Schedule.Every): only the process holding the
// scheduler's Redis lease ticks, each month's send is created through the
// scheduler's own path (queue.Service.CreateMonthlySend, one send per
// month and list), and a table of what was done (rhythm_runs) makes each
// send and each reminder happen once. The SQL is in internal/store/{sqlite,postgres}/rhythm.go.
package rhythm
