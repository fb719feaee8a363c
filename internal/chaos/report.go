package chaos

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// Report is what a chaos run found, counted from the relay's own record of
// the messages it accepted and from the store.
type Report struct {
	// Scenario is the run's configuration in one line.
	Scenario string
	// Started is when the send command ran.
	Started time.Time

	Readers int // imported
	DryRun  int // readers `tayori send --dry-run` said get the issue
	Planned int // delivery rows of the send

	RefusedForGood int // planned readers the relay refuses with 550 5.1.1 on every RCPT
	UnsubTried     int // one-click unsubscribes posted
	Unsubscribed   int // ... answered 200

	// Expected is Planned less the readers the relay refuses for good and
	// those who unsubscribed: the readers who must get exactly one copy.
	Expected    int
	ExactlyOnce int
	Lost        int
	// LostByLedger counts the lost readers by what the ledger says of them.
	LostByLedger map[string]int
	LostSample   []string

	DuplicatedReaders int // readers with more than one copy
	ExtraCopies       int // copies beyond the first
	// InFlightKills and InFlightOutage count the accepted copies the
	// ledger never recorded that the relay accepted on a killed worker's
	// connections shortly before the kill, or on the connections it
	// dropped at its outage: the copies a re-run may send again.
	InFlightKills, InFlightOutage int
	// UnexplainedExtra counts the extra copies not accounted for by those;
	// UnexplainedSample shows a few of those readers' copies.
	UnexplainedExtra  int
	UnexplainedSample []string
	// NotRecorded counts the accepted copies the ledger never recorded,
	// outside the copies in flight (an outcome lost, as on a full disk);
	// NotRecordedDiskFull those of them accepted while the disk was full.
	NotRecorded, NotRecordedDiskFull int

	Answered5xx int // readers the relay answered 5xx
	Recorded5xx int // ... whom the ledger records as failed permanently
	// Unrecorded5xxSample shows a few of those the ledger does not.
	Unrecorded5xxSample []string
	FalsePermanent      int // readers failed permanently whom the relay never answered 5xx
	// AcceptedButFailed counts readers with an accepted copy whom the ledger
	// records as failed.
	AcceptedButFailed int
	// SentWithoutCopy counts readers the ledger records as sent with a
	// reply that names no copy the relay accepted for them.
	SentWithoutCopy int

	// Late lists the copies accepted more than LateTolerance after the
	// reader's unsubscribe was answered; WithinWindow counts those
	// accepted within it.
	Late          []LateCopy
	LateTolerance time.Duration
	WithinWindow  int

	Kills     []KillFigures
	Outage    *OutageFigures
	Faults    []faultRecord
	NotPlayed []string

	Relay  RelayFigures
	Ledger LedgerFigures

	Finished     bool          // the store says the send is done
	TimeToFinish time.Duration // from the send command to the store's done
	FirstCopy    time.Duration // from the send command to the relay's first acceptance
	LastCopy     time.Duration // from the send command to the relay's last acceptance
	FinalState   string
	// Resume says whether `tayori send resume` was run after Redis was
	// replaced by an empty one, and how it answered.
	Resume string

	// Failures lists the pass rules the run broke; empty is a pass.
	Failures []string
}

// LateCopy is a copy accepted after its reader's unsubscribe was answered.
type LateCopy struct {
	Addr  string
	After time.Duration
}

// KillFigures is one kill.
type KillFigures struct {
	N        int
	At       time.Duration
	Worker   string
	Pid      int
	Conns    int // its connections to the relay, from /proc
	Accepted int // copies the relay accepted on them
	InFlight int // ... that the ledger never recorded, accepted within the in-flight window before the kill
	Resent   int // ... whose reader later got another copy
	// Oldest is how long before the kill the oldest copy in flight was
	// accepted.
	Oldest time.Duration
}

// OutageFigures is the relay's outage.
type OutageFigures struct {
	At       time.Duration
	Dropped  int // open connections dropped
	InFlight int
	Resent   int
}

// RelayFigures are the relay's own counts.
type RelayFigures struct {
	Accepted    int
	Connections int
	RCPT4xx     int
	Chunk4xx    int
	RCPT5xx     int
	Undrained   int // refused chunks read as commands (answers out of step)
	IdleDrops   int
	Unknown     int // copies to addresses that are no reader's
}

// LedgerFigures counts the send's deliveries by status at the end.
type LedgerFigures struct {
	ByStatus                            map[string]int
	FailedPermanent, FailedAfterRetries int
}

// Pass reports whether the run met every pass rule.
func (rep *Report) Pass() bool { return rep != nil && len(rep.Failures) == 0 }

type copyRef struct {
	seq  int
	at   time.Time
	conn int
	port int
}

// report counts the run's figures and applies the pass rules.
func (r *run) report(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	rep := &Report{
		Scenario: cfg.describe(),
		Started:  r.t0, Readers: cfg.Readers, DryRun: r.dryRun, LateTolerance: cfg.LateTolerance,
		Faults: r.faults, NotPlayed: r.skipped,
	}
	ds, err := r.led.deliveries(ctx, r.sendID)
	if err != nil {
		return nil, err
	}
	rep.FinalState, _ = r.led.state(ctx, r.sendID)
	r.mu.Lock()
	doneAt := r.doneAt
	r.mu.Unlock()
	if !doneAt.IsZero() && rep.FinalState == "done" {
		rep.Finished, rep.TimeToFinish = true, doneAt.Sub(r.t0)
	}
	rep.Resume = r.resumed
	rep.Planned = len(ds)
	rep.Ledger.ByStatus = map[string]int{}
	for _, d := range ds {
		rep.Ledger.ByStatus[d.status]++
		if d.status == "failed" {
			if d.permanent {
				rep.Ledger.FailedPermanent++
			} else {
				rep.Ledger.FailedAfterRetries++
			}
		}
	}

	// The relay's record, by reader.
	msgs := r.relay.srv.Messages()
	copies := map[int64][]copyRef{}
	for i, m := range msgs {
		if i == 0 {
			rep.FirstCopy = m.Received.Sub(r.t0)
		}
		if m.Received.Sub(r.t0) > rep.LastCopy {
			rep.LastCopy = m.Received.Sub(r.t0)
		}
		for _, to := range m.To {
			id, ok := r.ids[strings.ToLower(to)]
			if !ok {
				rep.Relay.Unknown++
				continue
			}
			copies[id] = append(copies[id], copyRef{seq: i + 1, at: m.Received, conn: m.Conn, port: portOf(m.Remote)})
		}
	}
	rep.Relay = RelayFigures{Accepted: len(msgs), Connections: r.relay.srv.Connections(),
		RCPT4xx: int(r.relay.rcpt4xx.Load()), Chunk4xx: int(r.relay.chunk4xx.Load()), RCPT5xx: int(r.relay.rcpt5xx.Load()),
		Undrained: r.relay.srv.UndrainedChunks(), IdleDrops: r.relay.srv.IdleDrops(), Unknown: rep.Relay.Unknown}

	// Copies the ledger never recorded: the accepted copies whose sequence
	// number is not the one in the reader's recorded reply.
	unrecorded := map[int64][]copyRef{}
	for id, cs := range copies {
		rec := ds[id].seq()
		found := false
		for _, c := range cs {
			if c.seq == rec {
				found = true
			} else {
				unrecorded[id] = append(unrecorded[id], c)
			}
		}
		if d, ok := ds[id]; ok && d.status == "sent" && !found {
			rep.SentWithoutCopy++
		}
	}
	for id, d := range ds {
		if d.status == "sent" && len(copies[id]) == 0 {
			rep.SentWithoutCopy++
		}
	}

	// Copies in flight at the kills and at the relay's outage.
	explained := map[int]bool{} // by sequence number
	for _, k := range r.kills {
		kf := KillFigures{N: k.N, At: k.At.Sub(r.t0), Worker: k.Worker, Pid: k.Pid, Conns: len(k.Ports)}
		for id, cs := range copies {
			for _, c := range cs {
				if !k.Ports[c.port] || c.at.After(k.At.Add(5*time.Second)) {
					continue
				}
				kf.Accepted++
				if c.at.Before(k.At.Add(-cfg.InFlightWindow)) || !slices.Contains(unrecorded[id], c) || explained[c.seq] {
					continue
				}
				explained[c.seq] = true
				kf.InFlight++
				if len(cs) > 1 {
					kf.Resent++
				}
				kf.Oldest = max(kf.Oldest, k.At.Sub(c.at))
			}
		}
		rep.InFlightKills += kf.InFlight
		rep.Kills = append(rep.Kills, kf)
	}
	if o := r.outage; o != nil {
		of := &OutageFigures{At: o.At.Sub(r.t0), Dropped: len(o.Open)}
		for id, cs := range unrecorded {
			for _, c := range cs {
				if !o.Open[c.conn] || c.at.After(o.At) || c.at.Before(o.At.Add(-cfg.InFlightWindow)) || explained[c.seq] {
					continue
				}
				explained[c.seq] = true
				of.InFlight++
				if len(copies[id]) > 1 {
					of.Resent++
				}
			}
		}
		rep.InFlightOutage = of.InFlight
		rep.Outage = of
	}

	// Readers: expected, lost, duplicated.
	unsubbed := map[int64]unsubRecord{}
	for _, u := range r.unsubs {
		rep.UnsubTried++
		if u.Status == 200 {
			rep.Unsubscribed++
			unsubbed[u.ID] = u
		}
	}
	answered := r.relay.answered5xx()
	rep.LostByLedger = map[string]int{}
	var lost []string
	for id, d := range ds {
		a := r.addrs[id]
		cs := copies[id]
		if len(cs) > 1 {
			rep.DuplicatedReaders++
			extra := len(cs) - 1
			rep.ExtraCopies += extra
			ex := 0
			for _, c := range unrecorded[id] {
				if explained[c.seq] {
					ex++
				}
			}
			if u := max(0, extra-ex); u > 0 {
				rep.UnexplainedExtra += u
				if len(rep.UnexplainedSample) < 10 {
					rep.UnexplainedSample = append(rep.UnexplainedSample, r.describe(id, cs, d, explained))
				}
			}
		}
		for _, c := range unrecorded[id] {
			if !explained[c.seq] {
				rep.NotRecorded++
				if !r.diskFull.IsZero() && !c.at.Before(r.diskFull) && (r.diskFreed.IsZero() || !c.at.After(r.diskFreed)) {
					rep.NotRecordedDiskFull++
				}
			}
		}
		if _, ok := answered[a]; ok {
			rep.Answered5xx++
			if d.status == "failed" && d.permanent {
				rep.Recorded5xx++
			} else if len(rep.Unrecorded5xxSample) < 10 {
				rep.Unrecorded5xxSample = append(rep.Unrecorded5xxSample, fmt.Sprintf("%s (%s: %s)", a, d.status, trim(d.reply, 60)))
			}
		} else if d.status == "failed" && d.permanent {
			rep.FalsePermanent++
		}
		if len(cs) > 0 && d.status == "failed" {
			rep.AcceptedButFailed++
		}
		if r.relay.refuses(a) {
			rep.RefusedForGood++
			continue
		}
		if u, ok := unsubbed[id]; ok {
			for _, c := range cs {
				switch after := c.at.Sub(u.Answered); {
				case after > cfg.LateTolerance:
					rep.Late = append(rep.Late, LateCopy{Addr: a, After: after})
				case after > 0:
					rep.WithinWindow++
				}
			}
			continue
		}
		rep.Expected++
		switch len(cs) {
		case 0:
			rep.Lost++
			what := d.status
			if d.status == "failed" && d.permanent {
				what = "failed permanently"
			} else if d.status == "failed" {
				what = "failed after retries"
			}
			rep.LostByLedger[what]++
			lost = append(lost, fmt.Sprintf("%s (%s: %s)", a, what, trim(d.reply, 60)))
		case 1:
			rep.ExactlyOnce++
		}
	}
	sort.Strings(lost)
	rep.LostSample = lost[:min(len(lost), 10)]
	sort.Slice(rep.Late, func(i, j int) bool { return rep.Late[i].After > rep.Late[j].After })

	rep.Failures = rep.rules()
	return rep, nil
}

// rules applies the pass rules.
func (rep *Report) rules() []string {
	var f []string
	if rep.DryRun != rep.Planned {
		f = append(f, fmt.Sprintf("the send planned %d readers; the dry run counted %d", rep.Planned, rep.DryRun))
	}
	if rep.Lost > 0 {
		f = append(f, fmt.Sprintf("%d readers lost: expected a copy and got none (%s)", rep.Lost, byCount(rep.LostByLedger)))
	}
	if rep.Recorded5xx < rep.Answered5xx {
		f = append(f, fmt.Sprintf("%d of the %d readers the relay answered 5xx are not recorded as failed permanently", rep.Answered5xx-rep.Recorded5xx, rep.Answered5xx))
	}
	if inflight := rep.InFlightKills + rep.InFlightOutage; rep.ExtraCopies > inflight {
		f = append(f, fmt.Sprintf("%d duplicate copies, more than the %d in flight at the kills and the relay's outage", rep.ExtraCopies, inflight))
	}
	if rep.UnexplainedExtra > 0 {
		f = append(f, fmt.Sprintf("%d extra copies were not in flight at a kill or at the relay's outage (the relay accepted them and the ledger lost them: see the duplicated readers listed)", rep.UnexplainedExtra))
	}
	if len(rep.Late) > 0 {
		f = append(f, fmt.Sprintf("%d copies accepted more than %v after the reader's unsubscribe was answered (up to %v)", len(rep.Late), rep.LateTolerance, rep.Late[0].After.Round(100*time.Millisecond)))
	}
	if rep.Unsubscribed < rep.UnsubTried {
		f = append(f, fmt.Sprintf("%d of %d one-click unsubscribes not answered 200", rep.UnsubTried-rep.Unsubscribed, rep.UnsubTried))
	}
	if !rep.Finished {
		f = append(f, fmt.Sprintf("the send did not finish: the store says %q", rep.FinalState))
	}
	if len(rep.NotPlayed) > 0 {
		f = append(f, fmt.Sprintf("the scenario is void for %d faults the send had finished before: %s", len(rep.NotPlayed), strings.Join(rep.NotPlayed, "; ")))
	}
	return f
}

func byCount(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(s, ", ")
}

func trim(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// chunkMode names a refused-chunk mode as the -refused-chunk flag does.
func chunkMode(m testutil.RefusedChunk) string {
	for name, v := range ChunkModes {
		if v == m {
			return name
		}
	}
	return fmt.Sprint(int(m))
}

// ChunkModes names the relay's ways with a refused chunk.
var ChunkModes = map[string]testutil.RefusedChunk{
	"drained":              testutil.ChunkDrained,
	"as-commands":          testutil.ChunkAsCommands,
	"as-commands-no-limit": testutil.ChunkAsCommandsNoLimit,
}

// describe shows a reader's copies and what the ledger says, for the
// report's samples: "r00042@…: #311 conn 12 at 8.1 s (recorded), #702
// conn 40 at 51.0 s; ledger: sent".
func (r *run) describe(id int64, cs []copyRef, d delivery, explained map[int]bool) string {
	parts := make([]string, len(cs))
	rec := d.seq()
	for i, c := range cs {
		note := ""
		switch {
		case c.seq == rec:
			note = " (recorded)"
		case explained[c.seq]:
			note = " (in flight)"
		}
		parts[i] = fmt.Sprintf("#%d conn %d at %.1f s%s", c.seq, c.conn, c.at.Sub(r.t0).Seconds(), note)
	}
	return fmt.Sprintf("%s: %s; ledger: %s %s", r.addrs[id], strings.Join(parts, ", "), d.status, trim(d.reply, 50))
}

// describe is the scenario in one line, leaving out the faults not played.
func (c Config) describe() string {
	parts := []string{fmt.Sprintf("%s readers, TAYORI_RATE %d", num(c.Readers), c.Rate)}
	var relay []string
	if c.Transient > 0 {
		relay = append(relay, fmt.Sprintf("%g%% of RCPTs 451 (an address's first %d)", c.Transient*100, c.TransientMaxAttempt))
	}
	if c.ChunkTransient > 0 {
		relay = append(relay, fmt.Sprintf("%g%% of chunks 451", c.ChunkTransient*100))
	}
	if c.Permanent > 0 {
		relay = append(relay, fmt.Sprintf("%g%% of readers 550 5.1.1", c.Permanent*100))
	}
	relay = append(relay, "refused chunks "+chunkMode(c.RefusedChunk))
	if c.IdleTimeout > 0 {
		relay = append(relay, fmt.Sprintf("idle connections closed after %v", c.IdleTimeout))
	}
	parts = append(parts, "relay: "+strings.Join(relay, ", "))
	if len(c.Kills) > 0 {
		parts = append(parts, "SIGKILL of a worker at "+FormatDurations(c.Kills))
	}
	if c.RedisRestartAt > 0 {
		parts = append(parts, fmt.Sprintf("Redis restarted with its data at %v (down %v)", c.RedisRestartAt, c.RedisDown))
	}
	if c.RedisEmptyAt > 0 {
		p := fmt.Sprintf("Redis replaced by an empty one at %v", c.RedisEmptyAt)
		if c.ResumeAfter > 0 {
			p += fmt.Sprintf(" (`tayori send resume` %v later if the send is stuck)", c.ResumeAfter)
		}
		parts = append(parts, p)
	}
	if c.RelayDownAt > 0 {
		parts = append(parts, fmt.Sprintf("relay down at %v for %v", c.RelayDownAt, c.RelayDownFor))
	}
	if c.Unsubscribes > 0 {
		parts = append(parts, fmt.Sprintf("%d one-click unsubscribes at %s", c.Unsubscribes, FormatDurations(c.UnsubAt)))
	}
	if c.DiskFullAt > 0 {
		parts = append(parts, fmt.Sprintf("data disk (%d MiB) full at %v for %v", c.DiskSize>>20, c.DiskFullAt, c.DiskFullFor))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; seed %d", c.Seed)
}
