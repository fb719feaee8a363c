package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // schedules in Asia/Tokyo work in minimal containers

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// IssueLoader finds the issue with the given slug ("2026-05") for the
// monthly schedule.
type IssueLoader func(ctx context.Context, slug string) (*compose.Issue, error)

// Schedule is the optional monthly send.
type Schedule struct {
	// Spec is a cron spec in Location, e.g. "0 9 1 * *" (09:00 on the 1st).
	Spec string
	// Location defaults to Asia/Tokyo.
	Location *time.Location
	// List and Filter are those of every monthly send.
	List   string
	Filter *audience.Prefs
	// NotAfter bounds how late a tick may still start its send. Default 6h.
	NotAfter time.Duration
	// Load finds the month's issue. Required with Spec.
	Load IssueLoader
	// Every, if set, runs every few seconds in the process that holds the
	// schedule (package rhythm applies the console's send rules there).
	// With Every, Spec may be empty.
	Every func(ctx context.Context)
}

// SchedulerLeaseTTL is how long the scheduler lease outlives a dead holder.
const SchedulerLeaseTTL = 15 * time.Second

// SchedulerHeartbeat is how often the scheduler writes its entries to
// Redis, where `asynq` tools and the web console see them.
const SchedulerHeartbeat = 2 * time.Second

const schedulerLeaseKey = "tayori:scheduler:lease"

type monthlyPayload struct {
	List     string          `json:"list"`
	Filter   *audience.Prefs `json:"filter,omitempty"`
	NotAfter time.Duration   `json:"not_after"`
}

// RunScheduler runs the monthly schedule until ctx ends. Only the process
// holding a Redis lease schedules, so several `tayori run`s never enqueue
// the same tick twice; the others wait to take over if the holder dies.
// Each tick only creates and plans the month's send, identified by the
// month and the list, so a duplicate tick creates nothing.
func (s *Service) RunScheduler(ctx context.Context, sch Schedule) error {
	if (sch.Spec == "" && sch.Every == nil) || (sch.Spec != "" && (sch.List == "" || sch.Load == nil)) {
		return fmt.Errorf("%w: schedule needs Spec, List and Load, or Every", ErrInvalid)
	}
	if sch.Location == nil {
		loc, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			return fmt.Errorf("queue: schedule: %w", err)
		}
		sch.Location = loc
	}
	if sch.NotAfter <= 0 {
		sch.NotAfter = 6 * time.Hour
	}
	s.mu.Lock()
	s.schedule = &sch
	s.mu.Unlock()
	holder := newToken()
	lease := newLease(s.rdb, schedulerLeaseKey, holder, s.schedTTL)
	for {
		ok, err := lease.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler lease", "err", err)
		}
		if ok {
			s.log.InfoContext(ctx, "scheduler lease taken", "spec", sch.Spec, "location", sch.Location.String())
			if err := s.holdSchedule(ctx, sch, lease); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.schedTTL / 3):
		}
	}
}

// holdSchedule schedules while this process holds l: the catch-up of a
// missed tick, then Asynq's scheduler and Every. A goroutine of its own
// renews l meanwhile, so that no slow step (a catch-up or an Every that
// waits on the store) delays a renewal until the lease lapses under a
// live holder. Once l is lost (a renewal finds it gone, or none
// succeeded before its end, as a starved process finds on waking),
// everything here stops: the catch-up's and Every's context ends and
// the Asynq scheduler is shut down. Around that moment the old and the
// new holder may both fire the same tick; the month's send is unique in
// the store (monthlyUID, one per month and list), so the second creates
// nothing.
func (s *Service) holdSchedule(ctx context.Context, sch Schedule, l *lease) error {
	hctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		defer stop()
		if err := l.keep(hctx); err != nil {
			s.log.Warn("scheduler lease lost", "err", err)
		}
	}()
	defer func() {
		stop()
		<-kept
		l.release()
	}()
	if sch.Spec != "" {
		if err := s.catchUpMonthly(hctx, sch); err != nil && hctx.Err() == nil {
			s.log.Error("monthly send not caught up", "err", err)
		}
	}
	return s.runScheduler(hctx, sch)
}

// runScheduler runs Asynq's scheduler for the monthly spec, and Every,
// until ctx ends.
func (s *Service) runScheduler(ctx context.Context, sch Schedule) error {
	if ctx.Err() != nil {
		return nil
	}
	payload, _ := json.Marshal(monthlyPayload{List: sch.List, Filter: sch.Filter, NotAfter: sch.NotAfter})
	sc := asynq.NewSchedulerFromRedisClient(s.rdb, &asynq.SchedulerOpts{
		Location:          sch.Location,
		Logger:            NewAsynqLogger(s.log.With("component", "scheduler")),
		LogLevel:          asynq.WarnLevel,
		HeartbeatInterval: SchedulerHeartbeat,
		PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
			if err != nil {
				s.log.Error("monthly tick not enqueued", "err", err)
			}
		},
	})
	if sch.Spec != "" {
		if _, err := sc.Register(sch.Spec, asynq.NewTask(TypeSendMonthly, payload),
			asynq.Queue(QueueNewsletter), asynq.MaxRetry(5), asynq.Timeout(time.Hour)); err != nil {
			return fmt.Errorf("queue: schedule %q: %w", sch.Spec, err)
		}
	}
	if err := sc.Start(); err != nil {
		return fmt.Errorf("queue: start scheduler: %w", err)
	}
	defer sc.Shutdown()
	tick := time.NewTicker(s.schedTTL / 3)
	defer tick.Stop()
	for {
		if sch.Every != nil {
			sch.Every(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (s *Service) handleMonthly(ctx context.Context, t *asynq.Task) error {
	var p monthlyPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.List == "" {
		return errPayload(TypeSendMonthly, fmt.Errorf("%v", err))
	}
	s.mu.Lock()
	sch := s.schedule
	s.mu.Unlock()
	if sch == nil || sch.Load == nil {
		return errors.New("queue: monthly tick on a process without a schedule loader")
	}
	now := s.cfg.Now().In(sch.Location)
	tick, late := monthlyTick(sch.Spec, sch.Location, now, p.NotAfter)
	if late {
		s.log.WarnContext(ctx, "monthly tick handled too late: no send", "tick", tick, "handled", now, "not_after", p.NotAfter, "list", p.List)
		return nil
	}
	return s.createMonthly(ctx, sch, tick.Format("2006-01"), p.List, p.Filter, tick.Add(p.NotAfter))
}

// monthlyTick returns the tick a monthly task handled at now stands for:
// the spec's latest tick at or before now, so that a task handled after
// midnight at a month's end makes the month of its tick, not the next.
// late is true if that tick is more than notAfter before now (a task
// left in the queue, which must not make a send). A spec that fires too
// often to look back over (tests' "@every 1s") or that the process does
// not know stands for now.
func monthlyTick(spec string, loc *time.Location, now time.Time, notAfter time.Duration) (tick time.Time, late bool) {
	if t, ok := lastTick(spec, loc, now, notAfter); ok {
		return t, false
	}
	if t, ok := lastTick(spec, loc, now, 62*24*time.Hour); ok {
		return t, true
	}
	return now, false
}

// createMonthly creates the month's send (slug "2006-01") to list, unless
// it exists already.
func (s *Service) createMonthly(ctx context.Context, sch *Schedule, slug, list string, filter *audience.Prefs, notAfter time.Time) error {
	issue, err := sch.Load(ctx, slug)
	if err != nil {
		return fmt.Errorf("queue: monthly send %s: %w", slug, err)
	}
	ns := NewSend{Issue: issue, List: list, Filter: filter, NotAfter: notAfter}
	ns.uid = monthlyUID(slug, list)
	snd, err := s.Create(ctx, ns)
	if errors.Is(err, ErrDuplicate) {
		s.log.InfoContext(ctx, "monthly send exists already", "issue", slug, "list", list)
		return nil
	}
	var dup *DuplicateError
	if errors.As(err, &dup) {
		// The month's issue went (or goes) to the list in an earlier send:
		// this tick's own, retried, or one an editor made.
		s.log.InfoContext(ctx, "monthly send not created: the issue went to the list in an earlier send", "issue", slug, "list", list,
			"send_id", dup.Earlier.ID, "state", dup.Earlier.State)
		return nil
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "monthly send created", "send_id", snd.ID, "issue", slug)
	return nil
}

// catchUpMonthly creates the send of the schedule's last tick if that
// tick was less than NotAfter ago and its send does not exist: the tick
// was lost (its task went with Redis, or no process held the schedule
// then). Asynq's scheduler does not catch up missed ticks by itself.
func (s *Service) catchUpMonthly(ctx context.Context, sch Schedule) error {
	now := s.cfg.Now().In(sch.Location)
	tick, ok := lastTick(sch.Spec, sch.Location, now, sch.NotAfter)
	if !ok {
		return nil
	}
	slug := tick.Format("2006-01")
	exists, err := s.ledger.UIDExists(ctx, monthlyUID(slug, sch.List))
	if err != nil {
		return fmt.Errorf("queue: monthly send %s: %w", slug, err)
	}
	if exists {
		return nil
	}
	s.log.WarnContext(ctx, "monthly tick missed; creating its send now", "tick", tick, "issue", slug, "list", sch.List)
	return s.createMonthly(ctx, &sch, slug, sch.List, sch.Filter, tick.Add(sch.NotAfter))
}

// lastTick returns the latest time at or before now, and after
// now-within, at which the cron spec fires; ok is false if there is none
// (or the spec fires too often to look: more than 1,000 times in within).
func lastTick(spec string, loc *time.Location, now time.Time, within time.Duration) (time.Time, bool) {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return time.Time{}, false
	}
	var last time.Time
	t := now.Add(-within).In(loc)
	for range 1000 {
		next := sched.Next(t)
		if next.IsZero() || next.After(now) {
			return last, !last.IsZero()
		}
		last, t = next, next
	}
	return time.Time{}, false
}

// monthlyUID identifies the send of one month to one list.
func monthlyUID(slug, list string) string {
	h := sha256.Sum256([]byte("monthly\x00" + slug + "\x00" + list))
	return "m" + hex.EncodeToString(h[:6])
}

// lease is a Redis key held by one process, renewed while alive.
type lease struct {
	rdb    redis.UniversalClient
	key    string
	holder string
	ttl    time.Duration
	// until is when the lease runs out at the latest, as far as this
	// process knows: the start of the last successful acquire or renewal
	// plus ttl (Redis counts from a moment after that start).
	until time.Time
}

func newLease(rdb redis.UniversalClient, key, holder string, ttl time.Duration) *lease {
	return &lease{rdb: rdb, key: key, holder: holder, ttl: ttl}
}

func (l *lease) acquire(ctx context.Context) (bool, error) {
	start := time.Now()
	ok, err := l.rdb.SetNX(ctx, l.key, l.holder, l.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("queue: lease %s: %w", l.key, err)
	}
	if ok {
		l.until = start.Add(l.ttl)
	}
	return ok, nil
}

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

func (l *lease) renew(ctx context.Context) (bool, error) {
	start := time.Now()
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.holder, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("queue: renew lease %s: %w", l.key, err)
	}
	if n == 1 {
		l.until = start.Add(l.ttl)
	}
	return n == 1, nil
}

// errLeaseLapsed: the lease was not renewed before it ran out.
var errLeaseLapsed = errors.New("not renewed before it ran out")

// errLeaseTaken: a renewal found the lease held by another process, or
// by none (it ran out meanwhile).
var errLeaseTaken = errors.New("taken over, or ran out")

// keep renews an acquired lease every ttl/3 until ctx ends (nil) or the
// lease is lost: a renewal finds another holder or none (errLeaseTaken),
// fails, or has not succeeded before the lease's end less a
// sixth of ttl (errLeaseLapsed), the margin a holder stops short of it.
func (l *lease) keep(ctx context.Context) error {
	margin := l.ttl / 6
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		end := l.until.Add(-margin)
		if !time.Now().Before(end) {
			return fmt.Errorf("queue: lease %s: %w", l.key, errLeaseLapsed)
		}
		rctx, cancel := context.WithDeadline(ctx, end)
		ok, err := l.renew(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("queue: lease %s: %w", l.key, errLeaseTaken)
		}
	}
}

func (l *lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	releaseScript.Run(ctx, l.rdb, []string{l.key}, l.holder)
}
