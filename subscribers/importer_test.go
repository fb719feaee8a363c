package subscribers_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/subscribers"
)

func importString(t *testing.T, s *subscribers.Store, csv string, opts subscribers.ImportOptions) subscribers.ImportResult {
	t.Helper()
	res, err := s.Import(ctx, strings.NewReader(csv), opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

func problems(ps []*subscribers.FieldError) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

const goodCSV = "\uFEFFEmail,Name,Regions,Topics,Consent_At,Consent-Method,Consent Version,consent_text,Favourite Colour\n" +
	"taro@example.jp,山田太郎,\"jp,us\",policy,2025-12-01T09:00:00+09:00,import,paper-2025,同意します,blue\n" +
	"hanako@例え.jp,花子,eu,\"reports,gpu\",2025-12-02,,paper-2025,同意します,red\n" +
	"jiro@example.jp,次郎,,,,,,,green\n" +
	"saburo@example.jp,三郎,asia,activities,2025-12-03,,,,\n"

func TestImport(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			res := importString(t, e.store, goodCSV, subscribers.ImportOptions{})
			if res.Rows != 4 || res.Added != 4 || res.ErrorRows != 0 || res.Skipped != 0 {
				t.Fatalf("first import: %+v (%v)", res, problems(res.Errors))
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `"Favourite Colour"`) {
				t.Errorf("warnings = %q, want one about the unknown column", res.Warnings)
			}
			taro, err := e.store.FindByEmail(ctx, "taro@example.jp")
			if err != nil {
				t.Fatal(err)
			}
			if taro.Status != subscribers.Active || taro.Name != "山田太郎" || taro.Prefs.Key() != "jp,us|policy" {
				t.Errorf("taro = %+v", taro)
			}
			cs, _ := e.store.Consents(ctx, taro.ID)
			if len(cs) != 1 || cs[0].Method != subscribers.Imported || cs[0].FormVersion != "paper-2025" ||
				cs[0].TextSHA256 != subscribers.HashText("同意します") || cs[0].At.Format("2006-01-02T15") != "2025-12-01T00" {
				t.Errorf("taro's consent = %+v", cs)
			}
			hanako, _ := e.store.FindByEmail(ctx, "hanako@xn--r8jz45g.jp")
			if hanako.Prefs.Key() != "eu|reports,gpu" || hanako.Status != subscribers.Active {
				t.Errorf("hanako = %+v", hanako)
			}
			jiro, _ := e.store.FindByEmail(ctx, "jiro@example.jp")
			if jiro.Status != subscribers.Pending {
				t.Errorf("jiro without consent = %s, want pending", jiro.Status)
			}

			// Re-importing the same file changes nothing.
			dbBefore := dump(t, e.db)
			e.clock.Advance(3600e9)
			res = importString(t, e.store, goodCSV, subscribers.ImportOptions{})
			if res.Unchanged != 4 || res.Added+res.Updated+res.Skipped+res.ErrorRows != 0 {
				t.Errorf("re-import: %+v", res)
			}
			if dbAfter := dump(t, e.db); dbAfter != dbBefore {
				t.Error("re-import changed the database")
			}

			// An update: new name and preferences, a consent for the pending one.
			res = importString(t, e.store, "email,name,topics,consent_at\njiro@example.jp,Jiro,reports,2026-01-05\ntaro@example.jp,山田太郎,,\n", subscribers.ImportOptions{})
			if res.Updated != 1 || res.Unchanged != 1 {
				t.Errorf("update import: %+v %v", res, problems(res.Errors))
			}
			jiro, _ = e.store.FindByEmail(ctx, "jiro@example.jp")
			if jiro.Name != "Jiro" || jiro.Status != subscribers.Active || jiro.Prefs.Key() != "jp,us,eu,asia,intl|reports" {
				t.Errorf("jiro after update = %+v", jiro)
			}
		})
	}
}

// Every bad row is reported with its row number, field and reason, all
// its problems at once, and the good rows are imported anyway.
func TestImportBadRows(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			csv := "email,name,regions,topics,status,consent_at,consent_text_sha256\n" +
				"ok1@example.jp,,,,,,\n" + // row 2
				"not-an-address,,mars,,,,\n" + // row 3: email and regions
				"ok2@example.jp,\"multi\nline\",,,,,\n" + // row 4: name with a line break
				"ok3@example.jp,,,Bad Tag!,active,,\n" + // row 6: topic, active without consent
				"OK1@example.jp,,,,,,\n" + // row 7: same address as row 2
				"ok4@example.jp,,,,,yesterday,xyz\n" + // row 8: time, hash
				"ok5@example.jp,,,,\n" + // row 9: field count
				"ok6@example.jp,\xff\xfe,,,,,\n" + // row 10: invalid UTF-8
				"ok7@example.jp,,,,bogus,,\n" + // row 11: status
				"ok8@example.jp,,,,unsubscribed,,\n" // row 12: fine (an opt-out record)
			res := importString(t, e.store, csv, subscribers.ImportOptions{})
			want := []string{
				"row 3: email: missing @",
				`row 3: regions: invalid audience value: region "mars"`,
				"row 4: name: contains a line break",
				`row 6: topics: invalid audience value: topic "Bad Tag!"`,
				"row 6: status: active needs a recorded consent",
				"row 7: email: same address as row 2",
				"row 8: consent_at: not a time",
				"row 8: consent_text_sha256: not 64 hex digits",
				"row 9: csv: has 5 fields, the header has 7",
				"row 10: name: not valid UTF-8",
				`row 11: status: "bogus" is not one of`,
			}
			got := problems(res.Errors)
			if len(got) != len(want) {
				t.Errorf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
			}
			for i := range min(len(got), len(want)) {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], want[i])
				}
			}
			if res.Added != 2 || res.ErrorRows != 8 || res.Rows != 10 {
				t.Errorf("counts: %+v", res)
			}
			if s, err := e.store.FindByEmail(ctx, "ok8@example.jp"); err != nil || s.Status != subscribers.Unsubscribed || s.Sendable("monthly") {
				t.Errorf("opt-out row: %+v, %v", s, err)
			}
			for _, p := range res.Errors {
				if strings.Contains(p.Reason, "not-an-address") {
					t.Errorf("reason repeats the address: %q", p.Reason)
				}
			}
		})
	}
}

// An unsubscribed, bounced or complained subscriber, or one who left the
// list, is never re-activated by an import.
func TestImportNeverReactivates(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			unsub := mustActive(t, e.store, subscribers.NewSubscriber{Email: "unsub@example.jp"})
			bounced := mustActive(t, e.store, subscribers.NewSubscriber{Email: "bounced@example.jp"})
			left := mustActive(t, e.store, subscribers.NewSubscriber{Email: "left@example.jp", Lists: []string{"monthly"}})
			e.store.CreateList(ctx, "alerts", "Alerts")
			e.store.Unsubscribe(ctx, unsub.ID, "", "link")
			e.store.MarkBounced(ctx, bounced.ID, "5.1.1")
			mustAdd(t, e.store, subscribers.NewSubscriber{Email: "left@example.jp"})
			if _, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "x@example.jp"}); err != nil {
				t.Fatal(err)
			}
			// left joins alerts by confirming, then leaves monthly only.
			tok, _ := e.store.ConfirmToken(ctx, left.ID, "alerts")
			if _, err := e.store.Confirm(ctx, tok, subscribers.Consent{}); err != nil {
				t.Fatal(err)
			}
			e.store.Unsubscribe(ctx, left.ID, "monthly", "link")

			csv := "email,name,status,consent_at\n" +
				"unsub@example.jp,New Name,active,2026-01-01\n" +
				"bounced@example.jp,,,2026-01-01\n" +
				"left@example.jp,,active,2026-01-01\n" +
				"unsub@example.jp.invalid-dup,,,\n"
			res := importString(t, e.store, csv, subscribers.ImportOptions{List: "monthly"})
			if res.Skipped != 3 || res.Added != 1 {
				t.Fatalf("import: %+v skips %v errors %v", res, problems(res.Skips), problems(res.Errors))
			}
			for _, c := range []struct {
				email string
				want  subscribers.Status
			}{{"unsub@example.jp", subscribers.Unsubscribed}, {"bounced@example.jp", subscribers.Bounced}} {
				s, _ := e.store.FindByEmail(ctx, c.email)
				if s.Status != c.want || s.Name != "" {
					t.Errorf("%s = %s %q, want %s unchanged", c.email, s.Status, s.Name, c.want)
				}
			}
			s, _ := e.store.FindByEmail(ctx, "left@example.jp")
			if slices.Contains(s.Lists, "monthly") {
				t.Errorf("left rejoined monthly: %v", s.Lists)
			}
			// A downgrade is allowed: an import of opt-outs from another system.
			res = importString(t, e.store, "email,status\nx@example.jp,unsubscribed\n", subscribers.ImportOptions{})
			if res.Updated != 1 {
				t.Errorf("opt-out import: %+v", res)
			}
			if x, _ := e.store.FindByEmail(ctx, "x@example.jp"); x.Status != subscribers.Unsubscribed {
				t.Errorf("x = %s", x.Status)
			}
		})
	}
}

func TestImportDryRunAndList(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			before := dump(t, e.db)
			res := importString(t, e.store, goodCSV, subscribers.ImportOptions{DryRun: true, BatchSize: 2})
			if res.Added != 4 {
				t.Errorf("dry run counted %+v", res)
			}
			if after := dump(t, e.db); after != before {
				t.Error("dry run changed the database")
			}
			if _, err := e.store.Import(ctx, strings.NewReader(goodCSV), subscribers.ImportOptions{List: "nope"}); !errors.Is(err, subscribers.ErrNotFound) {
				t.Errorf("unknown list: %v", err)
			}
			e.store.CreateList(ctx, "alerts", "Alerts")
			res = importString(t, e.store, goodCSV, subscribers.ImportOptions{List: "alerts", BatchSize: 3})
			if res.Added != 4 {
				t.Errorf("import into alerts: %+v", res)
			}
			res = importString(t, e.store, goodCSV, subscribers.ImportOptions{List: "monthly"})
			if res.Updated != 4 {
				t.Errorf("known subscribers joining monthly: %+v", res)
			}
			if r := recipients(t, e.store, subscribers.RecipientQuery{List: "monthly"}); len(r) != 3 {
				t.Errorf("monthly recipients = %d, want the 3 with consent", len(r))
			}
		})
	}
}

func TestImportFileErrors(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			for _, c := range []struct{ name, csv, want string }{
				{"Empty", "", "empty file"},
				{"NoEmail", "name,regions\nx,jp\n", "no email column"},
				{"DuplicateColumn", "email,E-Mail\nx,y\n", "columns 1 and 2 both give email"},
				{"BadHeaderEncoding", "email,\xff\n", "not valid UTF-8"},
			} {
				t.Run(c.name, func(t *testing.T) {
					_, err := e.store.Import(ctx, strings.NewReader(c.csv), subscribers.ImportOptions{})
					if err == nil || !strings.Contains(err.Error(), c.want) {
						t.Errorf("got %v, want %q", err, c.want)
					}
				})
			}
			// A line without end: a file-level error naming the line.
			long := "email\na@example.jp\n" + strings.Repeat("x", subscribers.MaxImportLine+1)
			if _, err := e.store.Import(ctx, strings.NewReader(long), subscribers.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "line 3 is longer than") {
				t.Errorf("overlong line: %v", err)
			}
			// A bare quote is a row error, and the rows after it still import.
			res := importString(t, e.store, "email,name\na@example.jp,x\"y\nb@example.jp,ok\n", subscribers.ImportOptions{})
			if res.ErrorRows != 1 || res.Added != 1 || res.Errors[0].Row != 2 || res.Errors[0].Field != "csv" {
				t.Errorf("bare quote: %+v %v", res, problems(res.Errors))
			}
		})
	}
}

// Export then import into a fresh store reproduces the subscribers, and
// importing the export into the same store changes nothing.
func TestExportCSVRoundTrip(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			importString(t, e.store, goodCSV, subscribers.ImportOptions{})
			mustActive(t, e.store, subscribers.NewSubscriber{Email: "web@example.jp", Name: "=HYPERLINK(\"x\")"})
			var buf bytes.Buffer
			n, err := e.store.ExportCSV(ctx, &buf, subscribers.ExportQuery{})
			if err != nil || n != 5 {
				t.Fatalf("ExportCSV = %d, %v", n, err)
			}
			if !strings.Contains(buf.String(), `'=HYPERLINK`) {
				t.Errorf("formula-like name not neutralised:\n%s", buf.String())
			}
			res := importString(t, e.store, buf.String(), subscribers.ImportOptions{})
			if res.Unchanged != 5 || len(res.Warnings) != 0 {
				t.Errorf("re-import of the export: %+v %v %v", res, problems(res.Errors), res.Warnings)
			}
			f := newEnv(t, eng)
			res = importString(t, f.store, buf.String(), subscribers.ImportOptions{})
			if res.Added != 5 {
				t.Fatalf("import into a fresh store: %+v %v", res, problems(res.Errors))
			}
			a, _ := e.store.List(ctx, subscribers.ListQuery{})
			b, _ := f.store.List(ctx, subscribers.ListQuery{})
			for i := range a {
				if a[i].Email != b[i].Email || a[i].Name != b[i].Name || a[i].Status != b[i].Status || a[i].Prefs.Key() != b[i].Prefs.Key() {
					t.Errorf("round trip: %+v → %+v", a[i], b[i])
				}
			}
			var js bytes.Buffer
			if n, err := e.store.ExportJSON(ctx, &js, subscribers.ExportQuery{Status: subscribers.Active}); err != nil || n != 4 {
				t.Errorf("ExportJSON = %d, %v", n, err)
			}
		})
	}
}

// FuzzImport: arbitrary CSV never panics; every row lands in exactly one
// bucket; every problem names a row and a field; importing the same input
// again adds nothing.
func FuzzImport(f *testing.F) {
	f.Add(goodCSV)                                               // valid, BOM, unknown column
	f.Add("email\n")                                             // header only
	f.Add("email,name\n\"a@example.jp\",\"unterminated\n")       // open quote
	f.Add("email,status,consent_at\na@x.jp,active,2026-01-01\n") // active
	f.Add("email,regions\na@x.jp,\"jp,,mars\"\n")                // bad region
	f.Add("email\na@x.jp\nA@X.JP\n")                             // duplicate
	f.Add("email\n\xff@x.jp\n")                                  // invalid UTF-8
	f.Add("name\nx\n")                                           // no email column
	f.Add("email,email\n")                                       // duplicate column
	f.Add("email,name\na@x.jp,x\r\ny@x.jp,\"a\r\nb\"\n")         // CR/LF in fields
	var envs []*env
	for _, eng := range testutil.Engines() {
		envs = append(envs, newEnv(f, eng))
	}
	i := 0
	f.Fuzz(func(t *testing.T, in string) {
		i++
		for _, e := range envs {
			fuzzImportOn(t, e, i, in)
		}
	})
}

func fuzzImportOn(t *testing.T, e *env, i int, in string) {
	{
		list := fmt.Sprintf("l%d", i)
		if _, err := e.store.CreateList(ctx, list, "fuzz"); err != nil {
			t.Fatal(err)
		}
		res, err := e.store.Import(ctx, strings.NewReader(in), subscribers.ImportOptions{List: list})
		if err != nil {
			return // a file-level problem (header); must not panic
		}
		if sum := res.Added + res.Updated + res.Unchanged + res.Skipped + res.ErrorRows; sum != res.Rows {
			t.Fatalf("buckets %+v do not add up to %d rows", res, res.Rows)
		}
		for _, p := range append(res.Errors, res.Skips...) {
			if p.Row < 2 || p.Field == "" || p.Reason == "" {
				t.Fatalf("problem without place: %+v", p)
			}
		}
		again, err := e.store.Import(ctx, strings.NewReader(in), subscribers.ImportOptions{List: list})
		if err != nil {
			t.Fatalf("second import failed: %v", err)
		}
		if again.Added != 0 || again.Updated != 0 {
			t.Fatalf("second import changed things: %+v (first %+v)", again, res)
		}
	}
}

// FuzzImportFields: whatever name and user agent a row carries, the
// import either stores them byte for byte (after trimming, as it trims
// every field) through its JSONB rows, or reports the row with the field
// at fault and stores nothing of it.
func FuzzImportFields(f *testing.F) {
	f.Add("山田 太郎", "Mozilla/5.0")
	f.Add(`say "hi" \ \u0041 \n`, `ua "q" \`)
	f.Add("絵文字 🎌\u2028", "\x00\x7f")
	f.Add("'=cmd", "")
	f.Add(strings.Repeat("長", 200), strings.Repeat("a", 70000))
	var envs []*env
	for _, eng := range testutil.Engines() {
		envs = append(envs, newEnv(f, eng))
	}
	i := 0
	f.Fuzz(func(t *testing.T, name, ua string) {
		i++
		for _, e := range envs {
			fuzzImportFieldsOn(t, e, i, name, ua)
		}
	})
}

func fuzzImportFieldsOn(t *testing.T, e *env, i int, name, ua string) {
	{
		if !utf8.ValidString(name) || !utf8.ValidString(ua) || strings.ContainsRune(name+ua, '\r') {
			return // wrong encodings and CR inside a field are the reader's business (FuzzImport)
		}
		i++
		email := fmt.Sprintf("f%d@example.jp", i)
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write([]string{"email", "name", "consent_at", "consent_user_agent"})
		w.Write([]string{email, name, "2026-01-01", ua})
		w.Flush()
		res, err := e.store.Import(ctx, &b, subscribers.ImportOptions{})
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		s, findErr := e.store.FindByEmail(ctx, email)
		if res.ErrorRows > 0 {
			if len(res.Errors) == 0 || res.Errors[0].Row != 2 || (res.Errors[0].Field != "name" && res.Errors[0].Field != "consent_user_agent") {
				t.Fatalf("row refused without its place: %+v", res.Errors)
			}
			if !errors.Is(findErr, subscribers.ErrNotFound) {
				t.Fatalf("a refused row was stored: %v", findErr)
			}
			return
		}
		if res.Added != 1 || findErr != nil {
			t.Fatalf("import %+v, find: %v", res, findErr)
		}
		wantName := strings.TrimSpace(name)
		if len(wantName) > 1 && wantName[0] == '\'' && strings.ContainsRune("=+-@", rune(wantName[1])) {
			wantName = wantName[1:] // the apostrophe Tayori's own export puts before a formula
		}
		if s.Name != wantName {
			t.Fatalf("name %q stored as %q", wantName, s.Name)
		}
		cs, err := e.store.Consents(ctx, s.ID)
		if err != nil || len(cs) != 1 || cs[0].UserAgent != strings.TrimSpace(ua) {
			t.Fatalf("consents %+v (%v), want one with user agent %q", cs, err, strings.TrimSpace(ua))
		}
	}
}

// The set-based insert carries every field through its JSON rows byte for
// byte (quotes, backslashes, Japanese, emoji, a user agent with both),
// gives each row its own id across batches, records consent and history
// for every row, and suppresses rows imported as bounced or complained.
func TestImportSetBasedFields(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			csv := "email,name,regions,topics,status,consent_at,consent_version,consent_ip,consent_user_agent\n" +
				"q1@example.jp,\"say \"\"こんにちは\"\" \\\\ back\\slash\",jp,\"policy,gpu\",,2026-01-02,\"v\"\"1\"\"\",192.0.2.1,\"Mozilla/5.0 (\"\"x\"\") \\\\\"\n" +
				"q2@example.jp,絵文字 🎌,eu,,,2026-01-03,,,\n" +
				"q3@example.jp,,,,bounced,,,,\n" +
				"q4@example.jp,,,,complained,,,,\n" +
				"q5@example.jp,最後,,,,,,,\n"
			res := importString(t, e.store, csv, subscribers.ImportOptions{BatchSize: 2, Cause: "import \"q\".csv"})
			if res.Added != 5 || res.ErrorRows != 0 {
				t.Fatalf("import: %+v %v", res, problems(res.Errors))
			}
			ids := map[int64]bool{}
			for _, c := range []struct {
				email, name, prefs string
				status             subscribers.Status
				consents           int
			}{
				{"q1@example.jp", `say "こんにちは" \\ back\slash`, "jp|policy,gpu", subscribers.Active, 1},
				{"q2@example.jp", "絵文字 🎌", "eu|activities,policy,reports", subscribers.Active, 1},
				{"q3@example.jp", "", "jp,us,eu,asia,intl|activities,policy,reports", subscribers.Bounced, 0},
				{"q4@example.jp", "", "jp,us,eu,asia,intl|activities,policy,reports", subscribers.Complained, 0},
				{"q5@example.jp", "最後", "jp,us,eu,asia,intl|activities,policy,reports", subscribers.Pending, 0},
			} {
				s, err := e.store.FindByEmail(ctx, c.email)
				if err != nil {
					t.Fatalf("%s: %v", c.email, err)
				}
				if s.Name != c.name || s.Prefs.Key() != c.prefs || s.Status != c.status {
					t.Errorf("%s = name %q prefs %q status %s, want %q %q %s", c.email, s.Name, s.Prefs.Key(), s.Status, c.name, c.prefs, c.status)
				}
				if ids[s.ID] {
					t.Errorf("%s: id %d given twice", c.email, s.ID)
				}
				ids[s.ID] = true
				cs, _ := e.store.Consents(ctx, s.ID)
				if len(cs) != c.consents {
					t.Errorf("%s: %d consent records, want %d", c.email, len(cs), c.consents)
				}
				if c.email == "q1@example.jp" && len(cs) == 1 &&
					(cs[0].FormVersion != `v"1"` || cs[0].IP != "192.0.2.1" || cs[0].UserAgent != `Mozilla/5.0 ("x") \\` || cs[0].Prefs.Key() != "jp|policy,gpu") {
					t.Errorf("q1's consent = %+v", cs[0])
				}
				// q2 shares q1's batch but not its form version or address.
				if c.email == "q2@example.jp" && len(cs) == 1 &&
					(cs[0].FormVersion != "" || cs[0].IP != "" || cs[0].UserAgent != "" || cs[0].Method != subscribers.Imported ||
						cs[0].At.Format("2006-01-02") != "2026-01-03" || cs[0].Prefs.Key() != c.prefs) {
					t.Errorf("q2's consent = %+v", cs[0])
				}
				// A complained reader leaves every list; the others join it.
				if want := c.status != subscribers.Complained; slices.Contains(s.Lists, "monthly") != want {
					t.Errorf("%s: lists %v, want member = %v", c.email, s.Lists, want)
				}
				h, _ := e.store.History(ctx, s.ID)
				if len(h) != 1 || h[0].To != c.status || h[0].Cause != `import "q".csv` {
					t.Errorf("%s: history %+v", c.email, h)
				}
				suppressed, _ := e.store.IsSuppressed(ctx, c.email)
				if want := c.status == subscribers.Bounced || c.status == subscribers.Complained; suppressed != want {
					t.Errorf("%s: suppressed = %v, want %v", c.email, suppressed, want)
				}
			}
			// Ids continue after the import's: a new subscriber does not collide.
			n, err := e.store.Add(ctx, subscribers.NewSubscriber{Email: "after@example.jp"})
			if err != nil || ids[n.ID] {
				t.Errorf("Add after import: id %d, %v", n.ID, err)
			}
		})
	}
}

// Suppressed addresses are skipped whichever way the import looks them
// up: by reading the whole suppression list when it is no longer than the
// batch's hashes, or by looking each hash up when it is longer.
func TestImportSkipsSuppressedBothWays(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			for i := range 5 {
				s := mustActive(t, e.store, subscribers.NewSubscriber{Email: fmt.Sprintf("gone%d@example.jp", i)})
				if err := e.store.Erase(ctx, s.ID, "request"); err != nil {
					t.Fatal(err)
				}
			}
			// One row: two hashes (one per key) against five entries: looked up.
			res := importString(t, e.store, "email,consent_at\nGone0@Example.JP,2026-01-01\n", subscribers.ImportOptions{})
			if res.Added != 0 || res.Skipped != 1 || len(res.Skips) != 1 || res.Skips[0].Row != 2 {
				t.Errorf("lookup path: %+v skips %v", res, problems(res.Skips))
			}
			// Eleven rows: 22 hashes against five entries: the list is read.
			csv := "email,consent_at\n"
			for i := range 10 {
				csv += fmt.Sprintf("new%d@example.jp,2026-01-01\n", i)
			}
			csv += "gone3@example.jp,2026-01-01\n"
			res = importString(t, e.store, csv, subscribers.ImportOptions{})
			if res.Added != 10 || res.Skipped != 1 || len(res.Skips) != 1 || res.Skips[0].Row != 12 {
				t.Errorf("scan path: %+v skips %v", res, problems(res.Skips))
			}
			for _, a := range []string{"gone0@example.jp", "gone3@example.jp"} {
				if _, err := e.store.FindByEmail(ctx, a); !errors.Is(err, subscribers.ErrNotFound) {
					t.Errorf("%s came back: %v", a, err)
				}
			}
		})
	}
}

// Each batch commits; an import stopped midway keeps the committed
// batches, counts only them, and a second run completes it.
func TestImportStoppedMidwayCountsWhatCommitted(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			csv := "email,consent_at\n"
			for i := range 10 {
				csv += fmt.Sprintf("c%d@example.jp,2026-01-01\n", i)
			}
			count := func() int {
				var n int
				if err := e.db.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var seen []int
			res, err := e.store.Import(cctx, strings.NewReader(csv), subscribers.ImportOptions{BatchSize: 2,
				OnBatch: func(rows int) {
					seen = append(seen, count())
					if rows == 4 {
						cancel()
					}
				}})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("import cancelled midway: err = %v, want context.Canceled", err)
			}
			if want := []int{2, 4}; !slices.Equal(seen, want) {
				t.Errorf("subscribers committed after each batch: %v, want %v", seen, want)
			}
			if n := count(); res.Added != 4 || n != 4 {
				t.Errorf("after cancelling: result says %d added, database holds %d; want 4 and 4", res.Added, n)
			}
			res = importString(t, e.store, csv, subscribers.ImportOptions{BatchSize: 2})
			if res.Added != 6 || res.Unchanged != 4 || count() != 10 {
				t.Errorf("second run: %+v, %d in the database", res, count())
			}
		})
	}
}

// The import checkpoints on a connection of its own and, every few
// batches, waits until everything it committed is in the database file,
// so that its next commit starts the WAL afresh. Without those waits the
// WAL would grow by every batch of the file.
func TestImportKeepsWALShort(t *testing.T) {
	// SQLite's write-ahead log: PostgreSQL has none of its own to keep short.
	for _, eng := range testutil.Engines()[:1] {
		t.Run(string(eng.Name), func(t *testing.T) {
			e := newEnv(t, eng)
			const batches, size = 40, 500
			var first, peak int64
			res, err := e.store.Import(context.Background(), newCSV(batches*size), subscribers.ImportOptions{
				BatchSize: size,
				OnBatch: func(int) {
					fi, err := os.Stat(e.path + "-wal")
					if err != nil {
						t.Error(err)
						return
					}
					if first == 0 {
						first = fi.Size()
					}
					peak = max(peak, fi.Size())
				},
			})
			if err != nil || res.Added != batches*size {
				t.Fatalf("import: %+v, %v", res, err)
			}
			t.Logf("WAL after the first batch %d bytes, at most %d", first, peak)
			if first == 0 || peak > 8*first {
				t.Errorf("WAL reached %d bytes, %.1f batches' worth (first batch %d bytes): it is not restarted", peak, float64(peak)/float64(first), first)
			}
			var n int
			if err := e.db.QueryRow(`SELECT count(*) FROM subscribers`).Scan(&n); err != nil || n != batches*size {
				t.Errorf("%d subscribers, %v", n, err)
			}
		})
	}
}

// On PostgreSQL an import's batch does not hold the whole table: an
// address someone adds between the batch's look-up and its merge is not
// overwritten and not lost silently, but handed back to be reported.
// (On SQLite the import's transaction holds the write lock, so no one can.)
func TestImportNewRowTakenMeanwhileIsHandedBack(t *testing.T) {
	e := newEnv(t, testutil.EngineByName(t, "postgres"))
	st := store.Subscribers(e.sdb)
	sess, err := st.BeginImport(ctx, subscribers.ImportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(ctx, false)
	tx, err := sess.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	listID, err := tx.ListID(ctx, subscribers.DefaultList)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else adds taken@ after the batch looked.
	mustAdd(t, e.store, subscribers.NewSubscriber{Email: "taken@example.jp"})
	rows := []*subscribers.NewRow{
		{Line: 2, Email: "free@example.jp", Key: "free@example.jp", Name: "空き", Status: subscribers.Pending, Regions: 1, Topics: 1},
		{Line: 3, Email: "taken@example.jp", Key: "taken@example.jp", Name: "取られた", Status: subscribers.Pending, Regions: 1, Topics: 1},
	}
	lost, err := tx.InsertNew(ctx, subscribers.NewBatch{ListID: listID, ListKey: subscribers.DefaultList, Cause: "import", At: e.clock.Now(), Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost[0].Line != 3 {
		t.Fatalf("lost %+v, want row 3 only", lost)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if s, err := e.store.FindByEmail(ctx, "free@example.jp"); err != nil || s.Name != "空き" || !slices.Equal(s.Lists, []string{subscribers.DefaultList}) {
		t.Errorf("free@: %+v, %v", s, err)
	}
	if s, err := e.store.FindByEmail(ctx, "taken@example.jp"); err != nil || s.Name != "" {
		t.Errorf("taken@ was overwritten: %+v, %v", s, err)
	}
}
