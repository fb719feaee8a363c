package chaos

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteMarkdown writes the report as Markdown tables, ready to paste into
// the docs.
func (rep *Report) WriteMarkdown(w io.Writer, title string) {
	verdict := "PASS"
	if !rep.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "### %s: %s\n\n", title, verdict)
	fmt.Fprintf(w, "Scenario: %s.\n\n", rep.Scenario)

	fmt.Fprintln(w, "| Figure | Value |")
	fmt.Fprintln(w, "|---|---:|")
	row := func(k, v string) { fmt.Fprintf(w, "| %s | %s |\n", k, v) }
	row("Readers imported", num(rep.Readers))
	row("Readers planned (the dry run's count)", fmt.Sprintf("%s (%s)", num(rep.Planned), num(rep.DryRun)))
	row("… refused for good by the relay (550 5.1.1 on every RCPT)", num(rep.RefusedForGood))
	row("… unsubscribed by one-click during the send (answered 200 / posted)", fmt.Sprintf("%d / %d", rep.Unsubscribed, rep.UnsubTried))
	row("**Readers expected** (one copy each)", "**"+num(rep.Expected)+"**")
	row("Copies accepted exactly once", num(rep.ExactlyOnce))
	row("**Lost** (expected, no copy accepted)", "**"+num(rep.Lost)+"**"+paren(byCount(rep.LostByLedger)))
	row("**Duplicated** readers (extra copies)", fmt.Sprintf("**%s** (%s)", num(rep.DuplicatedReaders), num(rep.ExtraCopies)))
	row("Copies in flight at the kills / at the relay's outage", fmt.Sprintf("%s / %s", num(rep.InFlightKills), num(rep.InFlightOutage)))
	row("Extra copies not explained by copies in flight", num(rep.UnexplainedExtra))
	row("Accepted copies the ledger never recorded, outside those in flight (while the disk was full)", fmt.Sprintf("%s (%s)", num(rep.NotRecorded), num(rep.NotRecordedDiskFull)))
	row("**Permanent failures recorded** / readers the relay answered 5xx", fmt.Sprintf("**%s** / %s", num(rep.Recorded5xx), num(rep.Answered5xx)))
	row("Permanent failures without a 5xx from the relay", num(rep.FalsePermanent))
	row("Readers with an accepted copy recorded as failed", num(rep.AcceptedButFailed))
	row("Readers recorded as sent with no copy at the relay", num(rep.SentWithoutCopy))
	late := "0"
	if len(rep.Late) > 0 {
		late = fmt.Sprintf("%d (%d readers; up to %s late)", len(rep.Late), lateReaders(rep.Late), secs1(rep.Late[0].After))
	}
	row(fmt.Sprintf("**Copies more than %v after an unsubscribe answered**", rep.LateTolerance), "**"+late+"**")
	row(fmt.Sprintf("Copies within %v after an unsubscribe answered", rep.LateTolerance), num(rep.WithinWindow))
	fin := "did not finish: " + rep.FinalState
	if rep.Finished {
		fin = secs1(rep.TimeToFinish)
	}
	row("**Time to finish** (send command to the store's done)", "**"+fin+"**")
	row("First / last copy accepted", secs1(rep.FirstCopy)+" / "+secs1(rep.LastCopy))
	if rep.Resume != "" {
		row("`tayori send resume` after Redis was emptied", strings.ReplaceAll(rep.Resume, "|", "\\|"))
	}
	fmt.Fprintln(w)

	if len(rep.Kills) > 0 || rep.Outage != nil {
		fmt.Fprintln(w, "| Kill | At | Worker | Relay connections (/proc) | Copies accepted on them | In flight (never recorded) | Oldest in flight | … sent again |")
		fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|")
		for _, k := range rep.Kills {
			fmt.Fprintf(w, "| %d | %s | %s (pid %d) | %d | %s | %d | %s | %d |\n", k.N, secs1(k.At), k.Worker, k.Pid, k.Conns, num(k.Accepted), k.InFlight, secs1(k.Oldest), k.Resent)
		}
		if o := rep.Outage; o != nil {
			fmt.Fprintf(w, "| relay down | %s | | %d dropped | | %d | | %d |\n", secs1(o.At), o.Dropped, o.InFlight, o.Resent)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "| At | Fault | What happened |")
	fmt.Fprintln(w, "|---:|---|---|")
	for _, f := range rep.Faults {
		fmt.Fprintf(w, "| %s | %s | %s |\n", secs1(f.At), f.Fault, strings.ReplaceAll(f.Detail, "|", "\\|"))
	}
	for _, n := range rep.NotPlayed {
		fmt.Fprintf(w, "| | %s | not played: the send had finished |\n", n)
	}
	fmt.Fprintln(w)

	rl := rep.Relay
	fmt.Fprintf(w, "Relay: %s copies accepted on %s connections; RCPT answered 4xx %s times and 5xx %s times; %s chunks refused with 4xx after reading them; %s refused chunks read as commands (answers out of step); %s idle connections closed with 421",
		num(rl.Accepted), num(rl.Connections), num(rl.RCPT4xx), num(rl.RCPT5xx), num(rl.Chunk4xx), num(rl.Undrained), num(rl.IdleDrops))
	if rl.Unknown > 0 {
		fmt.Fprintf(w, "; %d copies to addresses of no reader", rl.Unknown)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintf(w, "Ledger at the end: send %s; deliveries %s (failed: %d permanently, %d after retries).\n\n",
		rep.FinalState, byCount(rep.Ledger.ByStatus), rep.Ledger.FailedPermanent, rep.Ledger.FailedAfterRetries)

	if len(rep.UnexplainedSample) > 0 {
		fmt.Fprintf(w, "Duplicated readers beyond the copies in flight (first %d): %s.\n\n", len(rep.UnexplainedSample), strings.Join(rep.UnexplainedSample, "; "))
	}
	if len(rep.Unrecorded5xxSample) > 0 {
		fmt.Fprintf(w, "Readers answered 5xx not recorded as failed permanently (first %d): %s.\n\n", len(rep.Unrecorded5xxSample), strings.Join(rep.Unrecorded5xxSample, "; "))
	}
	if len(rep.LostSample) > 0 {
		fmt.Fprintf(w, "Lost readers (first %d): %s.\n\n", len(rep.LostSample), strings.Join(rep.LostSample, "; "))
	}
	if len(rep.Failures) == 0 {
		fmt.Fprintln(w, "Pass: 0 lost, every 5xx recorded, duplicates within the copies in flight, no copy more than about a second after an unsubscribe, and the send finished.")
		return
	}
	fmt.Fprintln(w, "Failed rules:")
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "- %s\n", f)
	}
}

func lateReaders(l []LateCopy) int {
	seen := map[string]bool{}
	for _, c := range l {
		seen[c.Addr] = true
	}
	return len(seen)
}

// num writes n with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs1(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
