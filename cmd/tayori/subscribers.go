package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/web"
)

func newSubscribersCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "subscribers",
		Aliases: []string{"subs"},
		Short:   "Manage subscribers, lists and CSV import/export",
		Long: `Manage subscribers: add, list, show (GDPR export), unsubscribe, erase,
import and export CSV, and the lists they belong to.

A subscriber is named by id, e-mail address or public id.`,
	}
	c.AddCommand(
		a.subsImportCmd(),
		a.subsExportCmd(),
		a.subsAddCmd(),
		a.subsListCmd(),
		a.subsShowCmd(),
		a.subsUnsubscribeCmd(),
		a.subsEraseCmd(),
		a.subsListsCmd(),
		a.subsPurgeCmd(),
		a.subsRekeyCmd(),
	)
	return c
}

// progressThreshold is the file size from which import shows a progress
// bar (on a terminal only).
const progressThreshold = 1 << 20

func (a *app) subsImportCmd() *cobra.Command {
	var (
		list   string
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import subscribers from CSV (header-driven; '-' reads stdin)",
		Long: `Import subscribers from a UTF-8 CSV file (with or without BOM) whose
first row names the columns:

  email (required), name, regions, topics (comma-separated inside the
  field, e.g. "jp,us"), status (pending, active, unsubscribed, bounced,
  complained), consent_at (RFC 3339 or YYYY-MM-DD), consent_method
  (import, api, double_opt_in), consent_text or consent_text_sha256,
  consent_version, consent_ip, consent_user_agent.

A row with consent_at is active, one without is pending until it
confirms. Suppressed (erased, bounced, complained) and unsubscribed
addresses are never re-activated. Every bad row is reported with its row
number, field and reason; good rows are imported anyway, and the command
then exits with status 1. Importing the same file twice changes nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			var r io.Reader = a.stdin
			name := "stdin"
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r, name = f, filepath.Base(args[0])
				if bar := a.progressBar(f); bar != nil {
					r = io.TeeReader(f, bar)
					defer bar.Finish()
				}
			}
			res, err := store.Import(ctx, r, subscribers.ImportOptions{List: list, DryRun: dryRun, Cause: "import " + name})
			if err != nil {
				return err
			}
			return a.printImport(res, dryRun)
		},
	}
	c.Flags().StringVar(&list, "list", subscribers.DefaultList, "list the rows join")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check and count, change nothing")
	return c
}

// progressBar returns a byte-counting bar on stderr for a large file, or
// nil when stderr is not a terminal or the file is small.
func (a *app) progressBar(f *os.File) *progressbar.ProgressBar {
	errf, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(errf.Fd())) {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Size() < progressThreshold {
		return nil
	}
	return progressbar.NewOptions64(st.Size(),
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func (a *app) printImport(res subscribers.ImportResult, dryRun bool) error {
	for _, w := range res.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
	for _, p := range res.Errors {
		fmt.Fprintln(a.stderr, "error:", p)
	}
	for _, p := range res.Skips {
		fmt.Fprintln(a.stderr, "skipped:", p)
	}
	prefix := ""
	if dryRun {
		prefix = "dry run, nothing changed: "
	}
	fmt.Fprintf(a.stdout, "%s%d rows: %d added, %d updated, %d unchanged, %d skipped, %d errors\n",
		prefix, res.Rows, res.Added, res.Updated, res.Unchanged, res.Skipped, res.ErrorRows)
	if res.ErrorRows > 0 {
		return errSilent
	}
	return nil
}

func (a *app) subsExportCmd() *cobra.Command {
	var format, list, status, output string
	c := &cobra.Command{
		Use:   "export",
		Short: "Export subscribers as CSV (importable) or JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			q := subscribers.ExportQuery{List: list}
			if status != "" {
				st, err := subscribers.ParseStatus(status)
				if err != nil {
					return fmt.Errorf("--status: %w", err)
				}
				q.Status = st
			}
			if format != "csv" && format != "json" {
				return fmt.Errorf("--format %q: want csv or json", format)
			}
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			w := a.stdout
			if output != "" && output != "-" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			var n int
			if format == "csv" {
				n, err = store.ExportCSV(ctx, w, q)
			} else {
				n, err = store.ExportJSON(ctx, w, q)
			}
			if err != nil {
				return err
			}
			if f, ok := w.(*os.File); ok && w != a.stdout {
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "exported %d subscribers to %s\n", n, output)
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "csv", "csv or json")
	c.Flags().StringVar(&list, "list", "", "only members of this list")
	c.Flags().StringVar(&status, "status", "", "only this status")
	c.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600) instead of stdout")
	return c
}

func (a *app) subsAddCmd() *cobra.Command {
	var (
		name, regions, topics, consentAt, consentVersion, consentText string
		lists                                                         []string
	)
	c := &cobra.Command{
		Use:   "add EMAIL",
		Short: "Add a subscriber (pending, or active with --consent-at)",
		Long: `Add a subscriber. Without --consent-at they are pending until they
confirm; with it they are active at once and the consent is recorded
(method "api"). A suppressed address is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			n := subscribers.NewSubscriber{Email: args[0], Name: name, Lists: lists, Method: subscribers.API, Cause: "cli add"}
			var errs []error
			if regions != "" || topics != "" {
				p := audience.All()
				if regions != "" {
					rs, err := audience.ParseRegions(regions)
					errs = append(errs, err)
					p.Regions = rs
				}
				if topics != "" {
					ts, err := audience.ParseTopics(topics)
					errs = append(errs, err)
					p.Topics = ts
				}
				n.Prefs = &p
			}
			if consentAt != "" {
				at, err := time.Parse(time.RFC3339, consentAt)
				if err != nil {
					if at, err = time.Parse(time.DateOnly, consentAt); err != nil {
						errs = append(errs, fmt.Errorf("--consent-at %q: want RFC 3339 or YYYY-MM-DD", consentAt))
					}
				}
				n.Consent = &subscribers.Consent{At: at, FormVersion: consentVersion, Text: consentText}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			sub, err := store.Add(ctx, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added subscriber %d (%s), %s\n", sub.ID, sub.PublicID, sub.Status)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "display name")
	c.Flags().StringSliceVar(&lists, "list", nil, "list key (repeatable; default "+subscribers.DefaultList+")")
	c.Flags().StringVar(&regions, "regions", "", "regions, e.g. jp,us (default all)")
	c.Flags().StringVar(&topics, "topics", "", "topics, e.g. policy,reports (default all)")
	c.Flags().StringVar(&consentAt, "consent-at", "", "when consent was given (RFC 3339 or YYYY-MM-DD): adds the subscriber as active")
	c.Flags().StringVar(&consentVersion, "consent-version", "", "form or template version the consent was given on")
	c.Flags().StringVar(&consentText, "consent-text", "", "the consent wording shown (stored as its SHA-256)")
	return c
}

func (a *app) subsListCmd() *cobra.Command {
	var (
		q      subscribers.ListQuery
		status string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List and search subscribers (paged by id)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if status != "" {
				st, err := subscribers.ParseStatus(status)
				if err != nil {
					return fmt.Errorf("--status: %w", err)
				}
				q.Status = st
			}
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			subs, err := store.List(ctx, q)
			if err != nil {
				return err
			}
			if asJSON {
				if subs == nil {
					subs = []subscribers.Subscriber{}
				}
				return writeJSON(a.stdout, subs)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tEMAIL\tNAME\tLISTS\tREGIONS|TOPICS")
			for _, s := range subs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, s.Email, s.Name, strings.Join(s.Lists, ","), s.Prefs.Key())
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if q.Limit > 0 && len(subs) == q.Limit {
				fmt.Fprintf(a.stderr, "more: --after %d\n", subs[len(subs)-1].ID)
			}
			return nil
		},
	}
	c.Flags().StringVar(&q.Search, "search", "", "substring of address or name")
	c.Flags().StringVar(&status, "status", "", "only this status")
	c.Flags().StringVar(&q.List, "list", "", "only members of this list")
	c.Flags().Int64Var(&q.AfterID, "after", 0, "start after this id (next page)")
	c.Flags().IntVar(&q.Limit, "limit", 50, "page size (at most 1000)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// findSubscriber resolves an id, an e-mail address or a public id.
func findSubscriber(ctx context.Context, store *subscribers.Store, ref string) (subscribers.Subscriber, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return store.Get(ctx, id)
	}
	if strings.Contains(ref, "@") {
		return store.FindByEmail(ctx, ref)
	}
	return store.GetByPublicID(ctx, ref)
}

func (a *app) subsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|EMAIL|PUBLIC_ID",
		Short: "Print everything stored about one subscriber as JSON (GDPR access)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			sub, err := findSubscriber(ctx, store, args[0])
			if err != nil {
				return err
			}
			x, err := store.Export(ctx, sub.ID)
			if err != nil {
				return err
			}
			ledger, err := a.ledger(ctx)
			if err != nil {
				return err
			}
			sent, err := queue.DeliveryHistory(ctx, ledger, sub.ID)
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, web.SubscriberExport{DataExport: x, Deliveries: sent})
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) subsUnsubscribeCmd() *cobra.Command {
	var list string
	c := &cobra.Command{
		Use:   "unsubscribe ID|EMAIL|PUBLIC_ID",
		Short: "Unsubscribe from one list (--list) or from all (idempotent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			sub, err := findSubscriber(ctx, store, args[0])
			if err != nil {
				return err
			}
			if err := store.Unsubscribe(ctx, sub.ID, list, "cli unsubscribe"); err != nil {
				return err
			}
			sub, err = store.Get(ctx, sub.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "subscriber %d: %s, lists [%s]\n", sub.ID, sub.Status, strings.Join(sub.Lists, ","))
			return nil
		},
	}
	c.Flags().StringVar(&list, "list", "", "leave only this list (default: every list)")
	return c
}

func (a *app) subsEraseCmd() *cobra.Command {
	var yes bool
	var reason string
	c := &cobra.Command{
		Use:   "erase ID|EMAIL|PUBLIC_ID --yes",
		Short: "Erase a subscriber's personal data, keeping a suppression entry",
		Long: `Erase a subscriber's personal data (GDPR Art. 17): address, name,
preferences, memberships and consent records. A keyed hash of the address
stays on the suppression list, so no import or bulk add can bring it back;
only a fresh double opt-in can. This cannot be undone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return errors.New("erasure cannot be undone: add --yes")
			}
			ctx := cmd.Context()
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			sub, err := findSubscriber(ctx, store, args[0])
			if err != nil {
				return err
			}
			if err := store.Erase(ctx, sub.ID, reason); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "erased subscriber %d\n", sub.ID)
			return nil
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "confirm the erasure")
	c.Flags().StringVar(&reason, "reason", "erasure request", "recorded in the status history (no personal data)")
	return c
}

func (a *app) subsListsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lists",
		Short: "Show the lists with their member counts",
		Args:  cobra.NoArgs,
		RunE: a.storeRun(func(ctx context.Context, store *subscribers.Store) error {
			lists, err := store.Lists(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tNAME\tACTIVE\tTOTAL")
			for _, l := range lists {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", l.Key, l.Name, l.Active, l.Total)
			}
			return tw.Flush()
		}),
	}
	c.AddCommand(&cobra.Command{
		Use:   "create KEY NAME",
		Short: "Create a list",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			l, err := store.CreateList(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created list %s (%s)\n", l.Key, l.Name)
			return nil
		},
	})
	c.AddCommand(a.listsClicksCmd()) // clicks.go
	c.AddCommand(&cobra.Command{
		Use:   "nothing-month KEY send|skip",
		Short: "Send or skip the readers whose chosen regions and topics all have nothing this month",
		Long: `Choose what a send to list KEY does for a reader whose chosen regions and
topics are all marked 該当なし (nothing this month) in the issue: "send"
(the default) sends them a short copy that says so, with the issue's
link; "skip" leaves them out. Dry runs count these readers apart either way.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var skip bool
			switch args[1] {
			case "send":
			case "skip":
				skip = true
			default:
				return fmt.Errorf("nothing-month: want send or skip, got %q", args[1])
			}
			store, err := a.subscriberStore(ctx)
			if err != nil {
				return err
			}
			if err := store.SetListSkipsNothing(ctx, args[0], skip); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "list %s: readers with nothing this month: %s\n", args[0], args[1])
			return nil
		},
	})
	return c
}

// purge applies the retention rules: signups unconfirmed for longer than
// pendingAfter, then consent records past their retention.
func purge(ctx context.Context, store *subscribers.Store, pendingAfter time.Duration) (pending, consents int64, err error) {
	if pending, err = store.PurgePending(ctx, pendingAfter); err != nil {
		return 0, 0, err
	}
	consents, err = store.PurgeConsents(ctx)
	return pending, consents, err
}

func (a *app) subsRekeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rekey",
		Short: "Move suppression entries to the newest key, before retiring an old one",
		Long: `Move the suppression list's entries written under older keys of TAYORI_SECRET
to its newest key, wherever the address is still known (bounced and
complained subscribers), and say how many entries each older key still
holds. Those are erased addresses and addresses known only from a bounce
or complaint report: only their keyed hash is left, so they cannot move.
Retire a key from TAYORI_SECRET when its count is 0, or when it is
acceptable that those addresses could be imported or added again.
Running it again moves nothing more.`,
		Args: cobra.NoArgs,
		RunE: a.storeRun(func(ctx context.Context, store *subscribers.Store) error {
			res, err := store.RekeySuppressions(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "moved %s to key %s\n", plural(res.Rekeyed, "suppression entry", "suppression entries"), res.Key)
			ids := slices.Sorted(maps.Keys(res.Remaining))
			for _, id := range ids {
				fmt.Fprintf(a.stdout, "key %s still holds %s (erased or report-only addresses): keep it in TAYORI_SECRET while they must stay suppressed\n",
					id, plural(res.Remaining[id], "entry", "entries"))
			}
			if len(ids) == 0 {
				fmt.Fprintln(a.stdout, "no entry is under an older key: older keys can be retired as far as the suppression list goes")
			}
			return nil
		}),
	}
}

// storeRun is a RunE for a command without arguments that needs the
// subscriber store.
func (a *app) storeRun(fn func(ctx context.Context, store *subscribers.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		store, err := a.subscriberStore(cmd.Context())
		if err != nil {
			return err
		}
		return fn(cmd.Context(), store)
	}
}

// defaultPendingAfter is how long an unconfirmed signup is kept.
const defaultPendingAfter = 30 * 24 * time.Hour

func (a *app) subsPurgeCmd() *cobra.Command {
	var pendingAfter time.Duration
	c := &cobra.Command{
		Use:   "purge",
		Short: "Apply retention: drop stale unconfirmed signups and expired consent records",
		Long: `Apply the retention rules; run it daily (cron, or the scheduler):

  - signups never confirmed within --pending-after (default 30 days) are
    deleted with everything about them;
  - consent records of subscribers who stopped receiving mail more than a
    month ago are deleted, unless the subscriber is under legal hold
    (特定電子メール法 施行規則 Art. 4 asks for one month after the last send).`,
		Args: cobra.NoArgs,
		RunE: a.storeRun(func(ctx context.Context, store *subscribers.Store) error {
			pending, consents, err := purge(ctx, store, pendingAfter)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "purged %d unconfirmed signups and %d consent records\n", pending, consents)
			return nil
		}),
	}
	c.Flags().DurationVar(&pendingAfter, "pending-after", defaultPendingAfter, "delete signups unconfirmed for this long")
	return c
}
