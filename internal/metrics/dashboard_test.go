package metrics_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tayori-news/tayori/internal/metrics"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

// fakePool stands for the mailer's pool, which needs a relay.
type fakePool struct{}

func (fakePool) Open() int64  { return 2 }
func (fakePool) Dials() int64 { return 5 }

// sendsByState stands for the queue's store.
type sendsByState map[queue.State]int64

func (s sendsByState) SendsByState(context.Context) (map[queue.State]int64, error) { return s, nil }

// exercised returns metrics on which every collector has reported, with
// the queues read from a real Redis.
func exercised(t *testing.T) *metrics.Metrics {
	t.Helper()
	m := metrics.New(nil)
	m.WatchPool(fakePool{})
	m.WatchSends(sendsByState{queue.Done: 2, queue.Sending: 1})
	m.WatchQueues(asynq.NewInspectorFromRedisClient(testutil.RedisDB(t)))
	for _, k := range queue.MailKinds {
		m.CopySent(k)
		for _, c := range []queue.ErrorClass{queue.Temporary, queue.Permanent, queue.BadMailbox, queue.Policy, queue.Unavailable} {
			m.CopyFailed(k, c)
			m.CopyRetried(k, c)
		}
	}
	m.RelayReply(20 * time.Millisecond)
	m.Request("GET /subscribe", "GET", 200, time.Millisecond)
	m.Imported(1, 1, 1, 1, 1)
	return m
}

// families gathers every metric family's name and labels; a histogram's
// series (_bucket with le, _sum, _count) are listed as such.
func families(t *testing.T, reg *prometheus.Registry) map[string]map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, mf := range mfs {
		labels := map[string]bool{"instance": true, "job": true} // added by Prometheus when it scrapes
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		name := mf.GetName()
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			bucket := map[string]bool{"le": true}
			for l := range labels {
				bucket[l] = true
			}
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = bucket, labels, labels
			continue
		}
		out[name] = labels
	}
	return out
}

// grafanaVars are the dashboard's variables, replaced by what they stand
// for so that the expressions parse as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$instance", ".*")

// Every PromQL expression of deploy/grafana-dashboard.json parses, and
// every metric it queries, with every label it matches on, is one that
// Tayori registers.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	have := families(t, exercised(t).Registry())
	check := func(where, name string, labels []string) {
		got, ok := have[name]
		if !ok {
			t.Errorf("%s queries %s, which Tayori does not register", where, name)
			return
		}
		for _, l := range labels {
			if !got[l] {
				t.Errorf("%s matches %s on label %q, which it does not have", where, name, l)
			}
		}
	}
	exprs, used := 0, map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			expr, err := parser.ParseExpr(grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: %q does not parse: %v", p.Title, tg.Expr, err)
				continue
			}
			names := 0
			parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				names++
				var labels []string
				for _, m := range vs.LabelMatchers {
					if m.Name != "__name__" {
						labels = append(labels, m.Name)
					}
				}
				check("panel "+p.Title, vs.Name, labels)
				used[vs.Name] = true
				return nil
			})
			if names == 0 {
				t.Errorf("panel %q: %q queries no metric", p.Title, tg.Expr)
			}
			// Grouping labels must exist too: sum by (class) of a metric
			// without class shows one empty series.
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				ae, ok := n.(*parser.AggregateExpr)
				if !ok || ae.Without {
					return nil
				}
				parser.Inspect(ae.Expr, func(m parser.Node, _ []parser.Node) error {
					if vs, ok := m.(*parser.VectorSelector); ok {
						check("panel "+p.Title+" (by)", vs.Name, ae.Grouping)
					}
					return nil
				})
				return nil
			})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		q, _ := v.Query.(map[string]any)
		if q == nil {
			continue
		}
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, s)
			continue
		}
		check("variable "+v.Name, m[1], []string{m[2]})
	}
	if exprs < 10 {
		t.Errorf("the dashboard has %d expressions: it lost its panels", exprs)
	}
	// The dashboard shows what the issue asks for.
	for _, want := range []string{"tayori_copies_sent_total", "tayori_copies_failed_total", "tayori_smtp_reply_seconds_bucket",
		"tayori_queue_tasks", "tayori_sends", "tayori_http_request_seconds_bucket", "tayori_http_requests_total"} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// The metrics are on a registry of their own: two Metrics in one process
// (tests, `tayori run`'s commands) do not collide, and nothing is on the
// default registry.
func TestOwnRegistry(t *testing.T) {
	a, b := metrics.New(nil), metrics.New(nil)
	a.CopySent(queue.KindIssue)
	fa, fb := families(t, a.Registry()), families(t, b.Registry())
	if len(fa) == 0 || len(fa) != len(fb) {
		t.Fatalf("%d and %d families", len(fa), len(fb))
	}
	mfs, _ := prometheus.DefaultGatherer.Gather()
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "tayori_") {
			t.Errorf("%s is on the default registry", mf.GetName())
		}
	}
}
