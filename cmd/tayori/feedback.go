package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/queue/bind"
	"github.com/tayori-news/tayori/subscribers"
)

// fromDomain is the domain of TAYORI_FROM: Message-IDs and the bounce
// domain hang off it.
func (a *app) fromDomain() (string, error) {
	addr, err := mail.ParseAddress(a.cfg.From)
	if err != nil {
		return "", fmt.Errorf("TAYORI_FROM: %w", err)
	}
	return addr.Address[strings.LastIndexByte(addr.Address, '@')+1:], nil
}

func newFeedbackCmd(a *app) *cobra.Command {
	var (
		days   int
		limit  int
		asJSON bool
	)
	list := func(cmd *cobra.Command, _ []string) error { return a.feedbackList(cmd.Context(), days, limit, asJSON) }
	c := &cobra.Command{
		Use:   "feedback",
		Short: "Bounce and complaint reports: ingest them, list events and the send gate",
		Long: `Bounce (RFC 3464) and complaint (RFC 5965 ARF) reports.

  tayori feedback [list]        recent events, the last 7 days' rates and the send gate
  tayori feedback ingest FILE…  read reports (files, directories, maildirs, or - for stdin)

A hard bounce (5.1.x) marks the reader bounced; three soft bounces on the
reader's last three sends do too; a complaint unsubscribes the reader from
every list; both suppress the address. Policy and authentication refusals
(5.7.x) leave the reader alone and alert the operator; an authentication
refusal (5.7.26, 5.7.515) or a complaint rate of 0.3% in 7 days closes the
send gate (tayori send refuses without --ignore-gate; 0.1% warns).`,
		Args: cobra.NoArgs,
		RunE: list,
	}
	c.Flags().IntVar(&days, "days", 0, "events of the last N days (default: the gate's 7)")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many events")
	c.Flags().BoolVar(&asJSON, "json", false, "print figures, verdict and events as JSON")
	lc := &cobra.Command{Use: "list", Short: "Recent events, the last 7 days' rates and the send gate", Args: cobra.NoArgs, RunE: list}
	lc.Flags().AddFlagSet(c.Flags())
	c.AddCommand(lc, a.feedbackIngestCmd())
	return c
}

func (a *app) feedbackIngestCmd() *cobra.Command {
	var (
		envelopeTo string
		byAddress  bool
	)
	c := &cobra.Command{
		Use:   "ingest [FILE.eml|DIR|-]...",
		Short: "Read bounce and complaint reports and act on them",
		Long: `Read reports and act on them, printing one line per report.

Arguments are .eml files, directories of .eml files, maildirs (their new/
and cur/ messages) or - for standard input (the default), so that the
command can serve as a Postfix pipe transport for the bounce domain:

  # master.cf
  tayori-fb unix - n n - - pipe flags=Rq user=tayori
    argv=/usr/local/bin/tayori feedback ingest --envelope-to ${original_recipient} -
  # transport_maps: bounce.news.example.go.jp tayori-fb:

Each report is matched to its copy by the token in the bounce address,
the returned Message-ID or CFBL-Feedback-ID; a report without a valid
token changes nobody (--match-address also matches by the recipient's
address, which anyone can forge). A file that is not a report is skipped;
an unreadable or malformed one is reported with its name and reason, the
others are still read, and the command exits with status 1. Ingesting a
report twice changes nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"-"}
			}
			return a.feedbackIngest(cmd.Context(), args, envelopeTo, byAddress)
		},
	}
	c.Flags().StringVar(&envelopeTo, "envelope-to", "", "the address the report was delivered to (the MTA's envelope recipient)")
	c.Flags().BoolVar(&byAddress, "match-address", false, "also act on reports matched only by the recipient's address")
	return c
}

func (a *app) feedbackIngest(ctx context.Context, args []string, envelopeTo string, byAddress bool) (err error) {
	if len(args) == 1 && args[0] == "-" {
		// Piped in by an MTA: a failure that is not the report's own
		// fault (the database, say) exits 75 so the MTA keeps the report
		// and tries again, instead of bouncing it.
		defer func() {
			if err != nil && !errors.Is(err, errSilent) {
				err = &tempFailError{err}
			}
		}()
	}
	store, err := a.subscriberStore(ctx)
	if err != nil {
		return err
	}
	ledger, err := a.ledger(ctx)
	if err != nil {
		return err
	}
	o := queue.NewOutcomes(ledger)
	tg, err := a.tagger(store)
	if err != nil {
		return err
	}
	in, err := feedback.NewIntake(feedback.IntakeConfig{
		Store: store, History: bind.History{O: o}, Tagger: tg, MatchByAddress: byAddress, Logger: a.logger,
	})
	if err != nil {
		return err
	}
	files, bad := a.reportFiles(args)
	var counts struct{ read, skipped, dup int }
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep, err := readReport(f, a.stdin)
		switch {
		case errors.Is(err, feedback.ErrNotReport):
			counts.skipped++
			fmt.Fprintf(a.stdout, "%s: skipped: not a bounce or complaint report\n", f)
			continue
		case err != nil:
			bad++
			fmt.Fprintf(a.stderr, "%s: %v\n", f, err)
			continue
		}
		out, err := in.Ingest(ctx, rep, envelopeTo)
		if err != nil {
			if f == "-" {
				return fmt.Errorf("%s: %w", f, err)
			}
			bad++
			fmt.Fprintf(a.stderr, "%s: %v\n", f, err)
			continue
		}
		counts.read++
		if out.Duplicate {
			counts.dup++
			fmt.Fprintf(a.stdout, "%s: %s from %s: already ingested, nothing done\n", f, rep.Type, rep.From)
			continue
		}
		for _, r := range out.Results {
			fmt.Fprintf(a.stdout, "%s: %s from %s: %s\n", f, rep.Type, rep.From, describeResult(r))
		}
	}
	if len(files) > 1 || bad > 0 {
		fmt.Fprintf(a.stdout, "%s read (%d already ingested), %d skipped, %d failed\n",
			plural(counts.read, "report", "reports"), counts.dup, counts.skipped, bad)
	}
	if bad > 0 {
		return errSilent
	}
	return nil
}

func describeResult(r feedback.Result) string {
	var b strings.Builder
	b.WriteString(string(r.Class))
	if r.Status != "" {
		b.WriteString(" " + r.Status)
	}
	if r.Domain != "" {
		b.WriteString(" (" + r.Domain + ")")
	}
	if r.Ref.SubscriberID != 0 {
		fmt.Fprintf(&b, ", reader %d", r.Ref.SubscriberID)
		if r.Ref.SendID != 0 {
			fmt.Fprintf(&b, " of send %d", r.Ref.SendID)
		}
		b.WriteString(" by " + r.MatchedBy)
	}
	b.WriteString(": " + r.Action)
	return b.String()
}

// reportFiles expands the arguments: "-" (stdin), files, directories of
// .eml files and maildirs (new/ and cur/). Arguments that cannot be read
// are reported on stderr and counted.
func (a *app) reportFiles(args []string) (files []string, bad int) {
	for _, arg := range args {
		if arg == "-" {
			files = append(files, "-")
			continue
		}
		st, err := os.Stat(arg)
		if err != nil {
			fmt.Fprintf(a.stderr, "%s: %v\n", arg, err)
			bad++
			continue
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		var found []string
		maildir := false
		for _, sub := range []string{"new", "cur"} {
			if fi, err := os.Stat(filepath.Join(arg, sub)); err == nil && fi.IsDir() {
				maildir = true
				found = append(found, dirFiles(filepath.Join(arg, sub), false)...)
			}
		}
		if !maildir {
			found = dirFiles(arg, true)
		}
		files = append(files, found...)
	}
	return files, bad
}

// dirFiles lists the regular files of dir, sorted (only *.eml if emlOnly;
// never hidden ones).
func dirFiles(dir string, emlOnly bool) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || (emlOnly && !strings.HasSuffix(strings.ToLower(name), ".eml")) {
			continue
		}
		out = append(out, filepath.Join(dir, name))
	}
	sort.Strings(out)
	return out
}

func readReport(name string, stdin io.Reader) (*feedback.Report, error) {
	if name == "-" {
		return feedback.Parse(stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return feedback.Parse(f)
}

func (a *app) feedbackList(ctx context.Context, days, limit int, asJSON bool) error {
	store, err := a.subscriberStore(ctx)
	if err != nil {
		return err
	}
	gate, err := a.sendGate(ctx)
	if err != nil {
		return err
	}
	verdict, fig, err := gate.Check(ctx)
	if err != nil {
		return err
	}
	since := fig.Since
	if days > 0 {
		since = fig.Until.AddDate(0, 0, -days)
	}
	events, err := store.FeedbackEvents(ctx, subscribers.FeedbackQuery{Since: since, Limit: limit})
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"figures": fig, "thresholds": gate.Thresholds(), "verdict": verdict, "events": events})
	}
	th := gate.Thresholds()
	fmt.Fprintf(a.stdout, "Last 7 days (since %s): %s sent, %s (%.2f%%; warn at %.1f%%, block at %.1f%%), %s (%d in reports, %d from the relay)\n",
		a.when(fig.Since), plural(fig.Sent, "copy", "copies"), plural(fig.Complaints, "complaint", "complaints"),
		100*fig.ComplaintRate(), 100*th.Warn, 100*th.Block,
		plural(fig.AuthReports+fig.AuthReplies, "authentication refusal", "authentication refusals"), fig.AuthReports, fig.AuthReplies)
	if fig.Unmatched > 0 {
		fmt.Fprintf(a.stdout, "Not counted: %s that matched no copy (no valid token; anyone can forge those)\n",
			plural(fig.Unmatched, "complaint or refusal report", "complaint or refusal reports"))
	}
	switch {
	case verdict.Block:
		fmt.Fprintf(a.stdout, "Send gate: CLOSED: %s\n", verdict.Reason)
	case verdict.Warn:
		fmt.Fprintf(a.stdout, "Send gate: open, with a warning: %s\n", verdict.Reason)
	default:
		fmt.Fprintln(a.stdout, "Send gate: open")
	}
	if len(events) == 0 {
		fmt.Fprintln(a.stdout, "\nNo feedback events.")
		return nil
	}
	fmt.Fprintln(a.stdout)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tKIND\tSTATUS\tDOMAIN\tREADER\tSEND\tMATCHED BY\tACTION")
	for _, e := range events {
		kind := e.Kind
		if e.Auth {
			kind += " (auth)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.when(e.ReceivedAt), kind,
			dash(e.Status), dash(e.Domain), idOrDash(e.SubscriberID), idOrDash(e.SendID), dash(e.MatchedBy), e.Action)
	}
	tw.Flush()
	_, err = a.stdout.Write(buf.Bytes())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return fmt.Sprint(id)
}
