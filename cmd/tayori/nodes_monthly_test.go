package main

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/chaos"
	"github.com/tayori-news/tayori/internal/testutil"
)

// TestSeveralNodesMonthlyOnce is issue 19's "the monthly scheduler fires
// once": two `tayori run` processes, each with a data directory and HTTP
// port of its own, share Redis and PostgreSQL and both run the monthly
// schedule (every minute here, so that a tick falls inside the test; each
// month has one send whatever the ticks). One holds the scheduler lease
// and creates the month's send on taking it (the catch-up of the tick just
// past); every reader gets one copy. Then the holder is SIGKILLed: the
// other takes the lease over when it expires, catches up the same tick,
// finds its send and creates nothing. One send in the store, one "monthly
// send created" in both logs together, one copy per reader.
//
// `tayori worker` processes schedule under the same lease:
// TestWorkersScheduleOnce makes the same check with two workers.
func TestSeveralNodesMonthlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	repo, err := chaos.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := chaos.Build(ctx, repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	dsn := testutil.EngineByName(t, "postgres").URL(t)
	relay := testutil.StartSMTP(t, testutil.WithoutBodies())
	_, rdbN := testutil.RedisDBNumber(t)
	work := t.TempDir()
	const zone = "Asia/Tokyo"
	shared := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + work,
		"TAYORI_DB=" + dsn,
		"TAYORI_REDIS_URL=" + testutil.RedisDBURL(t, rdbN),
		"TAYORI_SMTP_URL=" + relay.URL(),
		"TAYORI_SECRET=nodes:0123456789abcdef0123456789abcdef",
		"TAYORI_FROM=AI政策動向 <newsletter@nodes.example.jp>",
		"TAYORI_POSTAL_ADDRESS=東京都港区六本木1-1-1",
		"TAYORI_CONTACT=https://nodes.example.jp/contact",
		"TAYORI_TIMEZONE=" + zone,
		"TAYORI_SHUTDOWN_TIMEOUT=5s",
		"TAYORI_LOG_LEVEL=info",
	}
	envOf := func(name string) []string {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return append(append([]string(nil), shared...), "TAYORI_DATA_DIR="+dir,
			"TAYORI_HTTP_ADDR="+addr, "TAYORI_BASE_URL=http://"+addr)
	}
	cliEnv := envOf("cli")
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = cliEnv
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("tayori %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	cli("init")
	csvPath := filepath.Join(work, "readers.csv")
	writeAllRegionsReaders(t, csvPath, n)
	cli("subscribers", "import", csvPath, "--list", "monthly")
	// The month's issue, under the month's slug in the issues directory.
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	issues := filepath.Join(work, "issues")
	if err := os.MkdirAll(issues, 0o755); err != nil {
		t.Fatal(err)
	}
	month := time.Now().In(loc).Format("2006-01")
	if time.Now().In(loc).Add(90*time.Second).Format("2006-01") != month {
		t.Fatalf("the month turns within the test (%s, %s): run it again in two minutes", time.Now().In(loc), zone)
	}
	issue := filepath.Join(issues, month+".md")
	cli("compose", "import", filepath.Join(repo, "testdata", "aisi-monthly-2025-11.txt"), "-o", issue)
	md, err := os.ReadFile(issue)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(issue, bytes.ReplaceAll(md, []byte("®="), []byte("&reg=")), 0o644); err != nil {
		t.Fatal(err)
	}

	runs := []*nodeProc{
		// The schedule from the environment both read (TAYORI_MONTHLY),
		// as an installation's shared env file gives it; --monthly would
		// set it for one process only.
		{t: t, name: "run-1", bin: bin, args: []string{"run"}, env: append(envOf("run-1"), "TAYORI_MONTHLY=* * * * *", "TAYORI_ISSUES_DIR="+issues), dir: work},
		{t: t, name: "run-2", bin: bin, args: []string{"run"}, env: append(envOf("run-2"), "TAYORI_MONTHLY=* * * * *", "TAYORI_ISSUES_DIR="+issues), dir: work},
	}
	for _, p := range runs {
		p.start()
		t.Cleanup(p.stop)
	}
	logOf := func(p *nodeProc) string {
		data, _ := os.ReadFile(filepath.Join(work, p.name+".log"))
		return string(data)
	}
	count := func(what string) (total int) {
		for _, p := range runs {
			total += strings.Count(logOf(p), what)
		}
		return total
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v (relay accepted %d copies)\nrun-1:\n%s\nrun-2:\n%s", what, ctx.Err(), len(relay.Messages()),
					lastLines(logOf(runs[0]), 20), lastLines(logOf(runs[1]), 20))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	copies := func() map[string]int {
		per := map[string]int{}
		for _, m := range relay.Messages() {
			for _, to := range m.To {
				per[strings.ToLower(to)]++
			}
		}
		return per
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor("every reader's copy of the monthly send", func() bool { return len(copies()) >= n })
	// The send recorded done before the kill: the relay has accepted the
	// last copies a moment before their run records them, and a run
	// killed in between is taken over and sends those again (as it
	// should; TestSeveralNodes counts such copies), which is not what
	// this test is about.
	waitFor("the monthly send to be done", func() bool {
		var state string
		err := db.QueryRowContext(ctx, `SELECT state FROM sends ORDER BY id LIMIT 1`).Scan(&state)
		return err == nil && state == "done"
	})

	holder, other := runs[0], runs[1]
	if !strings.Contains(logOf(holder), "scheduler lease taken") {
		holder, other = other, holder
	}
	if strings.Contains(logOf(other), "scheduler lease taken") {
		t.Fatalf("both processes took the scheduler lease")
	}
	holder.kill()
	waitFor("the other process to take the scheduler lease", func() bool {
		return strings.Contains(logOf(other), "scheduler lease taken")
	})
	// Its catch-up runs as it takes the lease; let it and any tick finish.
	time.Sleep(3 * time.Second)

	var sends int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sends`).Scan(&sends); err != nil {
		t.Fatal(err)
	}
	if sends != 1 {
		t.Errorf("%d sends in the store, want the month's one", sends)
	}
	if c := count("monthly send created"); c != 1 {
		t.Errorf(`"monthly send created" %d times in the two logs, want once`, c)
	}
	per := copies()
	for reader, c := range per {
		if c != 1 {
			t.Errorf("%s got %d copies", reader, c)
		}
	}
	if len(per) != n {
		t.Errorf("%d readers got a copy, want %d", len(per), n)
	}
	t.Logf("%s held the schedule and was killed; %s took it over; %d sends, %d readers with one copy each", holder.name, other.name, sends, len(per))
}
