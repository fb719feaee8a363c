package metrics_test

import (
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/metrics"
	"github.com/tayori-news/tayori/queue"
)

// What the queue pays per copy: one outcome counter and one latency
// observation, with no allocation.
func BenchmarkPerCopy(b *testing.B) {
	m := metrics.New(nil)
	var q queue.Metrics = m
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q.CopySent(queue.KindIssue)
			q.RelayReply(3 * time.Millisecond)
		}
	})
}

func TestPerCopyDoesNotAllocate(t *testing.T) {
	m := metrics.New(nil)
	var q queue.Metrics = m
	if n := testing.AllocsPerRun(1000, func() {
		q.CopySent(queue.KindIssue)
		q.CopyFailed(queue.KindIssue, queue.BadMailbox)
		q.CopySent(queue.KindWelcome)
		q.CopyRetried(queue.KindConfirmation, queue.Temporary)
		q.RelayReply(3 * time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per copy, want 0", n)
	}
}
