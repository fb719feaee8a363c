package metrics

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tayori-news/tayori/queue"
)

// scrapeTimeout bounds each read made while the metrics are scraped.
const scrapeTimeout = 3 * time.Second

// Inspector reads the Asynq queues (implemented by *asynq.Inspector).
type Inspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// WatchQueues reports the depth of every Asynq queue (tasks pending,
// active, scheduled, retry and archived) and its processed and failed
// totals, read from insp when the metrics are scraped.
func (m *Metrics) WatchQueues(insp Inspector) {
	m.reg.MustRegister(&queueCollector{insp: insp, m: m})
}

var (
	queueTasks = prometheus.NewDesc("tayori_queue_tasks", "Asynq tasks in each queue, by state (pending, active, scheduled, retry, archived).",
		[]string{"queue", "state"}, nil)
	queueProcessed = prometheus.NewDesc("tayori_queue_processed_total", "Asynq tasks processed by each queue (succeeded or failed).",
		[]string{"queue"}, nil)
	queueFailed = prometheus.NewDesc("tayori_queue_failed_total", "Asynq task runs that failed in each queue (each retry counts).",
		[]string{"queue"}, nil)
	queueUp = prometheus.NewDesc("tayori_queue_inspect_up", "1 when the last scrape could read the Asynq queues, 0 when Redis did not answer.",
		nil, nil)
)

type queueCollector struct {
	insp Inspector
	m    *Metrics
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasks
	ch <- queueProcessed
	ch <- queueFailed
	ch <- queueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	names, err := c.insp.Queues()
	up := 1.0
	if err != nil {
		c.m.log.Warn("metrics: read the Asynq queues", "err", err)
		up = 0
	}
	// The two queues Tayori uses are always reported, empty or not.
	seen := map[string]bool{}
	for _, q := range append([]string{queue.QueueTransactional, queue.QueueNewsletter}, names...) {
		if seen[q] {
			continue
		}
		seen[q] = true
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			info = &asynq.QueueInfo{Queue: q} // a queue with no task yet does not exist in Redis
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(queueTasks, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(queueProcessed, prometheus.CounterValue, float64(info.ProcessedTotal), q)
		ch <- prometheus.MustNewConstMetric(queueFailed, prometheus.CounterValue, float64(info.FailedTotal), q)
	}
	ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, up)
}

// Sends counts the sends by state (implemented by *queue.Service).
type Sends interface {
	SendsByState(ctx context.Context) (map[queue.State]int64, error)
}

var sendsDesc = prometheus.NewDesc("tayori_sends", "Sends in each state (scheduled, planning, sending, done, paused, cancelled, failed).",
	[]string{"state"}, nil)

// WatchSends reports the sends by state, read from the store when the
// metrics are scraped.
func (m *Metrics) WatchSends(s Sends) { m.reg.MustRegister(&sendsCollector{s: s, m: m}) }

type sendsCollector struct {
	s Sends
	m *Metrics
}

func (c *sendsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sendsDesc }

func (c *sendsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	by, err := c.s.SendsByState(ctx)
	if err != nil {
		c.m.log.Warn("metrics: count the sends by state", "err", err)
		ch <- prometheus.NewInvalidMetric(sendsDesc, err)
		return
	}
	for _, st := range queue.States {
		ch <- prometheus.MustNewConstMetric(sendsDesc, prometheus.GaugeValue, float64(by[st]), string(st))
	}
}
