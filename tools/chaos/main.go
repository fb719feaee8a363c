// Command chaos is the chaos suite of issue 18 (make chaos): it runs the
// real tayori binary (one server, two workers), a Redis of its own with
// AOF, and the fault relay on loopback, with the data directory on a small
// tmpfs it mounts (root needed), sends the November sample to 10,000
// readers and meanwhile kills workers, restarts and empties Redis, takes
// the relay down, unsubscribes readers by one-click, fills the disk and
// has the relay answer 4xx, 5xx and out of step. It prints its figures as
// Markdown tables and exits 0 only if the product passed: 0 lost, every
// 5xx recorded, duplicates within the copies in flight at the kills, no
// copy more than about a second after an unsubscribe.
//
//	go run ./tools/chaos                  # the full scenario (several minutes)
//	go run ./tools/chaos -short           # the scenario of make test (about a minute)
//	go run ./tools/chaos -relay-down-for 20s -kills 10s,30s -o figures.md
//
// Every fault's time is a flag (an offset from the send command; 0 or
// "none" leaves the fault out). See -help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tayori-news/tayori/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit status: 0 pass, 1 fail, 2 a bad command line or a
// run that could not be set up or was interrupted.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := chaos.Full()
	title := "Chaos run (make chaos)"
	if slices.ContainsFunc(args, func(a string) bool {
		return a == "-short" || a == "--short" || a == "-short=true" || a == "--short=true"
	}) {
		cfg = chaos.Short()
		title = "Chaos run, short (make test)"
	}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("short", false, "start from the short scenario of make test instead of the full one")
	tayori := fs.String("tayori", "", "the tayori binary (default: built from the repository into the work directory)")
	repo := fs.String("repo", "", "the repository's root (default: found from the current directory)")
	fs.StringVar(&cfg.WorkDir, "dir", "", "work directory for logs, Redis and the mount (default: a new temporary directory)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory and a copy of the store")
	out := fs.String("o", "", "also write the Markdown figures to this file")

	fs.IntVar(&cfg.Readers, "readers", cfg.Readers, "readers to import")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the readers' preferences, the relay's faults and the unsubscribes")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "TAYORI_RATE: messages per second across the workers, which keeps the send long enough for the faults")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "TAYORI_CONCURRENCY of each worker (0: Tayori's default)")
	disk := fs.Int64("disk-mib", cfg.DiskSize>>20, "size of the tmpfs holding the data directory, MiB")

	fs.Float64Var(&cfg.Transient, "4xx", cfg.Transient, "share of RCPTs the relay answers 451 4.3.0")
	fs.IntVar(&cfg.TransientMaxAttempt, "4xx-max-attempt", cfg.TransientMaxAttempt, "the relay's 4xx only on an address's first N RCPTs")
	fs.Float64Var(&cfg.Permanent, "5xx", cfg.Permanent, "share of readers the relay refuses for good (550 5.1.1 on every RCPT)")
	fs.Float64Var(&cfg.ChunkTransient, "chunk-4xx", cfg.ChunkTransient, "share of messages whose chunk the relay refuses with 451 after reading it")
	chunk := fs.String("refused-chunk", "as-commands", "what the relay does with a refused chunk: drained, as-commands (answers out of step, hangs up after 4), as-commands-no-limit")
	fs.DurationVar(&cfg.IdleTimeout, "relay-idle", cfg.IdleTimeout, "the relay closes connections idle this long with 421 (0: never)")

	kills := durations(fs, "kills", cfg.Kills, "times to SIGKILL a worker (the two in turn)")
	fs.DurationVar(&cfg.RestartAfter, "restart-after", cfg.RestartAfter, "start a killed worker again this long after the kill")
	fs.DurationVar(&cfg.RedisRestartAt, "redis-restart-at", cfg.RedisRestartAt, "restart Redis with its data (0: never)")
	fs.DurationVar(&cfg.RedisDown, "redis-down", cfg.RedisDown, "how long Redis is down at the restart")
	fs.DurationVar(&cfg.RedisEmptyAt, "redis-empty-at", cfg.RedisEmptyAt, "replace Redis by an empty one (0: never)")
	fs.DurationVar(&cfg.ResumeAfter, "resume-after", cfg.ResumeAfter, "this long after Redis was emptied, run `tayori send resume ID` if the send has not moved (0: never)")
	fs.DurationVar(&cfg.RelayDownAt, "relay-down-at", cfg.RelayDownAt, "take the relay down (0: never)")
	fs.DurationVar(&cfg.RelayDownFor, "relay-down-for", cfg.RelayDownFor, "how long the relay is down")
	fs.IntVar(&cfg.Unsubscribes, "unsubscribes", cfg.Unsubscribes, "readers without a copy yet who unsubscribe by one-click")
	unsubAt := durations(fs, "unsub-at", cfg.UnsubAt, "times of the unsubscribe waves (the readers are shared among them)")
	fs.DurationVar(&cfg.DiskFullAt, "disk-full-at", cfg.DiskFullAt, "fill the data disk (0: never)")
	fs.DurationVar(&cfg.DiskFullFor, "disk-full-for", cfg.DiskFullFor, "how long the disk stays full")

	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up on the send this long after it started")
	fs.DurationVar(&cfg.Stall, "stall", cfg.Stall, "give up once nothing has moved this long after the last fault")
	fs.DurationVar(&cfg.LateTolerance, "late", cfg.LateTolerance, "a copy this long after an unsubscribe answered is late")
	fs.DurationVar(&cfg.InFlightWindow, "inflight-window", cfg.InFlightWindow, "how far before a kill an unrecorded copy counts as in flight")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chaos: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var err error
	if cfg.Kills, err = kills(); err != nil {
		fmt.Fprintf(stderr, "chaos: -kills: %v\n", err)
		return 2
	}
	if cfg.UnsubAt, err = unsubAt(); err != nil {
		fmt.Fprintf(stderr, "chaos: -unsub-at: %v\n", err)
		return 2
	}
	mode, ok := chaos.ChunkModes[*chunk]
	if !ok {
		fmt.Fprintf(stderr, "chaos: -refused-chunk %q: want drained, as-commands or as-commands-no-limit\n", *chunk)
		return 2
	}
	cfg.RefusedChunk = mode
	cfg.DiskSize = *disk << 20
	cfg.Log = stderr

	cfg.Repo = *repo
	if cfg.Repo == "" {
		wd, _ := os.Getwd()
		if cfg.Repo, err = chaos.RepoRoot(wd); err != nil {
			fmt.Fprintln(stderr, "chaos:", err)
			return 2
		}
	}
	cfg.Tayori = *tayori
	if cfg.Tayori == "" {
		dir, err := os.MkdirTemp("", "tayori-chaos-bin-")
		if err != nil {
			fmt.Fprintln(stderr, "chaos:", err)
			return 2
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "chaos: building tayori from", cfg.Repo)
		if cfg.Tayori, err = chaos.Build(ctx, cfg.Repo, dir); err != nil {
			fmt.Fprintln(stderr, "chaos:", err)
			return 2
		}
	}

	rep, err := chaos.Run(ctx, cfg)
	if rep != nil {
		fmt.Fprintln(stdout)
		rep.WriteMarkdown(stdout, title)
		if *out != "" {
			var b strings.Builder
			rep.WriteMarkdown(&b, title)
			if werr := os.WriteFile(*out, []byte(b.String()), 0o644); werr != nil {
				fmt.Fprintln(stderr, "chaos:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	if !rep.Pass() {
		return 1
	}
	return 0
}

// durations defines a flag holding a comma-separated list of durations.
func durations(fs *flag.FlagSet, name string, def []time.Duration, usage string) func() ([]time.Duration, error) {
	s := fs.String(name, chaos.FormatDurations(def), usage+` (comma-separated, "none" for none)`)
	return func() ([]time.Duration, error) { return chaos.ParseDurations(*s) }
}
