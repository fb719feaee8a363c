package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers"
)

// deliveryService wires the concrete parts (subscriber store, renderer,
// mailer pool with the Redis rate limit and connection cap) into a
// queue.Service, once per process. Everything it opens is closed when run
// returns. The web server reuses it to enqueue confirmation mails.
func (a *app) deliveryService(ctx context.Context) (*queue.Service, error) {
	if a.delivery != nil {
		return a.delivery, nil
	}
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	store, err := a.subscriberStore(ctx)
	if err != nil {
		return nil, err
	}
	renderer, err := a.renderer()
	if err != nil {
		return nil, err
	}
	relay, err := mailer.ParseSMTPURL(a.cfg.SMTPURL)
	if err != nil {
		return nil, fmt.Errorf("TAYORI_SMTP_URL: %w", err)
	}
	popts := mailer.PoolOptions{MaxIdle: a.cfg.SMTPConns, Logger: a.logger, MaxMessagesPerConn: 1000}
	var svcRef atomic.Pointer[queue.Service]
	popts.OnRelayState = func(st mailer.RelayState) { a.reportRelay(svcRef.Load(), st) }
	mx := a.processMetrics()
	if lim := queue.NewLimiter(rdb, relay.Addr(), a.cfg.RatePerSecond); lim != nil {
		popts.Limiter = mx.Limiter(lim)
	}
	if sem := queue.NewSemaphore(rdb, relay.Addr(), a.cfg.SMTPMaxConns, 0); sem != nil {
		popts.Slots = sem
		a.closers = append(a.closers, sem.Close)
	}
	pool, err := mailer.NewPool(relay, popts)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, pool.Close)
	mx.WatchPool(pool)
	bopts := mailer.BuilderOptions{AllowInsecureUnsubscribe: insecureLocalURL(a.cfg.BaseURL), Location: a.location()}
	if a.cfg.DKIMDomain != "" && a.cfg.DKIMSelector != "" && a.cfg.DKIMKeyFile != "" {
		if bopts.DKIM, err = mailer.NewDKIMSigner(mailer.DKIMConfig{
			Domain: a.cfg.DKIMDomain, Selector: a.cfg.DKIMSelector, KeyFile: a.cfg.DKIMKeyFile,
		}); err != nil {
			return nil, err
		}
	}
	builder, err := mailer.NewBuilder(bopts)
	if err != nil {
		return nil, err
	}
	ledger, err := a.ledger(ctx)
	if err != nil {
		return nil, err
	}
	gate, err := a.sendGate(ctx)
	if err != nil {
		return nil, err
	}
	sender, err := a.newsletterSender(builder, pool, store)
	if err != nil {
		return nil, err
	}
	counter, err := a.clickCounter(ctx) // clicks.go
	if err != nil {
		return nil, err
	}
	svc, err := queue.New(ctx, ledger, rdb, queue.Config{
		From: a.cfg.From, ReplyTo: a.cfg.ReplyTo, BaseURL: a.cfg.BaseURL, FeedbackID: a.cfg.FeedbackID,
		Senders: a.cfg.SMTPConns,
	}, queue.Deps{
		Directory: bind.Directory{Store: store},
		Tokens:    store,
		Renderer:  bind.Renderer{R: renderer},
		Sender:    sender,
		Classify:  bind.Classify,
		Gate:      bind.Gate(gate),
		Events:    a.webhookEmitter(db), // the subscriber store's too
		Metrics:   mx,
		Clicks:    counter,
	}, a.logger)
	if err != nil {
		return nil, err
	}
	mx.WatchSends(svc)
	mx.WatchQueues(asynq.NewInspectorFromRedisClient(rdb))
	svcRef.Store(svc)
	a.delivery = svc
	a.closers = append(a.closers, svc.Close)
	return svc, nil
}

// reportRelay logs a change of the relay's state (its circuit breaker
// opened or closed) and records it for `tayori send status`, `send
// --wait` and the console.
func (a *app) reportRelay(svc *queue.Service, st mailer.RelayState) {
	if st.Up {
		a.logger.Info("SMTP relay reachable again", "relay", st.Relay)
	} else {
		a.logger.Warn("SMTP relay unreachable", "relay", st.Relay, "since", st.Since, "cause", st.Cause, "next_try", st.Retry)
	}
	if svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := svc.SetRelayState(ctx, bind.RelayState(st)); err != nil {
		a.logger.Warn("record the relay's state", "err", err)
	}
}

// relayNote says in a line that the relay is unreachable; "" when it is
// not (or nothing is known).
func relayNote(st queue.RelayState, loc *time.Location) string {
	if !st.Down {
		return ""
	}
	s := fmt.Sprintf("relay %s unreachable since %s", st.Relay, st.Since.In(loc).Format(time.TimeOnly))
	if st.Cause != "" {
		s += ": " + st.Cause
	}
	if time.Since(st.Updated) > 5*time.Minute {
		s += fmt.Sprintf(" (last report %s)", st.Updated.In(loc).Format(timeLayout))
	} else {
		s += "; the workers retry it and go on by themselves"
	}
	return s
}

// printRelay adds the relay's state to a send's status when it is down.
func (a *app) printRelay(ctx context.Context, w io.Writer, svc *queue.Service, s *queue.Send) {
	if s.State.Final() {
		return
	}
	if st, err := svc.RelayState(ctx); err == nil {
		if note := relayNote(st, a.location()); note != "" {
			fmt.Fprintf(w, "relay:    %s\n", note)
		}
	}
}

// newsletterSender is the Sender of newsletter copies: each copy's
// Message-ID, and (unless TAYORI_BOUNCE_LABEL is none) its envelope
// sender b+TOKEN@<label>.<from-domain>, carry a sealed token naming the
// send and the reader, which `tayori feedback ingest` reads back from
// bounces and complaints.
func (a *app) newsletterSender(builder *mailer.Builder, pool *mailer.Pool, store *subscribers.Store) (*bind.Sender, error) {
	tagger, err := a.tagger(store)
	if err != nil {
		return nil, err
	}
	return &bind.Sender{Builder: builder, Pool: pool, Tagger: tagger, NoVERP: a.cfg.BounceLabel == "none", Bulk: a.cfg.PrecedenceBulk}, nil
}

// tagger names copies for the sender and reads the names back for
// `tayori feedback ingest`: keys from the store's keyring, Message-IDs on
// the From domain, return paths on TAYORI_BOUNCE_LABEL.
func (a *app) tagger(store *subscribers.Store) (*feedback.Tagger, error) {
	domain, err := a.fromDomain()
	if err != nil {
		return nil, err
	}
	label := a.cfg.BounceLabel
	if label == "none" {
		label = ""
	}
	return feedback.NewTagger(store.Keyring(), feedback.TaggerConfig{Domain: domain, BounceLabel: label})
}

// insecureLocalURL reports whether u is plain http on a loopback host (the
// demo), where an http one-click unsubscribe URL is allowed.
func insecureLocalURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	h := p.Hostname()
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

func newSendCmd(a *app) *cobra.Command {
	var (
		list, regions, topics, at, testTo, variant string
		notAfter                                   time.Duration
		dryRun, wait, force, ignoreGate, again     bool
	)
	c := &cobra.Command{
		Use:   "send ISSUE --list L",
		Short: "Send an issue to a list, or test-send it",
		Long: `Send an issue (Markdown or plain-text file) to the readers of a list.

Each reader gets only the sections matching the regions and topics they
chose, optionally narrowed further with --regions/--topics. A worker
(tayori worker, or tayori run) does the sending.

  --dry-run        count the readers of each variant; send nothing
  --test-to ADDR   send one copy of each variant (or --variant K) to ADDR
  --at TIME        send later (RFC 3339, or "2006-01-02 15:04" in TAYORI_TIMEZONE)
  --not-after DUR  do not start later than DUR after --at (default 6h with --at)
  --wait           show progress until the send finishes
  --again          send an issue that went to the list before, to the
                   readers who have not had it

An issue goes to a list once: a second send of it is refused, naming the
earlier send. --again sends it to the readers of the list who have no copy
from an earlier send (new readers, readers whose copy failed), once no
earlier send of it to the list is still running.

A send is refused while the send gate is closed: an authentication
refusal (5.7.26, 5.7.515) or a complaint rate of 0.3% or more in the
last 7 days (see tayori feedback); --ignore-gate overrides it, logged.
Test sends and dry runs are never refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			issue, err := compose.Load(args[0])
			if err != nil {
				return err
			}
			// Lint errors stop only the real send: a dry run or a test
			// send shows them as warnings, since that is how an editor
			// looks at an issue before fixing it.
			if problems := compose.Check(issue); compose.HasErrors(problems) {
				rehearsal := dryRun || testTo != ""
				for _, p := range problems {
					if rehearsal {
						fmt.Fprintf(a.stderr, "warning: %s\n", p)
					} else {
						fmt.Fprintln(a.stderr, p)
					}
				}
				switch {
				case rehearsal:
					fmt.Fprintf(a.stderr, "warning: %s has errors; the real send will need them fixed or --force\n", args[0])
				case !force:
					fmt.Fprintf(a.stderr, "%s has errors: fix them (tayori compose check), or send anyway with --force\n", args[0])
					return errSilent
				}
			}
			filter, err := parseFilter(regions, topics)
			if err != nil {
				return err
			}
			if list == "" {
				list = subscribers.DefaultList
			}
			svc, err := a.deliveryService(ctx)
			if err != nil {
				return err
			}
			switch {
			case dryRun:
				return a.dryRun(ctx, svc, issue, list, filter)
			case testTo != "":
				copies, err := svc.TestSend(ctx, issue, list, filter, testTo, variant)
				if err != nil {
					return err
				}
				for _, c := range copies {
					fmt.Fprintf(a.stdout, "queued test copy of variant %s (%s; %d readers) to %s\n",
						short(c.Variant), c.Prefs.Key(), c.Readers, testTo)
				}
				return nil
			}
			ns := queue.NewSend{Issue: issue, List: list, Filter: filter, IgnoreGate: ignoreGate, Again: again}
			if at != "" {
				if ns.At, err = parseTime(at, a.cfg.Timezone); err != nil {
					return err
				}
				if notAfter == 0 {
					notAfter = 6 * time.Hour
				}
			}
			if notAfter > 0 {
				base := ns.At
				if base.IsZero() {
					base = time.Now()
				}
				ns.NotAfter = base.Add(notAfter)
			}
			snd, err := svc.Create(ctx, ns)
			if err != nil {
				return sendRefusal(err)
			}
			if snd.GateWarning != "" {
				fmt.Fprintf(a.stderr, "warning: send gate: %s\n", snd.GateWarning)
			}
			fmt.Fprintf(a.stdout, "send %d: %s to list %s, %s at %s\n", snd.ID, issue.Slug, list, snd.State,
				a.when(snd.ScheduledAt))
			if !wait {
				return nil
			}
			return a.waitSend(ctx, svc, snd.ID)
		},
	}
	f := c.Flags()
	f.StringVar(&list, "list", "", "list key (default "+subscribers.DefaultList+")")
	f.StringVar(&regions, "regions", "", "only these regions (comma-separated: jp,us,eu,asia,intl)")
	f.StringVar(&topics, "topics", "", "only these topics (comma-separated)")
	f.StringVar(&at, "at", "", "send at this time instead of now")
	f.DurationVar(&notAfter, "not-after", 0, "do not start the send later than this after its time")
	f.BoolVar(&dryRun, "dry-run", false, "count readers per variant; send nothing")
	f.StringVar(&testTo, "test-to", "", "send test copies to this address only")
	f.StringVar(&variant, "variant", "", "with --test-to: only this variant (key or preference key)")
	f.BoolVar(&wait, "wait", false, "show progress until the send finishes")
	f.BoolVar(&force, "force", false, "send even if the lint (tayori compose check) finds errors")
	f.BoolVar(&ignoreGate, "ignore-gate", false, "send even if the send gate is closed (complaints or authentication refusals; logged)")
	f.BoolVar(&again, "again", false, "send an issue sent to the list before, to the readers who have not had it")
	c.AddCommand(
		&cobra.Command{
			Use: "status ID", Short: "Show a send's state and figures", Args: cobra.ExactArgs(1),
			RunE: a.withSend(func(ctx context.Context, svc *queue.Service, id int64) error {
				s, err := svc.Get(ctx, id)
				if err != nil {
					return err
				}
				a.printStatus(a.stdout, s)
				a.printRelay(ctx, a.stdout, svc, s)
				return nil
			}),
		},
		a.sendPauseCmd(),
		&cobra.Command{
			Use: "resume ID", Short: "Resume a paused send, or re-queue a send's tasks that Redis lost",
			Long: `Resume a paused send where it stopped. For any send not finished, also
re-create from the store the tasks that Redis lacks (Redis replaced by an
empty server, or restored from an old copy): its planning and the batches
with readers still to send. Copies already sent are not sent again. Every
running worker does the same by itself within a minute.`,
			Args: cobra.ExactArgs(1),
			RunE: a.withSend(func(ctx context.Context, svc *queue.Service, id int64) error {
				s, err := svc.Get(ctx, id)
				if err != nil {
					return err
				}
				if s.State == queue.Paused {
					if err := svc.Resume(ctx, id); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "send %d resumed\n", id)
				}
				r, err := svc.Requeue(ctx, id)
				if err != nil {
					if s.State == queue.Paused && errors.Is(err, queue.ErrState) {
						return nil // finished as it resumed
					}
					return err
				}
				fmt.Fprintf(a.stdout, "send %d: %s\n", id, requeuedText(r))
				return nil
			}),
		},
		&cobra.Command{
			Use: "cancel ID", Short: "Cancel a send for good", Args: cobra.ExactArgs(1),
			RunE: a.withSend(func(ctx context.Context, svc *queue.Service, id int64) error {
				if err := svc.Cancel(ctx, id, "cancelled by the editor"); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "send %d cancelled\n", id)
				return nil
			}),
		},
		&cobra.Command{
			Use: "wait ID", Short: "Show a send's progress until it finishes", Args: cobra.ExactArgs(1),
			RunE: a.withSend(func(ctx context.Context, svc *queue.Service, id int64) error {
				return a.waitSend(ctx, svc, id)
			}),
		},
	)
	return c
}

// requeuedText says what `send resume` re-created.
func requeuedText(r queue.Requeued) string {
	if !r.Any() {
		return "every task is in Redis; nothing to re-queue"
	}
	var parts []string
	if r.Plan {
		parts = append(parts, "its planning")
	}
	if r.Batches > 0 {
		parts = append(parts, plural(int64(r.Batches), "batch", "batches")+" of readers still to send")
	}
	out := ""
	if len(parts) > 0 {
		out = "re-queued " + strings.Join(parts, " and ") + ", which Redis had lost"
	}
	if r.Finished > 0 {
		if out != "" {
			out += "; "
		}
		out += "marked " + plural(int64(r.Finished), "finished batch", "finished batches") + " done"
	}
	return out
}

func (a *app) sendPauseCmd() *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use: "pause ID", Short: "Pause a send after the copies in flight", Args: cobra.ExactArgs(1),
		RunE: a.withSend(func(ctx context.Context, svc *queue.Service, id int64) error {
			if err := svc.Pause(ctx, id, reason); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "send %d paused\n", id)
			return nil
		}),
	}
	c.Flags().StringVar(&reason, "reason", "paused by the editor", "why, for the record")
	return c
}

// withSend parses the ID argument and opens the delivery service.
func (a *app) withSend(fn func(ctx context.Context, svc *queue.Service, id int64) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("send ID %q: want a positive number", args[0])
		}
		svc, err := a.deliveryService(cmd.Context())
		if err != nil {
			return err
		}
		return fn(cmd.Context(), svc, id)
	}
}

func newSendsCmd(a *app) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "sends",
		Short: "List sends and their progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.deliveryService(cmd.Context())
			if err != nil {
				return err
			}
			sends, err := svc.List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tISSUE\tLIST\tSTATE\tPLANNED\tSENT\tSKIPPED\tFAILED\tWAITING\tCREATED")
			for _, s := range sends {
				c := s.Counts
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.ID, s.Issue.Slug, s.List, s.State,
					c.Planned, c.Sent, c.Skipped, c.FailedPerm+c.FailedTemp, c.Queued+c.Retrying,
					a.when(s.CreatedAt))
			}
			return tw.Flush()
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "how many recent sends to show")
	return c
}

func (a *app) dryRun(ctx context.Context, svc *queue.Service, issue *compose.Issue, list string, filter *audience.Prefs) error {
	vcs, nothing, err := svc.Preview(ctx, issue, list, filter)
	if err != nil {
		return sendRefusal(err)
	}
	// The readers whose chosen sections all have nothing this month are
	// counted apart: they get a short copy saying so, or nothing when
	// the list skips them.
	var total, variants, short1, skipped int64
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tREADERS\tFOR EXAMPLE")
	for _, v := range vcs {
		note := ""
		switch {
		case v.Skipped:
			skipped += v.Readers
			note = "  (all 該当なし: skipped by the list's setting)"
		case v.OnlyNothing:
			short1 += v.Readers
			note = "  (all 該当なし: short copy)"
		default:
			total += v.Readers
			variants++
		}
		fmt.Fprintf(tw, "%s\t%d\t%s%s\n", short(v.Key), v.Readers, v.Example.Key(), note)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%s to list %s: %s in %s; %s a short copy (all their sections have nothing this month); "+
		"%s skipped by the list's setting; %s nothing this month. Nothing was sent.\n",
		issue.Slug, list, plural(total, "reader", "readers"), plural(variants, "variant", "variants"),
		plural(short1, "reader gets", "readers get"), plural(skipped, "reader", "readers"),
		plural(nothing, "reader gets", "readers get"))
	return nil
}

// sendRefusal words Create's refusals for the command line: which earlier
// send stands in the way and what to do, or which list is unknown.
// Nothing was recorded.
func sendRefusal(err error) error {
	var dup *queue.DuplicateError
	switch {
	case errors.As(err, &dup):
		e := dup.Earlier
		at := e.CreatedAt.Local().Format("2006-01-02 15:04 MST")
		if e.Running() {
			return fmt.Errorf("issue %s is being sent to list %s by send %d (%s, created %s): nothing was sent.\n"+
				"Wait for it to finish (tayori send wait %d) or cancel it (tayori send cancel %d); then --again sends the issue "+
				"to the readers who have not had it", dup.Issue, dup.List, e.ID, e.State, at, e.ID, e.ID)
		}
		return fmt.Errorf("issue %s was already sent to list %s by send %d (%s, created %s, %s): nothing was sent.\n"+
			"To send it to the readers of %s who have not had it (new readers, readers whose copy failed), add --again",
			dup.Issue, dup.List, e.ID, e.State, at, plural(e.Sent, "copy sent", "copies sent"), dup.List)
	case errors.Is(err, queue.ErrNoList):
		return fmt.Errorf("%w: nothing was sent (tayori subscribers lists shows the lists)", err)
	}
	return err
}

// plural says "1 reader" or "3 readers".
func plural[N int | int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}

func (a *app) printStatus(w io.Writer, s *queue.Send) {
	c := s.Counts
	fmt.Fprintf(w, "send %d: %s to list %s\nstate:    %s\n", s.ID, s.Issue.Slug, s.List, s.State)
	if s.Filter != nil {
		fmt.Fprintf(w, "filter:   %s\n", s.Filter.Key())
	}
	fmt.Fprintf(w, "time:     %s", a.when(s.ScheduledAt))
	if !s.NotAfter.IsZero() {
		fmt.Fprintf(w, " (not after %s)", a.when(s.NotAfter))
	}
	fmt.Fprintf(w, "\nplanned:  %d\nsent:     %d\nskipped:  %d\nwaiting:  %d (retrying %d)\nfailed:   %d permanently, %d after retries\n",
		c.Planned, c.Sent, c.Skipped, c.Queued+c.Retrying, c.Retrying, c.FailedPerm, c.FailedTemp)
	if c.Cancelled > 0 {
		fmt.Fprintf(w, "cancelled: %d\n", c.Cancelled)
	}
	if s.Again {
		fmt.Fprintf(w, "had it:   %d (left out: an earlier send of the issue to the list gave them a copy)\n", c.AlreadyHad)
	}
	if s.PauseReason != "" {
		fmt.Fprintf(w, "paused:   %s\n", s.PauseReason)
	}
	switch {
	case s.State == queue.Failed:
		fmt.Fprintf(w, "failed:   %s\n", s.LastError)
	case s.LastError != "":
		fmt.Fprintf(w, "note:     %s\n", s.LastError)
	}
}

// waitSend shows progress (done/total, rate, ETA) until the send is done,
// cancelled or paused: a progress bar on a terminal, plain lines otherwise.
func (a *app) waitSend(ctx context.Context, svc *queue.Service, id int64) error {
	var bar *progressbar.ProgressBar
	if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(a.stdout), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("msg"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetDescription(fmt.Sprintf("send %d", id)), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth())
	}
	start := time.Now()
	var startDone int64 = -1
	lastLine := time.Time{}
	lastRelay := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := svc.Get(ctx, id)
		if err != nil {
			return err
		}
		if st, err := svc.RelayState(ctx); err == nil && !s.State.Final() {
			// Say when the relay goes down and when it is back.
			if note := relayNote(st, a.location()); note != lastRelay {
				lastRelay = note
				if note == "" {
					note = "relay reachable again"
				}
				if bar != nil {
					fmt.Fprintln(a.stdout)
				}
				fmt.Fprintf(a.stdout, "send %d: %s\n", id, note)
			}
		}
		c := s.Counts
		done := c.Finished()
		if startDone < 0 {
			startDone = done
		}
		if bar != nil {
			if c.Planned > 0 && bar.GetMax64() != c.Planned {
				bar.ChangeMax64(c.Planned)
			}
			_ = bar.Set64(done)
		} else if time.Since(lastLine) >= 2*time.Second || s.State.Final() || s.State == queue.Paused {
			lastLine = time.Now()
			rate := float64(done-startDone) / time.Since(start).Seconds()
			eta := "?"
			if s.State.Final() || (c.Planned > 0 && done >= c.Planned) {
				eta = "0s"
			} else if rate > 0 && c.Planned > done {
				eta = (time.Duration(float64(c.Planned-done)/rate) * time.Second / time.Second * time.Second).String()
			}
			fmt.Fprintf(a.stdout, "send %d: %s %d/%d (sent %d, skipped %d, failed %d) %.0f msg/s ETA %s\n",
				id, s.State, done, c.Planned, c.Sent, c.Skipped, c.FailedPerm+c.FailedTemp, rate, eta)
		}
		switch s.State {
		case queue.Done, queue.Cancelled, queue.Failed:
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(a.stdout)
			}
			a.printStatus(a.stdout, s)
			switch s.State {
			case queue.Cancelled:
				return fmt.Errorf("send %d was cancelled: %s", id, s.LastError)
			case queue.Failed:
				return fmt.Errorf("send %d failed: %s", id, s.LastError)
			}
			return nil
		case queue.Paused:
			if bar != nil {
				fmt.Fprintln(a.stdout)
			}
			a.printStatus(a.stdout, s)
			return fmt.Errorf("send %d is paused (%s); resume it with `tayori send resume %d`", id, s.PauseReason, id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func parseFilter(regions, topics string) (*audience.Prefs, error) {
	if regions == "" && topics == "" {
		return nil, nil
	}
	rs, err1 := audience.ParseRegions(regions)
	ts, err2 := audience.ParseTopics(topics)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &audience.Prefs{Regions: rs, Topics: ts}, nil
}

// parseTime reads --at: RFC 3339, or "2006-01-02 15:04" in the configured zone.
func parseTime(s, zone string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.Local
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--at %q: want RFC 3339 or \"2006-01-02 15:04\" (%s)", s, zone)
}
