package queue

import (
	"sync/atomic"
	"time"
)

// storeTrouble remembers when this process last failed to write to the
// store (a full disk, a database that is down): a lease renewal, an
// outcome commit or a takeover that did not go through.
//
// While the store refuses writes, no run can renew its lease, so every
// lease lapses, those of live runs too. A watchdog that took their batches
// over the moment the store took writes again would race the live runs:
// a run holding outcomes it could not commit (copies the relay accepted)
// would find its claim gone and its outcomes refused, and the new run
// would send those copies again. So the watchdog waits one lease period
// after the last failure it or its process saw: live runs renew and
// commit first, and only the batches of runs that are really gone are
// taken over, one lease period later than otherwise.
type storeTrouble struct {
	now func() time.Time
	at  atomic.Int64 // UnixNano of the last failure; 0: none
}

// note records a failed write now. Safe on a nil receiver (no record).
func (t *storeTrouble) note() {
	if t != nil {
		t.at.Store(t.now().UnixNano())
	}
}

// within reports whether a failure was seen less than d ago.
func (t *storeTrouble) within(d time.Duration) bool {
	if t == nil {
		return false
	}
	at := t.at.Load()
	return at != 0 && t.now().Sub(time.Unix(0, at)) < d
}
