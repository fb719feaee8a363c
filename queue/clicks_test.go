package queue_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/clicks"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
)

// clickLink finds the counting redirects in a copy.
var clickLink = regexp.MustCompile(regexp.QuoteMeta(testBaseURL) + `/c/([A-Za-z0-9_-]+)`)

// TestClicksAggregateOnly sends an issue to a few readers of a list that
// counts clicks, follows links from the delivered copies, and then reads
// every table of the database: the counts are right, the links are the
// same in every reader's copy, and nothing that a click wrote names a
// reader (no id, public id, address or token of theirs).
func TestClicksAggregateOnly(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, clicks: true})
		if on, err := e.store.ListCountsClicks(e.ctx, testList); err != nil || on {
			t.Fatalf("count_clicks by default = %v, %v; want off", on, err)
		}
		if err := e.store.SetListCountsClicks(e.ctx, testList, true); err != nil {
			t.Fatal(err)
		}
		readers := []struct {
			email string
			prefs audience.Prefs
		}{
			{"click-a@example.jp", audience.All()},
			{"click-b@example.jp", audience.All()},
			{"click-c@example.jp", prefs("jp", "policy,activities,reports")},
		}
		var subs []subscribers.Subscriber
		for i, r := range readers {
			subs = append(subs, e.addReader(r.email, fmt.Sprintf("読者%d", i), r.prefs))
		}
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		e.waitState(snd.ID, queue.Done, 30*time.Second)

		links, err := e.clicks.SendLinks(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(clicks.IssueLinks(snd.ID, testList, is)); len(links) != want || want == 0 {
			t.Fatalf("%d links recorded, want %d", len(links), want)
		}

		// Each copy's counted links, and everything personal in it.
		tokens := map[string][]string{}
		var personal []string
		for i, r := range readers {
			msgs := e.smtp.MessagesTo(r.email)
			if len(msgs) != 1 {
				t.Fatalf("%s got %d copies", r.email, len(msgs))
			}
			text, html := mailParts(t, msgs[0].Raw)
			for _, part := range []string{text, html} {
				for _, m := range clickLink.FindAllStringSubmatch(part, -1) {
					if !slices.Contains(tokens[r.email], m[1]) {
						tokens[r.email] = append(tokens[r.email], m[1])
					}
				}
			}
			for _, own := range []string{"/u/", "/p/"} {
				if !strings.Contains(text, testBaseURL+own) {
					t.Errorf("%s: the copy lacks its %s link", r.email, own)
				}
			}
			if strings.Contains(html, `<img`) && strings.Contains(html, "/c/") && regexp.MustCompile(`<img[^>]+/c/`).MatchString(html) {
				t.Errorf("%s: an image loads through the counter (an open pixel)", r.email)
			}
			unsub, _ := e.store.UnsubscribeToken(subs[i].PublicID, testList)
			pref, _ := e.store.PreferencesToken(subs[i].PublicID, testList)
			personal = append(personal, r.email, subs[i].PublicID, unsub, pref, "読者"+strconv.Itoa(i))
		}
		a, b, c := tokens[readers[0].email], tokens[readers[1].email], tokens[readers[2].email]
		if len(a) != len(links) {
			t.Fatalf("a full copy carries %d counted links, want %d", len(a), len(links))
		}
		if !slices.Equal(a, b) {
			t.Error("two readers of the same variant got different links")
		}
		if len(c) == 0 || len(c) >= len(a) {
			t.Fatalf("the partial copy carries %d counted links (full: %d)", len(c), len(a))
		}
		for _, tok := range c {
			if !slices.Contains(a, tok) {
				t.Errorf("the partial copy's link %s is not the full copy's", tok)
			}
		}
		for _, tok := range a {
			for _, p := range personal {
				if p != "" && strings.Contains(tok, p) {
					t.Errorf("token %s carries %q", tok, p)
				}
			}
		}

		before := dumpTables(t, e)
		// Reader A follows three links, B the first one twice, C one of
		// its own: the first link is clicked 4 times.
		want := map[string]int64{}
		follow := func(tok string) {
			t.Helper()
			u, err := e.clicks.Click(e.ctx, tok)
			if err != nil {
				t.Fatalf("click %s: %v", tok, err)
			}
			if !strings.HasPrefix(u, "https://") || strings.HasPrefix(u, testBaseURL) {
				t.Errorf("click %s went to %q", tok, u)
			}
			want[tok]++
		}
		for _, tok := range a[:3] {
			follow(tok)
		}
		follow(a[0])
		follow(a[0])
		follow(c[0])
		if c[0] == a[0] {
			t.Log("the partial copy's first link is the full copy's first")
		}
		after := dumpTables(t, e)

		links, err = e.clicks.SendLinks(e.ctx, snd.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range a {
			var n int64
			for _, l := range links {
				if e.clicks.URL(clicks.Ref{SendID: snd.ID, Seq: l.Seq}) == testBaseURL+"/c/"+tok {
					n = l.Clicks
					if n > 0 && (l.FirstDay == "" || l.LastDay == "") {
						t.Errorf("link %d: clicked without a day", l.Seq)
					}
				}
			}
			if n != want[tok] {
				t.Errorf("link %s: %d clicks, want %d", tok, n, want[tok])
			}
		}

		// Every row a click wrote is in click_links, and no row of
		// click_links (all of it) carries anything of a reader.
		for table, rows := range after {
			if table == "click_links" {
				continue
			}
			if !slices.Equal(rows, before[table]) {
				t.Errorf("following links changed table %s", table)
			}
		}
		cols := columns(t, e, "click_links")
		slices.Sort(cols)
		wantCols := []string{"clicks", "first_day", "headline", "item", "last_day", "link", "list", "section", "section_title", "send_id", "seq", "url"}
		if !slices.Equal(cols, wantCols) {
			t.Errorf("click_links has columns %v, want %v", cols, wantCols)
		}
		for _, row := range after["click_links"] {
			for _, p := range personal {
				if p != "" && strings.Contains(row, p) {
					t.Errorf("click_links row %q carries %q", row, p)
				}
			}
		}
		if len(after["click_links"]) != len(links) {
			t.Errorf("click_links has %d rows after clicks, want one per link (%d): no row per click", len(after["click_links"]), len(links))
		}
		// No other table has a column about clicks.
		for table := range after {
			for _, c := range columns(t, e, table) {
				if table != "click_links" && table != "lists" && strings.Contains(c, "click") {
					t.Errorf("table %s has a click column %s", table, c)
				}
			}
		}

		// A forged or unknown token counts nothing.
		forged := []byte(a[0])
		forged[len(forged)/2] ^= 1
		if forged[len(forged)/2] == '_' || forged[len(forged)/2] == '-' {
			forged[len(forged)/2] = 'A'
		}
		for _, bad := range []string{string(forged), "", "AAAA", a[0] + "A"} {
			if _, err := e.clicks.Click(e.ctx, bad); err == nil {
				t.Errorf("Click(%q) accepted", bad)
			}
		}
		if _, err := e.clicks.Click(e.ctx, strings.TrimPrefix(e.clicks.URL(clicks.Ref{SendID: snd.ID, Seq: 9999}), testBaseURL+"/c/")); err == nil {
			t.Error("a link not recorded was counted")
		}
		if got := dumpTables(t, e)["click_links"]; !slices.Equal(got, after["click_links"]) {
			t.Error("bad tokens changed the counts")
		}
	})
}

// TestClicksOffByDefault: a list that does not count clicks records no
// link and its copies keep the links as written.
func TestClicksOffByDefault(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, clicks: true})
		e.addReader("plain@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: loadIssue(t, "aisi-monthly-2025-11.txt"), List: testList})
		if err != nil {
			t.Fatal(err)
		}
		e.waitState(snd.ID, queue.Done, 30*time.Second)
		if links, err := e.clicks.SendLinks(e.ctx, snd.ID); err != nil || len(links) != 0 {
			t.Fatalf("links of a send without counting: %d, %v", len(links), err)
		}
		text, html := mailParts(t, e.smtp.MessagesTo("plain@example.jp")[0].Raw)
		if strings.Contains(text+html, "/c/") {
			t.Error("a copy of a list that does not count clicks has a counting link")
		}
		if !strings.Contains(text, "https://www.soumu.go.jp/") {
			t.Error("the copy lacks the links as written")
		}
	})
}

// dumpTables reads every table of the store as sorted text rows.
func dumpTables(t *testing.T, e *env) map[string][]string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if e.engine == string(store.Postgres) {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := e.query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if !slices.Contains(tables, "click_links") || !slices.Contains(tables, "subscribers") {
		t.Fatalf("tables %v lack click_links or subscribers", tables)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rs, err := e.query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rs.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		out[table] = []string{}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatalf("read %s: %v", table, err)
			}
			var b strings.Builder
			for i, v := range vals {
				if i > 0 {
					b.WriteString("|")
				}
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprint(&b, v)
			}
			out[table] = append(out[table], b.String())
		}
		rs.Close()
		slices.Sort(out[table])
	}
	return out
}

// columns returns a table's column names.
func columns(t *testing.T, e *env, table string) []string {
	t.Helper()
	rs, err := e.query(`SELECT * FROM ` + table + ` WHERE 1 = 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// mailParts returns the decoded text and HTML parts of a raw message.
func mailParts(t *testing.T, raw []byte) (text, html string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "base64":
			b, _ := io.ReadAll(p)
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
			r = base64.NewDecoder(base64.StdEncoding, bytes.NewReader(b))
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt == "text/html" {
			html = string(b)
		} else {
			text = string(b)
		}
	}
}
