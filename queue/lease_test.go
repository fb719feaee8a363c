package queue_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// startChildWorker runs a worker process (see runChildWorker) on e's
// database, Redis and relay; it is killed when the test ends.
func startChildWorker(t *testing.T, e *env, kv ...string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=worker", "CHILD_DB="+e.dbPath, "CHILD_LEDGER="+e.ledgerURL,
		"CHILD_REDIS="+testutil.RedisDBURL(t, e.rdbN), "CHILD_SMTP="+e.smtp.URL())
	for i := 0; i+1 < len(kv); i += 2 {
		child.Env = append(child.Env, kv[i]+"="+kv[i+1])
	}
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	return child
}

// claims returns the claim of each batch of a send ("" once it is done).
func (e *env) claims(sendID int64) map[int64]string {
	e.t.Helper()
	rows, err := e.query(`SELECT batch, claim, done FROM batch_claims WHERE send_id = ?`, sendID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var (
			b     int64
			claim string
			done  bool
		)
		if err := rows.Scan(&b, &claim, &done); err != nil {
			e.t.Fatal(err)
		}
		if done {
			claim = ""
		}
		out[b] = claim
	}
	return out
}

// A worker killed with SIGKILL leaves its batches claimed. Another worker
// takes them over within seconds (the dead worker's lease on its claims
// runs out and every worker's watchdog re-enqueues such batches), not
// after asynq's own recovery of the orphaned tasks (its 30 s lease plus
// its recoverer's round: 70–80 s). Each round kills a worker that holds
// every batch of a send, with another worker alive and idle, and measures
// the time from the kill until each of the dead worker's batches has a
// new claim (or is done). TAYORI_TEST_KILLS sets the number of rounds.
func TestKilledWorkersBatchesAreReclaimedWithinSeconds(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		rounds := 3
		if n, err := strconv.Atoi(os.Getenv("TAYORI_TEST_KILLS")); err == nil && n > 0 {
			rounds = n
		}
		const readers, batch = 40, 10
		// Until worker a holds every batch, the relay answers slowly
		// enough that no batch can finish first (on a loaded machine the
		// last batches are planned and claimed seconds after the first
		// began: with 100 ms a copy, the first could be done by then and
		// worker a would never hold them all).
		var allClaimed atomic.Bool
		slow := testutil.FailFunc(func(string, int) *testutil.Fault {
			d := 100 * time.Millisecond
			if !allClaimed.Load() {
				d = time.Second
			}
			f := testutil.Slow(d)
			return &f
		})
		e := newEnv(t, envOpts{engine: eng, noWorker: true, smtp: []testutil.SMTPOption{slow}, cfg: queue.Config{BatchSize: batch}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		var stalls []time.Duration
		for round := range rounds {
			// A list of its own per round: one send of the issue per list.
			list := fmt.Sprintf("round%d", round)
			if _, err := e.store.CreateList(e.ctx, list, list); err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for i := range readers {
				addr := fmt.Sprintf("k%d-%02d@example.jp", round, i)
				p := audience.All()
				if _, err := e.store.Add(e.ctx, subscribers.NewSubscriber{Email: addr, Prefs: &p, Lists: []string{list},
					Method: subscribers.API, Cause: "test",
					Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, FormVersion: "test", Text: "同意します"},
				}); err != nil {
					t.Fatal(err)
				}
				addrs = append(addrs, addr)
			}
			allClaimed.Store(false)
			a := startChildWorker(t, e, "CHILD_CONCURRENCY", "8", "CHILD_BATCH", strconv.Itoa(batch))
			snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: list})
			if err != nil {
				t.Fatal(err)
			}
			// Worker a plans and claims every batch.
			deadline := time.Now().Add(30 * time.Second)
			for {
				c := e.claims(snd.ID)
				if len(c) == readers/batch && !slices.Contains(slices.Collect(maps.Values(c)), "") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: worker a claimed %v", round, c)
				}
				time.Sleep(20 * time.Millisecond)
			}
			allClaimed.Store(true)
			// Worker b starts, then a dies.
			bctx, stopB := context.WithCancel(e.ctx)
			srv := e.svc.NewServer(queue.ServerConfig{Concurrency: 8, ShutdownTimeout: 5 * time.Second,
				TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond})
			bdone := make(chan struct{})
			go func() { defer close(bdone); srv.Run(bctx) }()
			time.Sleep(200 * time.Millisecond)
			if err := a.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			a.Wait()
			killed := time.Now()
			held := e.claims(snd.ID)
			atKill := len(e.smtp.Messages())
			var stall time.Duration
			for {
				now := e.claims(snd.ID)
				waiting := 0
				for b, c := range held {
					if c != "" && now[b] == c {
						waiting++
					}
				}
				if waiting == 0 {
					stall = time.Since(killed)
					break
				}
				if time.Since(killed) > 20*time.Second {
					t.Fatalf("round %d: %d of the killed worker's batches not taken over after %v", round, waiting, time.Since(killed).Round(time.Millisecond))
				}
				time.Sleep(20 * time.Millisecond)
			}
			stalls = append(stalls, stall)
			e.waitState(snd.ID, queue.Done, 60*time.Second)
			stopB()
			<-bdone
			dups := 0
			for _, addr := range addrs {
				n := len(e.smtp.MessagesTo(addr))
				if n == 0 {
					t.Errorf("round %d: %s lost", round, addr)
				}
				dups += max(n-1, 0)
			}
			t.Logf("round %d: worker killed after %d messages holding %d batches; taken over %v after the kill; %d duplicates",
				round, atKill, len(held), stall.Round(time.Millisecond), dups)
			if bound := readers / batch * (mailer.MaxInFlight + 1); dups > bound {
				t.Errorf("round %d: %d duplicates, more than the %d copies that can be in flight", round, dups, bound)
			}
		}
		slices.Sort(stalls)
		t.Logf("time from SIGKILL to takeover over %d kills: median %v, min %v, max %v", len(stalls),
			stalls[len(stalls)/2].Round(time.Millisecond), stalls[0].Round(time.Millisecond), stalls[len(stalls)-1].Round(time.Millisecond))
	})
}
