package metrics_test

import (
	"testing"

	"github.com/tayori-news/tayori/internal/metrics"
	"github.com/tayori-news/tayori/queue"
)

// gathered is the value of the counter name with exactly labels, or -1
// when the registry has no such series.
func gathered(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range s.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return -1
}

// The copy counters keep each kind of message apart, and count a kind
// they do not list as other; every kind's series exists from the start
// (at 0), so that rate() and the dashboard see it before the first mail.
func TestCopiesByKind(t *testing.T) {
	if queue.MailKinds[len(queue.MailKinds)-1] != queue.KindOther {
		t.Fatalf("queue.MailKinds must end with KindOther (the metrics count unknown kinds there): %v", queue.MailKinds)
	}
	m := metrics.New(nil)
	m.CopySent(queue.KindIssue)
	m.CopySent(queue.KindIssue)
	m.CopySent(queue.KindConfirmation)
	m.CopySent(queue.MailKind("newsletter-of-2030"))
	m.CopyFailed(queue.KindWelcome, queue.BadMailbox)
	m.CopyRetried(queue.KindTest, queue.Temporary)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tayori_copies_sent_total", map[string]string{"kind": "issue"}, 2},
		{"tayori_copies_sent_total", map[string]string{"kind": "confirmation"}, 1},
		{"tayori_copies_sent_total", map[string]string{"kind": "other"}, 1},
		{"tayori_copies_sent_total", map[string]string{"kind": "welcome"}, 0},
		{"tayori_copies_sent_total", map[string]string{"kind": "test"}, 0},
		{"tayori_copies_sent_total", map[string]string{"kind": "reminder"}, 0},
		{"tayori_copies_sent_total", map[string]string{"kind": "newsletter-of-2030"}, -1},
		{"tayori_copies_failed_total", map[string]string{"kind": "welcome", "class": "bad_mailbox"}, 1},
		{"tayori_copies_failed_total", map[string]string{"kind": "issue", "class": "bad_mailbox"}, 0},
		{"tayori_copies_retried_total", map[string]string{"kind": "test", "class": "temporary"}, 1},
		{"tayori_copies_retried_total", map[string]string{"kind": "confirmation", "class": "temporary"}, 0},
	} {
		if got := gathered(t, m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
