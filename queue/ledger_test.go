package queue_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// importReaders adds n active readers of list, r00000@example.jp onwards,
// through the CSV importer (much quicker than one Add each).
func (e *env) importReaders(list string, first, n int) {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("email,regions,topics,consent_at,consent_method,consent_text\n")
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "r%05d@example.jp,\"jp,us,eu,asia,intl\",\"activities,policy,reports\",2025-10-01,api,同意\n", i)
	}
	res, err := e.store.Import(e.ctx, strings.NewReader(b.String()), subscribers.ImportOptions{List: list})
	if err != nil || len(res.Errors) > 0 || res.Added != n {
		e.t.Fatalf("import %d readers: %v %+v", n, err, res)
	}
}

// Defect 3 of issue 18: a second send of an issue to a list it went to
// is refused, naming the earlier send. Again sends it to the readers who
// have not had it: those the relay accepted a copy for (on the first
// attempt or after a retry) are left out and counted apart; one whose copy
// was refused gets it. While a send of the issue runs, even Again is
// refused.
func TestSecondSendOfAnIssueIsRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, smtp: []testutilOpt{
			failTimes("retried@example.jp", 1, 451, "4.3.0"), failAlways("refused@example.jp", 554, "5.6.0")}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for _, a := range []string{"a@example.jp", "retried@example.jp", "refused@example.jp"} {
			e.addReader(a, "", audience.All())
		}
		first, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		if c := e.waitState(first.ID, queue.Done, 20*time.Second).Counts; c.Sent != 2 || c.FailedPerm != 1 {
			t.Fatalf("first send: %+v, want 2 sent, 1 refused", c)
		}
		again, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err == nil {
			t.Fatalf("a second send of %s to %s was accepted (send %d)", is.Slug, testList, again.ID)
		}
		if want := fmt.Sprintf("send %d", first.ID); !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name the earlier send (%s)", err, want)
		}
		var dup *queue.DuplicateError
		if !errors.As(err, &dup) || !errors.Is(err, queue.ErrAlreadySent) || dup.Earlier.ID != first.ID ||
			dup.Earlier.State != queue.Done || dup.Earlier.Sent != 2 || dup.Earlier.CreatedAt.IsZero() {
			t.Errorf("refusal %#v, want a *DuplicateError naming send %d, done, 2 sent", err, first.ID)
		}

		// Two readers join; Again sends to them and to the one refused.
		e.addReader("b@example.jp", "", audience.All())
		e.addReader("c@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList, Again: true})
		if err != nil {
			t.Fatal(err)
		}
		c := e.waitState(snd.ID, queue.Done, 20*time.Second).Counts
		if c.Planned != 3 || c.Sent != 2 || c.FailedPerm != 1 || c.AlreadyHad != 2 {
			t.Errorf("send again: %+v, want 3 planned (2 sent, 1 refused), 2 who had it left out", c)
		}
		for addr, want := range map[string]int{"a@example.jp": 1, "retried@example.jp": 1, "b@example.jp": 1, "c@example.jp": 1} {
			if n := len(e.smtp.MessagesTo(addr)); n != want {
				t.Errorf("%s got %d copies, want %d", addr, n, want)
			}
		}
		if n := e.smtp.Attempts("refused@example.jp"); n != 2 {
			t.Errorf("refused reader tried %d times, want once in each send", n)
		}
		// Again once more: nobody is left who has not had it.
		snd, err = e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList, Again: true})
		if err != nil {
			t.Fatal(err)
		}
		if c := e.waitState(snd.ID, queue.Done, 20*time.Second).Counts; c.Planned != 1 || c.AlreadyHad != 4 {
			t.Errorf("third send: %+v, want the refused reader planned, 4 left out", c)
		}

		// Another issue, scheduled for later: a second send of it is refused,
		// with Again too, while the first has not ended.
		later := *is
		later.Slug = "2025-12"
		sched, err := e.svc.Create(e.ctx, queue.NewSend{Issue: &later, List: testList, At: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Create(e.ctx, queue.NewSend{Issue: &later, List: testList, Again: true})
		if !errors.As(err, &dup) || dup.Earlier.ID != sched.ID || !dup.Earlier.Running() || !dup.Again {
			t.Errorf("Again while send %d is scheduled: %v, want refused", sched.ID, err)
		}
		// Cancelled before any copy went, it leaves no trace.
		if err := e.svc.Cancel(e.ctx, sched.ID, "wrong date"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Create(e.ctx, queue.NewSend{Issue: &later, List: testList, At: time.Now().Add(time.Hour)}); err != nil {
			t.Errorf("a send after one cancelled before it sent: %v", err)
		}
	})
}

// Create with a key is idempotent: the same request again (a double
// click, a retried API call, or two at once) gets the same send; another
// request with the key is refused and changes nothing.
func TestCreateWithAKey(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		ns := queue.NewSend{Issue: is, List: testList, Key: "editor:k1"}
		first, err := e.svc.Create(e.ctx, ns)
		if err != nil || first.Replayed {
			t.Fatalf("first: %+v, %v", first, err)
		}
		again, err := e.svc.Create(e.ctx, ns)
		if err != nil || again.ID != first.ID || !again.Replayed {
			t.Errorf("same key, same request: %+v, %v; want send %d replayed", again, err, first.ID)
		}
		other := ns
		other.Filter = &audience.Prefs{Regions: []audience.Region{audience.JP}}
		if _, err := e.svc.Create(e.ctx, other); !errors.Is(err, queue.ErrKeyReused) || !strings.Contains(err.Error(), fmt.Sprintf("send %d", first.ID)) {
			t.Errorf("same key, another request: %v, want ErrKeyReused naming send %d", err, first.ID)
		}

		// Two at once with a new key: one send.
		later := *is
		later.Slug = "2025-12"
		ns = queue.NewSend{Issue: &later, List: testList, Key: "editor:k2"}
		var (
			wg   sync.WaitGroup
			ids  [4]int64
			errs [4]error
		)
		for i := range ids {
			wg.Go(func() {
				snd, err := e.svc.Create(e.ctx, ns)
				if err == nil {
					ids[i] = snd.ID
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Errorf("request %d at once: send %d, %v; want send %d", i, ids[i], errs[i], ids[0])
			}
		}
		var n int
		if err := e.queryRow(`SELECT count(*) FROM sends`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d sends (%v), want 2", n, err)
		}
	})
}

// Defect 4 of issue 18: a send to a list that does not exist is refused
// when it is created.
func TestSendToUnknownListIsRefused(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: "monthy"})
		if err == nil {
			t.Fatalf("send %d to list monthy (no such list) was accepted", snd.ID)
		}
		if !strings.Contains(err.Error(), `"monthy"`) {
			t.Errorf("refusal %q does not name the list", err)
		}
		var n int
		if err := e.queryRow(`SELECT count(*) FROM sends`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d sends recorded (%v), want none", n, err)
		}
	})
}

// Defect 4 of issue 18: a send that cannot plan ends failed, with the
// reason, after bounded retries; never an endless planning.
func TestSendThatCannotPlanFails(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		if _, err := e.store.CreateList(e.ctx, "weekly", "週刊"); err != nil {
			t.Fatal(err)
		}
		gone, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: "weekly"})
		if err != nil {
			t.Fatal(err)
		}
		broken, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		// The list goes away before planning. The other list's readers cannot
		// be read any more (a damaged store): each attempt fails.
		if _, err := e.subDB.ExecContext(e.ctx, `DELETE FROM lists WHERE key = 'weekly'`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.subDB.ExecContext(e.ctx, `ALTER TABLE memberships RENAME TO memberships_lost`); err != nil {
			t.Fatal(err)
		}
		e.startWorker()
		for _, c := range []struct {
			id   int64
			want string
		}{{gone.ID, `list "weekly" does not exist`}, {broken.ID, "memberships"}} {
			s := e.waitState(c.id, "failed", 30*time.Second)
			if !strings.Contains(s.LastError, c.want) {
				t.Errorf("send %d failed with %q, want the reason (%s)", c.id, s.LastError, c.want)
			}
		}
		if n := len(e.smtp.Messages()); n != 0 {
			t.Errorf("%d messages went out", n)
		}
	})
}

// Defect 5 of issue 18: a progress read does not look at delivery rows.
// With the rows of a finished send removed behind its back, its figures
// stand: they were kept as the outcomes were recorded.
func TestProgressReadDoesNotCountRows(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, cfg: queue.Config{BatchSize: 10}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.importReaders(testList, 0, 50)
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 50 {
			t.Fatalf("counts %+v, want 50 sent", done.Counts)
		}
		for _, q := range []string{`DELETE FROM batch_sent WHERE send_id = ?`, `DELETE FROM deliveries WHERE send_id = ?`} {
			if _, err := e.exec(q, snd.ID); err != nil {
				t.Fatal(err)
			}
		}
		s, err := e.svc.Get(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Counts != done.Counts {
			t.Errorf("figures recounted from the rows: %+v, were %+v", s.Counts, done.Counts)
		}
	})
}

// Defect 6 of issue 18: Create plans the first batch and queues it before
// the rest of the list is planned, so the first copy does not wait for
// the planning task to be picked up.
func TestCreateQueuesTheFirstBatch(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true, cfg: queue.Config{BatchSize: 20}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.importReaders(testList, 0, 100)
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		insp := asynq.NewInspectorFromRedisClient(e.rdb)
		tasks, err := insp.ListPendingTasks(queue.QueueNewsletter)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, task := range tasks {
			types = append(types, task.Type)
		}
		if len(tasks) == 0 || tasks[0].ID != queue.BatchTaskID(snd.ID, snd.UID, 0) {
			t.Errorf("queued after Create: %v, want batch 0 first", types)
		}
		var rows int
		if err := e.queryRow(`SELECT count(*) FROM deliveries WHERE send_id = ? AND batch = 0`, snd.ID).Scan(&rows); err != nil || rows != 20 {
			t.Errorf("batch 0 has %d deliveries (%v), want 20", rows, err)
		}
		// The rest is planned by the planning task, from where Create stopped.
		e.startWorker()
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Planned != 100 || done.Counts.Sent != 100 {
			t.Errorf("counts %+v, want 100 planned and sent", done.Counts)
		}
		for i := range 100 {
			if n := len(e.smtp.MessagesTo(fmt.Sprintf("r%05d@example.jp", i))); n != 1 {
				t.Errorf("r%05d got %d copies", i, n)
			}
		}
	})
}
