package chaos

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// Config is one chaos run: the readers, the relay's faults and the
// timeline of the other faults. Offsets on the timeline count from the
// `tayori send` command; a zero offset (or an empty list) means the fault
// is not played.
type Config struct {
	// Tayori is the tayori binary to run. Required.
	Tayori string
	// Repo is the repository's root, where testdata/aisi-monthly-2025-11.txt
	// (the November sample) is read. Required.
	Repo string
	// WorkDir holds the run's logs, the generated CSV, the issue and
	// Redis's files; the data directory is a tmpfs mounted inside it. Empty:
	// a new directory under the system's temporary directory.
	WorkDir string
	// Keep keeps WorkDir after the run, with a copy of the store
	// (tayori.db). Without it the directory is kept only when the run
	// fails, without the store.
	Keep bool
	// Log receives progress lines as the run goes. Nil: discarded.
	Log io.Writer

	// Readers is how many readers are imported, with mixed regions and
	// topics. Seed makes their preferences, the relay's faults and the
	// choice of readers who unsubscribe repeatable.
	Readers int
	Seed    uint64
	// Rate is TAYORI_RATE, the messages per second all workers share: it
	// keeps the send long enough for the timeline to fall inside it.
	Rate int
	// Concurrency is each worker's TAYORI_CONCURRENCY; 0 keeps Tayori's
	// default.
	Concurrency int
	// DiskSize is the size of the tmpfs that holds the data directory.
	DiskSize int64

	// Transient is the share of RCPT commands the relay answers 451 4.3.0,
	// for an address's first TransientMaxAttempt RCPTs only, so that the
	// relay's temporary refusals alone never exhaust a reader's attempts.
	Transient           float64
	TransientMaxAttempt int
	// Permanent is the share of readers the relay refuses for good: every
	// RCPT for them is answered 550 5.1.1.
	Permanent float64
	// ChunkTransient is the share of messages whose chunk the relay refuses
	// after reading it (451 4.3.0 at the end of the data), under the same
	// attempt limit as Transient.
	ChunkTransient float64
	// RefusedChunk is what the relay does with the chunk of a transaction
	// it refused every recipient of: testutil.ChunkAsCommands (the relay
	// of issue 18) reads the chunk as commands and answers out of step.
	RefusedChunk testutil.RefusedChunk
	// IdleTimeout is how long the relay keeps an idle connection before it
	// answers 421 4.4.2 and closes it; 0: never.
	IdleTimeout time.Duration

	// Kills are the times a worker is killed with SIGKILL (the two workers
	// in turn); each is started again RestartAfter later.
	Kills        []time.Duration
	RestartAfter time.Duration
	// RedisRestartAt stops Redis (SIGTERM: it writes its AOF) and starts it
	// again with its data RedisDown later.
	RedisRestartAt, RedisDown time.Duration
	// RedisEmptyAt kills Redis and starts an empty one on the same port.
	// ResumeAfter later, if the send has not moved since (no copy accepted
	// in the last 15 s), the run calls the documented recovery command,
	// `tayori send resume ID`; 0: never.
	RedisEmptyAt, ResumeAfter time.Duration
	// RelayDownAt takes the relay down (connections refused, open ones
	// dropped) for RelayDownFor.
	RelayDownAt, RelayDownFor time.Duration
	// Unsubscribes readers who have not had their copy yet unsubscribe by
	// one-click (POST to the web server's /u/TOKEN), in waves at UnsubAt.
	Unsubscribes int
	UnsubAt      []time.Duration
	// DiskFullAt fills the data disk and keeps it full for DiskFullFor.
	DiskFullAt, DiskFullFor time.Duration

	// Timeout bounds the whole send; Stall ends the wait once the last
	// fault has been played and neither the relay nor the store has moved
	// for that long.
	Timeout, Stall time.Duration
	// Settle is how long the run waits after the send is done for copies
	// still on their way.
	Settle time.Duration
	// LateTolerance is how long after an unsubscribe answered a copy may
	// still be accepted without counting as late (about a second).
	LateTolerance time.Duration
	// InFlightWindow is how far before a kill or the relay's outage an
	// accepted copy the ledger never recorded counts as in flight at it.
	// Under a rate cap a pipelined connection reads its replies only once
	// the next window of copies has gone, so a copy may wait seconds
	// between the relay's answer and its record.
	InFlightWindow time.Duration
}

// Full is the scenario of issue 18 (make chaos): 10,000 readers, five
// kills, Redis restarted once with its data and once replaced by an empty
// one, the relay down for 60 s, 100 one-click unsubscribes, the data disk
// full for 15 s, and the relay's 10% 4xx and 1% 5xx on RCPT. At 40
// messages a second the send lasts at least 235 s (7,020 of the readers
// get the issue, plus the relay's outage), so every fault falls inside it.
// The faults are spaced so that copies the full disk leaves unrecorded are
// not taken for copies in flight at a later kill (InFlightWindow).
func Full() Config {
	return Config{
		Readers: 10000, Seed: 18, Rate: 40, DiskSize: 64 << 20,
		Transient: 0.10, TransientMaxAttempt: 2, Permanent: 0.01, ChunkTransient: 0.01,
		RefusedChunk: testutil.ChunkAsCommands, IdleTimeout: 3 * time.Second,
		Kills:          secs(10, 45, 105, 180, 200),
		RestartAfter:   time.Second,
		RedisRestartAt: 30 * time.Second, RedisDown: 2 * time.Second,
		RedisEmptyAt: 220 * time.Second, ResumeAfter: 75 * time.Second,
		RelayDownAt: 110 * time.Second, RelayDownFor: 60 * time.Second,
		Unsubscribes: 100, UnsubAt: secs(15, 22, 29, 36),
		DiskFullAt: 55 * time.Second, DiskFullFor: 15 * time.Second,
		Timeout: 30 * time.Minute, Stall: 4 * time.Minute, Settle: 3 * time.Second,
		LateTolerance: time.Second, InFlightWindow: 30 * time.Second,
	}
}

// Short is the scenario of make test: 1,500 readers (about 1,200 get the
// issue), one kill, one Redis restart with its data, the relay down for
// 5 s, 5 unsubscribes and the relay's error mix (4xx only on an address's
// first RCPT, so that no retry waits longer than Tayori's first backoff).
// Once the defects of issue 18 are fixed it takes about a minute.
func Short() Config {
	return Config{
		Readers: 1500, Seed: 18, Rate: 60, DiskSize: 32 << 20,
		Transient: 0.10, TransientMaxAttempt: 1, Permanent: 0.01, ChunkTransient: 0.01,
		RefusedChunk: testutil.ChunkAsCommands, IdleTimeout: 3 * time.Second,
		Kills:          secs(6),
		RestartAfter:   time.Second,
		RedisRestartAt: 10 * time.Second, RedisDown: time.Second,
		RelayDownAt: 14 * time.Second, RelayDownFor: 5 * time.Second,
		Unsubscribes: 5, UnsubAt: secs(8),
		Timeout: 3 * time.Minute, Stall: 100 * time.Second, Settle: 3 * time.Second,
		LateTolerance: time.Second, InFlightWindow: 30 * time.Second,
	}
}

func secs(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v) * time.Second
	}
	return out
}

// check names every bad field.
func (c *Config) check() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if c.Tayori == "" {
		bad("the tayori binary is not given (-tayori)")
	}
	if c.Repo == "" {
		bad("the repository's root is not given (-repo)")
	}
	if c.Readers < 100 {
		bad("readers %d: want at least 100", c.Readers)
	}
	if c.Rate < 0 {
		bad("rate %d: want 0 (no cap) or more", c.Rate)
	}
	if c.DiskSize < 8<<20 {
		bad("disk size %d bytes: want at least 8 MiB", c.DiskSize)
	}
	for name, p := range map[string]float64{"4xx share": c.Transient, "5xx share": c.Permanent, "chunk 4xx share": c.ChunkTransient} {
		if p < 0 || p >= 1 {
			bad("%s %g: want 0 ≤ p < 1", name, p)
		}
	}
	if c.Transient+c.ChunkTransient > 0 && c.TransientMaxAttempt < 1 {
		bad("4xx max attempt %d: want at least 1", c.TransientMaxAttempt)
	}
	if c.Unsubscribes > 0 && len(c.UnsubAt) == 0 {
		bad("%d unsubscribes but no time for them (-unsub-at)", c.Unsubscribes)
	}
	for _, d := range slices.Concat(c.Kills, c.UnsubAt, []time.Duration{c.RedisRestartAt, c.RedisEmptyAt, c.RelayDownAt, c.DiskFullAt}) {
		if d < 0 {
			bad("a fault at %v: offsets count from the send and cannot be negative", d)
		}
	}
	if c.RelayDownAt > 0 && c.RelayDownFor <= 0 {
		bad("relay down at %v for %v: want a positive duration", c.RelayDownAt, c.RelayDownFor)
	}
	if c.DiskFullAt > 0 && c.DiskFullFor <= 0 {
		bad("disk full at %v for %v: want a positive duration", c.DiskFullAt, c.DiskFullFor)
	}
	if c.Timeout <= 0 || c.Stall <= 0 {
		bad("timeout %v and stall %v: want positive durations", c.Timeout, c.Stall)
	}
	return errors.Join(errs...)
}

// ParseDurations reads a comma-separated list of durations ("8s,45s");
// an empty string or "none" is the empty list.
func ParseDurations(s string) ([]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []time.Duration
	for i, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("item %d %q: %w", i+1, f, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// FormatDurations is the inverse of ParseDurations.
func FormatDurations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}
