package queue_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/smtpsink"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// BenchmarkFirstCopy measures the time from Create (what `tayori send`,
// the console and the API call) to the relay's first 250, with an idle
// worker in this process on the production defaults (its polling
// interval included) and the November issue to 10,000 and 100,000
// readers. Each iteration sends a new issue (a new slug), cancels it once
// the first copy is in, and lets the worker go idle again. It reports the
// median and the worst of the iterations (target: ≤ 1 s).
func BenchmarkFirstCopy(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) { benchFirstCopy(b, n) })
	}
}

func benchFirstCopy(b *testing.B, n int) {
	shape := benchShapes[1]
	dbPath := benchDB(b, shape, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := testutil.RedisDB(b)
	sink := smtpsink.New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go sink.Serve(ctx, ln)
	defer sink.Close()
	db, err := sqlitedb.Open(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ring, _ := token.NewKeyring(time.Now, testKeys...)
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		b.Fatal(err)
	}
	var pool *mailer.Pool
	deps := testDeps(b, store, "smtp://"+ln.Addr().String()+"?tls=none", &pool, nil, nil, 8)
	defer pool.Close()
	svc, err := queue.New(ctx, db, rdb, queue.Config{From: testFrom, BaseURL: testBaseURL, BatchSize: 500, Senders: 8}, deps, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	wctx, stopWorker := context.WithCancel(ctx)
	worker := make(chan error, 1)
	go func() { worker <- svc.NewServer(queue.ServerConfig{Concurrency: 8}).Run(wctx) }()
	defer func() { stopWorker(); <-worker }()

	var times []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		issue := *shape.issue(b)
		issue.Slug = fmt.Sprintf("first-copy-%d", i)
		time.Sleep(2 * time.Second) // the worker is idle, polling, as when an editor sends
		sink.Reset()
		b.StartTimer()
		start := time.Now()
		snd, err := svc.Create(ctx, queue.NewSend{Issue: &issue, List: testList})
		if err != nil {
			b.Fatal(err)
		}
		for sink.Stats().Messages == 0 {
			if time.Since(start) > time.Minute {
				b.Fatal("no copy within a minute")
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		first := sink.Stats().First
		if first.Before(start) {
			b.Fatalf("a copy came in %v before the send was created", start.Sub(first))
		}
		times = append(times, first.Sub(start))
		if err := svc.Cancel(ctx, snd.ID, "benchmark"); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			s, err := svc.Get(ctx, snd.ID)
			if err != nil {
				b.Fatal(err)
			}
			if s.State.Final() || time.Now().After(deadline) {
				break
			}
		}
		// The copies in flight at the cancel come in.
		for last := int64(-1); sink.Stats().Messages != last; time.Sleep(500 * time.Millisecond) {
			last = sink.Stats().Messages
		}
	}
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(times[len(times)/2]), "ms-to-first-250")
	b.ReportMetric(ms(times[len(times)-1]), "ms-worst")
	b.Logf("%d readers: first 250 after %v", n, times)
}
