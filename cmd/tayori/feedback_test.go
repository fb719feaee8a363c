package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// The key and sender the reports in feedback/testdata/ were written for.
const (
	fixtureSecret = "fx1:feedback-fixture-secret-0123456789"
	fixtureFrom   = "AI政策動向 <newsletter@news.example.go.jp>"
	fixtureDir    = "../../feedback/testdata"
)

// feedbackEnv returns a getenv over a data directory holding n active
// readers (ids 1..n) and the open store and database on its file.
func feedbackEnv(t *testing.T, n int, kv ...string) (func(string) string, *subscribers.Store, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	getenv := testEnv(t, append([]string{"TAYORI_DATA_DIR", dir, "TAYORI_SECRET", fixtureSecret, "TAYORI_FROM", fixtureFrom}, kv...)...)
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(dir, "tayori.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id, secret, _ := strings.Cut(fixtureSecret, ":")
	ring, err := token.NewKeyring(time.Now, token.Key{ID: id, Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := store.SubscribersOnSQLite(ctx, db, subscribers.Options{Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		sub, err := store.Add(ctx, subscribers.NewSubscriber{Email: fmt.Sprintf("reader-%d@example.jp", i), Method: subscribers.API,
			Consent: &subscribers.Consent{At: time.Now(), Method: subscribers.API, Text: "同意"}, Cause: "test"})
		if err != nil || sub.ID != int64(i) {
			t.Fatalf("reader %d: %v, id %d", i, err, sub.ID)
		}
	}
	if err := queue.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return getenv, store, db
}

// seedSent records a finished send whose copies to readers went out at.
func seedSent(t *testing.T, db *sql.DB, send int64, at time.Time, readers ...int64) {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO sends (id, uid, issue_slug, issue_json, list_key, state, scheduled_at, created_at, updated_at, finished_at)
		VALUES (?, ?, '2026-01', x'7b7d', 'monthly', 'done', ?, ?, ?, ?)`,
		send, fmt.Sprint("seed", send), at.UnixMilli(), at.UnixMilli(), at.UnixMilli(), at.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for _, r := range readers {
		if _, err := db.Exec(`INSERT INTO deliveries (send_id, subscriber_id, batch, variant, status, attempts, reply, updated_at)
			VALUES (?, ?, 0, 'v', 'sent', 1, '250 2.0.0 Ok', ?)`, send, r, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

func runCLIWithStdin(t *testing.T, getenv func(string) string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenv, bytes.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func readerStatus(t *testing.T, store *subscribers.Store, id int64) subscribers.Status {
	t.Helper()
	s, err := store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Status
}

// TestFeedbackIngestAndList ingests the providers' reports from a
// directory, a maildir and stdin, with a bad file among them, then lists
// the events and the gate (checklist 34, 35, 36).
func TestFeedbackIngestAndList(t *testing.T) {
	getenv, store, db := feedbackEnv(t, 8)
	seedSent(t, db, 7, time.Now().Add(-48*time.Hour), 1, 2, 3, 4, 5, 6, 7, 8)
	seedSent(t, db, 9, time.Now().Add(-24*time.Hour), 5)

	// A maildir holding the ARF complaints, and a directory of DSNs with
	// a damaged file.
	maildir, dsnDir := t.TempDir(), t.TempDir()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.Mkdir(filepath.Join(maildir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(fixtureDir, "yahoo-arf-abuse.eml"), filepath.Join(maildir, "new", "1770109950.M1P1.mx"))
	copyFile(t, filepath.Join(fixtureDir, "yahoo-arf-redacted.eml"), filepath.Join(maildir, "cur", "1770204000.M2P1.mx:2,S"))
	for _, f := range []string{"gmail-5.1.1.eml", "outlook-5.1.10.eml", "postfix-4.4.1.eml", "gmail-5.7.26.eml", "outlook-5.7.515.eml", "yahoo-delayed.eml"} {
		copyFile(t, filepath.Join(fixtureDir, f), filepath.Join(dsnDir, f))
	}
	copyFile(t, filepath.Join(fixtureDir, "bad", "not-a-message.eml"), filepath.Join(dsnDir, "broken.eml"))
	copyFile(t, filepath.Join(fixtureDir, "bad", "out-of-office.eml"), filepath.Join(dsnDir, "vacation.eml"))

	out, stderr, err := runCLI(t, getenv, "feedback", "ingest", dsnDir, maildir, filepath.Join(dsnDir, "missing.eml"))
	if !errors.Is(err, errSilent) {
		t.Fatalf("ingest with a bad file: %v; want exit status 1\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"broken.eml: malformed report", "missing.eml:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, want := range []string{
		"gmail-5.1.1.eml: delivery-status from mailer-daemon@googlemail.com: hard 5.1.1 (gmail.com), reader 1 of send 7 by return-path: marked bounced and suppressed",
		"outlook-5.1.10.eml: delivery-status from postmaster@outlook.com: hard 5.1.10 (outlook.jp), reader 2 of send 7 by return-path: marked bounced",
		"postfix-4.4.1.eml: delivery-status from MAILER-DAEMON@mta.news.example.go.jp: soft 4.4.1 (docomo.ne.jp), reader 3 of send 7 by return-path: soft bounce recorded (1 in a row of 3)",
		"gmail-5.7.26.eml: delivery-status from MAILER-DAEMON@mta.news.example.go.jp: policy 5.7.26 (gmail.com), reader 4 of send 7 by return-path: alert: authentication refusal",
		"outlook-5.7.515.eml: delivery-status", "policy 5.7.515 (hotmail.com)",
		"yahoo-delayed.eml: delivery-status from MAILER-DAEMON@mta.news.example.go.jp: delayed 4.7.0 (aol.com)",
		"vacation.eml: skipped: not a bounce or complaint report",
		"1770109950.M1P1.mx: feedback-report from feedback@arf.mail.yahoo.com: complaint abuse (arf.mail.yahoo.com), reader 8 of send 7 by return-path: marked complained",
		"1770204000.M2P1.mx:2,S: feedback-report from feedback@arf.mail.yahoo.com: complaint abuse (arf.mail.yahoo.com), reader 5 of send 9 by message-id: marked complained",
		"8 reports read (0 already ingested), 1 skipped, 2 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest output lacks %q:\n%s", want, out)
		}
	}
	want := map[int64]subscribers.Status{1: subscribers.Bounced, 2: subscribers.Bounced, 3: subscribers.Active, 4: subscribers.Active,
		5: subscribers.Complained, 6: subscribers.Active, 7: subscribers.Active, 8: subscribers.Complained}
	for id, st := range want {
		if got := readerStatus(t, store, id); got != st {
			t.Errorf("reader %d is %s, want %s", id, got, st)
		}
	}

	// Stdin, as a Postfix pipe: the envelope recipient is given.
	dsn, err := os.ReadFile(filepath.Join(fixtureDir, "yahoo-552-notfound.eml"))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLIWithStdin(t, getenv, dsn, "feedback", "ingest", "--envelope-to", "b+jcsfjf8eyyp839dksrmy9e5gzmg@bounce.news.example.go.jp")
	if err != nil || !strings.Contains(out, "-: delivery-status from MAILER-DAEMON@mta.news.example.go.jp: hard 5.0.0 (yahoo.com), reader 6 of send 7") {
		t.Errorf("ingest from stdin: %v\n%s", err, out)
	}
	if readerStatus(t, store, 6) != subscribers.Bounced {
		t.Error("reader 6 not bounced")
	}
	// Again: nothing changes.
	out, _, err = runCLI(t, getenv, "feedback", "ingest", maildir)
	if err != nil || strings.Count(out, "already ingested, nothing done") != 2 {
		t.Errorf("second ingestion: %v\n%s", err, out)
	}

	// The list: events and the gate, closed by the two authentication
	// refusals; complaints 2 in 9 copies.
	out, _, err = runCLI(t, getenv, "feedback")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"9 copies sent, 2 complaints (22.22%", "2 authentication refusals (2 in reports, 0 from the relay)",
		"Send gate: CLOSED: 2 authentication refusals in the last 7 days",
		"RECEIVED", "policy (auth)  5.7.26", "hard", "complaint", "message-id", "marked complained",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("feedback list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "reader-") || strings.Contains(out, "nosuchuser@") {
		t.Errorf("the list shows an address:\n%s", out)
	}
	out, _, err = runCLI(t, getenv, "feedback", "list", "--json", "--limit", "3")
	if err != nil || !strings.Contains(out, `"Block": true`) || strings.Count(out, `"report_key"`) != 3 {
		t.Errorf("feedback list --json: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSendGateRefusesSend: with 4 complaints in 1,000 copies over the
// last 7 days, `tayori send` refuses with the figures; --ignore-gate
// sends; test sends and dry runs are not refused (checklist 36).
func TestSendGateRefusesSend(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	_, n := testutil.RedisDBNumber(t)
	getenv, store, db := feedbackEnv(t, 3, "TAYORI_REDIS_URL", testutil.RedisDBURL(t, n), "TAYORI_SMTP_URL", smtp.URL(),
		"TAYORI_POSTAL_ADDRESS", "東京都港区六本木1-1-1", "TAYORI_CONTACT", "https://news.example.go.jp/contact")
	ctx := context.Background()
	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(1000 + i) // readers since gone; only the deliveries matter
	}
	seedSent(t, db, 1, time.Now().Add(-3*24*time.Hour), ids...)
	seedSent(t, db, 2, time.Now().Add(-30*24*time.Hour), ids[:500]...) // outside the window
	var events []subscribers.FeedbackEvent
	for i := range 4 {
		events = append(events, subscribers.FeedbackEvent{ReportKey: fmt.Sprint("arf-", i), ReceivedAt: time.Now().Add(-time.Duration(i+1) * time.Hour),
			Kind: "complaint", Status: "abuse", Domain: "yahoo.com", SendID: 1, MatchedBy: "return-path", Action: "marked complained"})
	}
	// Forged complaints (no valid token) are shown, not counted.
	for i := range 10 {
		events = append(events, subscribers.FeedbackEvent{ReportKey: fmt.Sprint("forged-", i), ReceivedAt: time.Now().Add(-time.Minute),
			Kind: "complaint", Status: "abuse", Domain: "forged.example", Action: "recorded"})
	}
	if _, err := store.RecordFeedback(ctx, events); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runCLI(t, getenv, "feedback"); err != nil || !strings.Contains(out, "4 complaints (0.40%") ||
		!strings.Contains(out, "Not counted: 10 complaint or refusal reports that matched no copy") {
		t.Errorf("feedback with forged complaints: %v\n%s", err, out)
	}
	issue := filepath.Join("..", "..", "testdata", "aisi-monthly-2025-11.txt")

	_, _, err := runCLI(t, getenv, "send", issue, "--force")
	if !errors.Is(err, queue.ErrBlocked) {
		t.Fatalf("send with 0.4%% complaints: %v; want the gate's refusal", err)
	}
	for _, want := range []string{"send refused by the send gate", "complaint rate 0.40% (4 complaints / 1000 copies sent in the last 7 days)", "0.30% limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	var sends int
	if err := db.QueryRow(`SELECT count(*) FROM sends WHERE id > 2`).Scan(&sends); err != nil || sends != 0 {
		t.Fatalf("%d sends recorded after the refusal (%v)", sends, err)
	}
	if out, _, err := runCLI(t, getenv, "send", issue, "--force", "--dry-run"); err != nil || !strings.Contains(out, "Nothing was sent") {
		t.Errorf("dry run with a closed gate: %v\n%s", err, out)
	}
	if out, _, err := runCLI(t, getenv, "send", issue, "--force", "--test-to", "editor@news.example.go.jp"); err != nil || !strings.Contains(out, "queued test copy") {
		t.Errorf("test send with a closed gate: %v\n%s", err, out)
	}
	out, stderr, err := runCLI(t, getenv, "send", issue, "--force", "--ignore-gate")
	if err != nil || !strings.Contains(out, "send 3:") || !strings.Contains(stderr, "warning: send gate: gate ignored: complaint rate 0.40%") {
		t.Errorf("send --ignore-gate: %v\n%s\n%s", err, out, stderr)
	}

	// One complaint fewer than 0.3%: 2 in 1,000 warns and sends (once send
	// 3, which sent nothing, no worker running, is cancelled: an issue goes
	// to a list in one send).
	if _, err := db.Exec(`DELETE FROM feedback_events WHERE report_key IN ('arf-0', 'arf-1')`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, getenv, "send", "cancel", "3"); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runCLI(t, getenv, "send", issue, "--force")
	if err != nil || !strings.Contains(out, "send 4:") || !strings.Contains(stderr, "warning: send gate: complaint rate 0.20%") {
		t.Errorf("send at 0.2%%: %v\n%s\n%s", err, out, stderr)
	}
}

// Piped in by an MTA (`feedback ingest -`), a report that cannot be
// recorded for a reason of ours exits 75 (EX_TEMPFAIL), so the MTA keeps
// it and retries; a report that is itself broken exits 1.
func TestFeedbackIngestPipeExitStatus(t *testing.T) {
	report, err := os.ReadFile(filepath.Join(fixtureDir, "gmail-5.1.1.eml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := testEnv(t, "TAYORI_DATA_DIR", dir, "TAYORI_SECRET", fixtureSecret, "TAYORI_FROM", fixtureFrom,
		"TAYORI_DB", "sqlite:"+filepath.Join(blocker, "tayori.db"))
	_, _, err = runCLIWithStdin(t, getenv, report, "feedback", "ingest", "-")
	if err == nil || exitCode(err) != 75 {
		t.Errorf("store unavailable: %v, exit %d; want 75", err, exitCode(err))
	}

	getenv, _, _ = feedbackEnv(t, 1)
	_, stderr, err := runCLIWithStdin(t, getenv, []byte("From: x\r\n\r\nnot a report at all\r\n"), "feedback", "ingest", "-")
	if err != nil {
		t.Errorf("a message that is no report: %v (%s), want it skipped", err, stderr)
	}
	broken, err := os.ReadFile(filepath.Join(fixtureDir, "bad", "not-a-message.eml"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLIWithStdin(t, getenv, broken, "feedback", "ingest", "-")
	if err == nil || exitCode(err) != 1 {
		t.Errorf("malformed report: %v, exit %d; want 1", err, exitCode(err))
	}
}
