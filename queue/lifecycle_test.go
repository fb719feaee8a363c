package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
)

func TestPlanTwicePlansNothingNew(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true, cfg: queue.Config{BatchSize: 2}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp", "d@example.jp", "e@example.jp"} {
			e.addReader(a, "", audience.All())
		}
		e.addReader("none@example.jp", "", prefs("us", "reports")) // nothing for them
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		// Create planned and queued the first batch; Plan queues it again (a
		// no-op) and plans the rest.
		if snd.State != queue.Planning || snd.Counts.Planned != 2 {
			t.Errorf("after Create: %s %+v, want the first batch of 2 planned", snd.State, snd.Counts)
		}
		first, err := e.svc.Plan(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if first.Planned != 3 || first.Skipped != 1 || first.Batches != 3 {
			t.Errorf("first plan %+v, want 3 more planned in 2 more batches (and the first again), 1 skipped", first)
		}
		again, err := e.svc.Plan(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Planned != 0 || again.Batches != 0 {
			t.Errorf("second plan %+v, want nothing", again)
		}
		// A planner that crashed before saving its cursor runs again from the
		// start: rows and tasks exist, so nothing new appears.
		if _, err := e.exec(`UPDATE sends SET state = 'planning', plan_cursor = 0, plan_done = 0, batches = 0 WHERE id = ?`, snd.ID); err != nil {
			t.Fatal(err)
		}
		rerun, err := e.svc.Plan(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rerun.Planned != 0 {
			t.Errorf("re-run planned %d new deliveries", rerun.Planned)
		}
		var rows int
		e.queryRow(`SELECT count(*) FROM deliveries WHERE send_id = ?`, snd.ID).Scan(&rows)
		if rows != 5 {
			t.Errorf("%d delivery rows, want 5", rows)
		}
		info, err := asynq.NewInspectorFromRedisClient(e.rdb).GetQueueInfo(queue.QueueNewsletter)
		if err != nil {
			t.Fatal(err)
		}
		// One plan task and three batch tasks, whatever ran twice.
		if info.Pending != 4 {
			t.Errorf("%d pending tasks, want 4 (plan + 3 batches)", info.Pending)
		}
		e.startWorker()
		e.waitState(snd.ID, queue.Done, 20*time.Second)
		if n := len(e.smtp.Messages()); n != 5 {
			t.Errorf("%d messages, want 5", n)
		}
	})
}

func TestUnsubscribeOrNewPrefsDuringSend(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		leaver := e.addReader("leaver@example.jp", "", audience.All())
		mover := e.addReader("mover@example.jp", "", prefs("jp", "activities,policy,reports"))
		e.addReader("stayer@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Plan(e.ctx, snd.ID); err != nil {
			t.Fatal(err)
		}
		// After planning, before delivery: one reader leaves, one now wants
		// only US policy.
		if err := e.store.Unsubscribe(e.ctx, leaver.ID, testList, "test"); err != nil {
			t.Fatal(err)
		}
		usOnly := prefs("us", "policy")
		if _, err := e.store.Update(e.ctx, mover.ID, subscribersUpdate(usOnly)); err != nil {
			t.Fatal(err)
		}
		e.startWorker()
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 2 || done.Counts.Skipped != 1 {
			t.Errorf("counts %+v, want 2 sent, 1 skipped", done.Counts)
		}
		if n := e.smtp.Attempts("leaver@example.jp"); n != 0 {
			t.Errorf("unsubscribed reader: %d SMTP transactions, want none", n)
		}
		msgs := e.smtp.MessagesTo("mover@example.jp")
		if len(msgs) != 1 {
			t.Fatalf("mover got %d messages", len(msgs))
		}
		m := checkMessage(t, msgs[0].Raw, is.Title)
		in, out := wantedHeadlines(is, usOnly)
		for _, hl := range in {
			if !strings.Contains(m.html, hl) {
				t.Errorf("mover lacks now-wanted %q", hl)
			}
		}
		for _, hl := range out {
			if strings.Contains(m.html, hl) {
				t.Errorf("mover got no-longer-wanted %q", hl)
			}
		}
	})
}

func TestPauseResumeCancel(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true, cfg: queue.Config{BatchSize: 2}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp", "d@example.jp", "e@example.jp"} {
			e.addReader(a, "", audience.All())
		}
		paused, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		other := *is
		other.Slug = "2025-11-extra" // one issue goes to a list in one send at a time
		cancelled, err := e.svc.Create(e.ctx, queue.NewSend{Issue: &other, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Plan(e.ctx, paused.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Pause(e.ctx, paused.ID, "editor: typo in the intro"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Pause(e.ctx, paused.ID, "again"); !errors.Is(err, queue.ErrState) {
			t.Errorf("second pause: %v, want ErrState", err)
		}
		if err := e.svc.Cancel(e.ctx, cancelled.ID, "editor: wrong list"); err != nil {
			t.Fatal(err)
		}
		e.startWorker()
		time.Sleep(700 * time.Millisecond)
		if n := len(e.smtp.Messages()); n != 0 {
			t.Fatalf("%d messages sent while paused or cancelled", n)
		}
		s, _ := e.svc.Get(e.ctx, paused.ID)
		if s.State != queue.Paused || s.Counts.Queued != 5 || s.PauseReason != "editor: typo in the intro" {
			t.Errorf("paused send: %s %+v %q", s.State, s.Counts, s.PauseReason)
		}
		if err := e.svc.Resume(e.ctx, paused.ID); err != nil {
			t.Fatal(err)
		}
		done := e.waitState(paused.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 5 {
			t.Errorf("resumed send counts %+v", done.Counts)
		}
		c := e.waitState(cancelled.ID, queue.Cancelled, time.Second)
		if c.Counts.Sent != 0 || c.LastError != "editor: wrong list" {
			t.Errorf("cancelled send %+v %q", c.Counts, c.LastError)
		}
		if n := len(e.smtp.Messages()); n != 5 {
			t.Errorf("%d messages in all, want 5 (the resumed send only)", n)
		}
		for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp", "d@example.jp", "e@example.jp"} {
			if n := len(e.smtp.MessagesTo(a)); n != 1 {
				t.Errorf("%s got %d", a, n)
			}
		}
	})
}

func TestScheduledSendPastNotAfterIsNotSent(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, noWorker: true})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("a@example.jp", "", audience.All())
		now := time.Now()
		late, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList, At: now.Add(200 * time.Millisecond), NotAfter: now.Add(300 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		other := *is
		other.Slug = "2025-11-extra" // one issue goes to a list in one send at a time
		onTime, err := e.svc.Create(e.ctx, queue.NewSend{Issue: &other, List: testList, At: now.Add(time.Second), NotAfter: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := e.svc.Get(e.ctx, late.ID); s.State != queue.Scheduled {
			t.Fatalf("state %s, want scheduled", s.State)
		}
		time.Sleep(500 * time.Millisecond) // no worker ran in time
		e.startWorker()
		s := e.waitState(late.ID, queue.Cancelled, 10*time.Second)
		if !strings.Contains(s.LastError, "not-after") {
			t.Errorf("reason %q does not say why", s.LastError)
		}
		d := e.waitState(onTime.ID, queue.Done, 10*time.Second)
		// Times are stored to the millisecond.
		if d.StartedAt.Before(now.Add(time.Second).Truncate(time.Millisecond)) {
			t.Errorf("scheduled send started at %v, before its time %v", d.StartedAt, now.Add(time.Second))
		}
		if n := len(e.smtp.Messages()); n != 1 {
			t.Errorf("%d messages, want 1 (the on-time send)", n)
		}
	})
}

// pausingDirectory pauses a send when planning reads past the end of the
// list: after planning's last look at the send's state, before it marks
// the send planned (as a policy refusal in an early batch can).
type pausingDirectory struct {
	queue.Directory
	pause func()
}

func (d pausingDirectory) Recipients(ctx context.Context, list string, afterID int64, limit int) ([]queue.Recipient, error) {
	r, err := d.Directory.Recipients(ctx, list, afterID, limit)
	if err == nil && len(r) == 0 && afterID > 0 {
		d.pause()
	}
	return r, err
}

// A send paused while its planning ends is planned all the same: resumed,
// it sends and finishes (it used to stay in planning for ever).
func TestPauseAsPlanningEnds(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		var (
			e    *env
			once sync.Once
			id   int64
		)
		e = newEnv(t, envOpts{engine: eng, noWorker: true, cfg: queue.Config{BatchSize: 2}, directory: func(d queue.Directory) queue.Directory {
			return pausingDirectory{d, func() {
				once.Do(func() {
					if err := e.svc.Pause(e.ctx, id, "policy refusal"); err != nil {
						t.Error(err)
					}
				})
			}}
		}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		for _, a := range []string{"a@example.jp", "b@example.jp", "c@example.jp"} {
			e.addReader(a, "", audience.All())
		}
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		id = snd.ID
		if _, err := e.svc.Plan(e.ctx, snd.ID); err != nil {
			t.Fatal(err)
		}
		s, err := e.svc.Get(e.ctx, snd.ID)
		if err != nil || s.State != queue.Paused || !s.PlanDone || s.Counts.Planned != 3 {
			t.Fatalf("after planning: %+v, %v; want paused, planned", s, err)
		}
		if err := e.svc.Resume(e.ctx, snd.ID); err != nil {
			t.Fatal(err)
		}
		e.startWorker()
		if c := e.waitState(snd.ID, queue.Done, 20*time.Second).Counts; c.Sent != 3 {
			t.Errorf("counts %+v, want 3 sent", c)
		}
	})
}
