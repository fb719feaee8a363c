package mailer_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const (
	fromEmail  = "newsletter@news.example.go.jp"
	fromName   = "AI政策動向"
	domain     = "news.example.go.jp"
	listID     = "ai-policy-monthly.news.example.go.jp"
	feedbackID = "2026-02:monthly:aipolicy:jpaipol01"
	subject    = "【2026年2月号】AI政策動向マンスリー:生成AIの安全性評価と各国の規制動向"
)

var jst = time.FixedZone("JST", 9*60*60)

// sendClock is the injected send time used by deterministic tests.
var sendClock = time.Date(2026, 2, 3, 9, 0, 0, 0, jst)

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// fixture returns the fixed Japanese test message for rcpt.
func fixture(tb testing.TB, rcpt string) *mailer.Message {
	tb.Helper()
	return &mailer.Message{
		From:              mailer.Address{Name: fromName, Email: fromEmail},
		To:                mailer.Address{Email: rcpt},
		ReplyTo:           mailer.Address{Email: "contact@news.example.go.jp"},
		Subject:           subject,
		ListID:            listID,
		ListName:          fromName,
		UnsubscribeURL:    "https://news.example.go.jp/u/v1.Qk9SZWNpcGllbnQ.c2lnbmF0dXJl",
		UnsubscribeMailto: "mailto:unsubscribe+v1.Qk9SZWNpcGllbnQ@news.example.go.jp",
		ListHelp:          "https://news.example.go.jp/help",
		AnnounceOnly:      true,
		FeedbackID:        feedbackID,
		Bulk:              true,
		Headers:           []mailer.Header{{Name: "X-Tayori-Issue", Value: "2026-02"}},
		Text:              readFile(tb, "issue.txt"),
		HTML:              readFile(tb, "issue.html"),
	}
}

func want(rcpt string) testutil.MessageWant {
	return testutil.MessageWant{
		FromEmail:  fromEmail,
		FromName:   fromName,
		To:         rcpt,
		Subject:    subject,
		Domain:     domain,
		Now:        sendClock,
		ListID:     listID,
		FeedbackID: feedbackID,
		Precedence: true,
	}
}

func deterministic(opts mailer.BuilderOptions) mailer.BuilderOptions {
	opts.Now = func() time.Time { return sendClock }
	opts.MessageID = func(d string) string { return "0123456789abcdefghjkmnpqrs@" + d }
	opts.Boundary = func() string { return "tayori_golden_boundary" }
	return opts
}

func newBuilder(tb testing.TB, opts mailer.BuilderOptions) *mailer.Builder {
	tb.Helper()
	b, err := mailer.NewBuilder(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestBuildGolden(t *testing.T) {
	for _, gomail := range []bool{false, true} {
		t.Run(fmt.Sprintf("GoMailWriter=%v", gomail), func(t *testing.T) {
			b := newBuilder(t, deterministic(mailer.BuilderOptions{GoMailWriter: gomail}))
			built, err := b.Build(fixture(t, "taro@example.jp"))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "issue.golden.eml")
			if *update && !gomail {
				if err := os.WriteFile(golden, built.Raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantRaw, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(built.Raw, wantRaw) {
				t.Errorf("output differs from %s at line %d (run with -update if intended):\n got: %q\nwant: %q",
					golden, firstDiffLine(built.Raw, wantRaw), lineAt(built.Raw, firstDiffLine(built.Raw, wantRaw)),
					lineAt(wantRaw, firstDiffLine(built.Raw, wantRaw)))
			}
			if built.MessageID != "0123456789abcdefghjkmnpqrs@"+domain {
				t.Errorf("MessageID %q", built.MessageID)
			}
			if !built.Date.Equal(sendClock) {
				t.Errorf("Date %v, want %v", built.Date, sendClock)
			}
		})
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(la) && i < len(lb); i++ {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

func lineAt(b []byte, n int) string {
	lines := bytes.Split(b, []byte("\n"))
	if n-1 < len(lines) {
		return string(lines[n-1])
	}
	return "<EOF>"
}

// TestBuildChecklist asserts checklist items 1–13 and 16 on built messages
// with the real clock and random Message-IDs and boundaries.
func TestBuildChecklist(t *testing.T) {
	now := time.Date(2026, 2, 3, 9, 0, 0, 0, jst)
	b := newBuilder(t, mailer.BuilderOptions{Now: func() time.Time { return now }})
	for _, rcpt := range []string{"taro@example.jp", "hanako.yamada+news@mail.example.co.jp"} {
		m := fixture(t, rcpt)
		built, err := b.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		w := want(rcpt)
		w.Text, w.HTML = m.Text, m.HTML
		w.UnsubscribeURL = m.UnsubscribeURL
		got := testutil.CheckMessage(t, built.Raw, w)
		if got.MessageID != "<"+built.MessageID+">" {
			t.Errorf("Built.MessageID %q, header %q", built.MessageID, got.MessageID)
		}
		if len(got.Unsubscribe) != 2 || got.Unsubscribe[1] != m.UnsubscribeMailto {
			t.Errorf("List-Unsubscribe URIs %q", got.Unsubscribe)
		}
		if got.Header.Get("List-Post") != "NO" || got.Header.Get("List-Help") != "<https://news.example.go.jp/help>" {
			t.Errorf("List-Post %q List-Help %q", got.Header.Get("List-Post"), got.Header.Get("List-Help"))
		}
		if got.Header.Get("X-Tayori-Issue") != "2026-02" {
			t.Errorf("extra header X-Tayori-Issue = %q", got.Header.Get("X-Tayori-Issue"))
		}
		if got.Header.Get("User-Agent") != "" || got.Header.Get("X-Mailer") != "" {
			t.Errorf("go-mail User-Agent leaked: %q %q", got.Header.Get("User-Agent"), got.Header.Get("X-Mailer"))
		}
		// Japanese text survives byte for byte (modulo canonical CRLF).
		if strings.ReplaceAll(got.Text, "\r\n", "\n") != m.Text {
			t.Errorf("text body changed")
		}
	}
}

// TestBuildFirstHeaderLine: From and Subject carry the start of their value
// on the field-name line (go-mail alone folds right after the colon, which
// rspamd scores as HEADER_FROM_EMPTY_DELIMITER).
func TestBuildFirstHeaderLine(t *testing.T) {
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	m := fixture(t, "taro@example.jp")
	m.From.Name = "AI政策動向マンスリー編集部(国立研究開発法人 情報通信研究機構 AIセーフティ・インスティテュート)"
	built, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"From", "Subject"} {
		found := false
		for _, line := range strings.Split(string(built.Raw), "\r\n") {
			if strings.HasPrefix(line, name+":") {
				found = true
				if !strings.HasPrefix(line, name+": =?UTF-8?B?") {
					t.Errorf("%s first line %q does not carry an encoded-word", name, line)
				}
			}
		}
		if !found {
			t.Errorf("no %s header", name)
		}
	}
	w := want("taro@example.jp")
	w.FromName = m.From.Name
	testutil.CheckMessage(t, built.Raw, w)
}

func TestBuildMessageIDUnique(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{})
	m := fixture(t, "taro@example.jp")
	seen := make(map[string]bool, 1000)
	var feedback string
	for i := range 1000 {
		m.To.Email = fmt.Sprintf("reader%d@example.jp", i)
		built, err := b.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		if seen[built.MessageID] {
			t.Fatalf("duplicate Message-ID %s after %d copies", built.MessageID, i)
		}
		seen[built.MessageID] = true
		if !strings.HasSuffix(built.MessageID, "@"+domain) {
			t.Fatalf("Message-ID %s not on %s", built.MessageID, domain)
		}
		// Feedback-ID is the same for every recipient (item 11).
		fb := headerValue(t, built.Raw, "Feedback-ID")
		if feedback == "" {
			feedback = fb
		} else if fb != feedback {
			t.Fatalf("Feedback-ID differs between recipients: %q vs %q", fb, feedback)
		}
	}
}

func headerValue(tb testing.TB, raw []byte, name string) string {
	tb.Helper()
	for _, line := range strings.Split(string(raw), "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestBuildDateUsesSendClock(t *testing.T) {
	clock := sendClock
	b := newBuilder(t, mailer.BuilderOptions{Now: func() time.Time { return clock }, Location: jst})
	m := fixture(t, "taro@example.jp")
	first, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(26 * time.Hour) // sent a day later: Date follows the clock
	second, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := headerValue(t, first.Raw, "Date"); got != "Tue, 03 Feb 2026 09:00:00 +0900" {
		t.Errorf("first Date %q", got)
	}
	if got := headerValue(t, second.Raw, "Date"); got != "Wed, 04 Feb 2026 11:00:00 +0900" {
		t.Errorf("second Date %q", got)
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{})
	cases := []struct {
		name   string
		mutate func(m *mailer.Message)
		field  string
	}{
		{"SubjectLF", func(m *mailer.Message) { m.Subject = "hello\nBcc: victim@example.com" }, "Subject"},
		{"SubjectCR", func(m *mailer.Message) { m.Subject = "hello\rBcc: x@example.com" }, "Subject"},
		{"SubjectNUL", func(m *mailer.Message) { m.Subject = "a\x00b" }, "Subject"},
		{"SubjectMissing", func(m *mailer.Message) { m.Subject = "" }, "Subject"},
		{"FromNameCRLF", func(m *mailer.Message) { m.From.Name = "x\r\nBcc: y@example.com" }, "From name"},
		{"ToCRLF", func(m *mailer.Message) { m.To.Email = "a@example.jp\r\nRCPT TO:<b@example.jp>" }, "To"},
		{"ToNotAddress", func(m *mailer.Message) { m.To.Email = "not-an-address" }, "To"},
		{"ToAngle", func(m *mailer.Message) { m.To.Email = "<a@example.jp>" }, "To"},
		{"ToTwo", func(m *mailer.Message) { m.To.Email = "a@example.jp, b@example.jp" }, "To"},
		{"ToNonASCII", func(m *mailer.Message) { m.To.Email = "太郎@example.jp" }, "To"},
		{"FromMissing", func(m *mailer.Message) { m.From.Email = "" }, "From"},
		{"UnsubHTTP", func(m *mailer.Message) { m.UnsubscribeURL = "http://news.example.go.jp/u/x" }, "List-Unsubscribe"},
		{"UnsubInjection", func(m *mailer.Message) { m.UnsubscribeURL = "https://x.jp/u>, <https://evil.example/" }, "List-Unsubscribe"},
		{"UnsubLF", func(m *mailer.Message) { m.UnsubscribeURL = "https://x.jp/u\nX-Evil: 1" }, "List-Unsubscribe"},
		{"MailtoNotMailto", func(m *mailer.Message) { m.UnsubscribeMailto = "https://x.jp" }, "List-Unsubscribe mailto"},
		{"ListIDBrackets", func(m *mailer.Message) { m.ListID = "<a.example.jp>" }, "List-Id"},
		{"FeedbackIDShape", func(m *mailer.Message) { m.FeedbackID = "only:two" }, "Feedback-ID"},
		{"ExtraHeaderName", func(m *mailer.Message) { m.Headers = []mailer.Header{{Name: "X Bad", Value: "v"}} }, "Header[0]"},
		{"ExtraHeaderManaged", func(m *mailer.Message) { m.Headers = []mailer.Header{{Name: "bcc", Value: "x@example.jp"}} }, "bcc"},
		{"ExtraHeaderValueLF", func(m *mailer.Message) { m.Headers = []mailer.Header{{Name: "X-A", Value: "1\n2"}} }, "X-A"},
		{"ExtraHeaderTwice", func(m *mailer.Message) {
			m.Headers = []mailer.Header{{Name: "X-A", Value: "1"}, {Name: "x-a", Value: "2"}}
		}, "x-a"},
		{"SubjectTooLong", func(m *mailer.Message) { m.Subject = strings.Repeat("あ", 1000) }, "Subject"},
		{"TextMissing", func(m *mailer.Message) { m.Text = "" }, "Text"},
		{"TextBadUTF8", func(m *mailer.Message) { m.Text = "\xff\xfe" }, "Text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := fixture(t, "taro@example.jp")
			tc.mutate(m)
			_, err := b.Build(m)
			if !errors.Is(err, mailer.ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			var ve *mailer.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err %T is not *ValidationError", err)
			}
			found := false
			for _, p := range ve.Problems {
				if p.Field == tc.field {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %+v do not name field %q", ve.Problems, tc.field)
			}
		})
	}
}

func TestBuildReportsEveryProblem(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{})
	m := fixture(t, "taro@example.jp")
	m.Subject = "a\nb"
	m.To.Email = "bad"
	m.UnsubscribeURL = "ftp://x"
	_, err := b.Build(m)
	var ve *mailer.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestBuildInsecureUnsubscribeWhenAllowed(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{AllowInsecureUnsubscribe: true})
	m := fixture(t, "taro@example.jp")
	m.UnsubscribeURL = "http://127.0.0.1:8080/u/TOKEN"
	built, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	w := want("taro@example.jp")
	w.Now = time.Now()
	w.AllowHTTPUnsubscribe = true
	w.UnsubscribeURL = m.UnsubscribeURL
	got := testutil.CheckMessage(t, built.Raw, w)
	if got.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Error("List-Unsubscribe-Post missing")
	}
}

func TestBuildTextOnly(t *testing.T) {
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	m := fixture(t, "taro@example.jp")
	m.HTML = ""
	built, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	ct := headerValue(t, built.Raw, "Content-Type")
	if mt, params, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" || params["charset"] != "UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestBuildCanonicalLineEnds(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{})
	for _, text := range []string{"一行目\n二行目\n", "一行目\r\n二行目\r\n", "一行目\r二行目\r", "混在\n\r\n\r末尾"} {
		m := fixture(t, "taro@example.jp")
		m.Text = text
		built, err := b.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		w := want("taro@example.jp")
		w.Now = time.Now()
		got := testutil.CheckMessage(t, built.Raw, w).Text
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(text)
		if got != strings.ReplaceAll(norm, "\n", "\r\n") {
			t.Errorf("text %q decoded as %q", text, got)
		}
	}
}

// TestWritersAgree: the direct writer and go-mail give identical bytes.
func TestWritersAgree(t *testing.T) {
	direct := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	viaGoMail := newBuilder(t, deterministic(mailer.BuilderOptions{GoMailWriter: true}))
	msgs := []*mailer.Message{fixture(t, "taro@example.jp")}
	m := fixture(t, "a@example.jp")
	m.HTML, m.ReplyTo, m.ListID, m.ListName, m.FeedbackID, m.Headers = "", mailer.Address{}, "", "", "", nil
	msgs = append(msgs, m)
	m = fixture(t, "b@example.jp")
	m.Subject = "ASCII subject with quite a lot of words that certainly needs folding somewhere along the line ok"
	m.From.Name = `Newsletter "Quoted", Inc.`
	m.To.Name = "山田 太郎"
	m.Text = strings.Repeat("長い本文の行です。", 500)
	msgs = append(msgs, m)
	for i, m := range msgs {
		a, err := direct.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		g, err := viaGoMail.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Raw, g.Raw) {
			n := firstDiffLine(a.Raw, g.Raw)
			t.Errorf("message %d: writers differ at line %d:\ndirect: %q\ngo-mail: %q", i, n, lineAt(a.Raw, n), lineAt(g.Raw, n))
		}
	}
}

func FuzzWritersAgree(f *testing.F) {
	f.Add("件名", "AI政策動向", "本文\n", "<p>本文</p>", "X-A", "値")
	f.Add("plain ascii subject", "", "text", "", "X-Long", strings.Repeat("word ", 40))
	f.Add(strings.Repeat("あ", 200), "名前 with space", "a\r\nb\rc\n", "<b>x</b>", "X-Empty", "")
	f.Add("a  double  space   subject", "\"quoted\"", "x", "y", "X-Sp", "  lead and trail  ")
	direct := newBuilder(f, deterministic(mailer.BuilderOptions{}))
	viaGoMail := newBuilder(f, deterministic(mailer.BuilderOptions{GoMailWriter: true}))
	f.Fuzz(func(t *testing.T, subj, name, text, html, hname, hval string) {
		m := &mailer.Message{
			From:    mailer.Address{Name: name, Email: fromEmail},
			To:      mailer.Address{Email: "taro@example.jp"},
			Subject: subj,
			Text:    text,
			HTML:    html,
			Headers: []mailer.Header{{Name: hname, Value: hval}},
		}
		a, errA := direct.Build(m)
		g, errG := viaGoMail.Build(m)
		if (errA == nil) != (errG == nil) {
			t.Fatalf("errors differ: %v vs %v", errA, errG)
		}
		if errA != nil {
			if !errors.Is(errA, mailer.ErrInvalidMessage) {
				t.Fatalf("error is not ErrInvalidMessage: %v", errA)
			}
			return
		}
		if !bytes.Equal(a.Raw, g.Raw) {
			n := firstDiffLine(a.Raw, g.Raw)
			t.Fatalf("writers differ at line %d:\ndirect: %q\ngo-mail: %q", n, lineAt(a.Raw, n), lineAt(g.Raw, n))
		}
		for i, line := range bytes.Split(a.Raw, []byte("\r\n")) {
			if len(line) > 998 || bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("line %d: %d octets or bare CR/LF", i+1, len(line))
			}
		}
	})
}

// FuzzValidateHeaderValue: never panics; a value with CR or LF is always
// refused and the error names the field; accepted values build into a
// message whose header block parses.
func FuzzValidateHeaderValue(f *testing.F) {
	f.Add("plain")
	f.Add("日本語の件名")
	f.Add("inject\r\nBcc: x@example.com")
	f.Add("lf\nonly")
	f.Add("nul\x00")
	f.Add("\xff")
	f.Add(strings.Repeat("x", mailer.MaxHeaderValueBytes+1))
	b := newBuilder(f, deterministic(mailer.BuilderOptions{}))
	f.Fuzz(func(t *testing.T, v string) {
		err := mailer.ValidateHeaderValue("Subject", v)
		if strings.ContainsAny(v, "\r\n") && err == nil {
			t.Fatalf("accepted %q", v)
		}
		if err != nil {
			if !errors.Is(err, mailer.ErrInvalidMessage) || !strings.Contains(err.Error(), "Subject") {
				t.Fatalf("error %v does not wrap ErrInvalidMessage or name the field", err)
			}
			return
		}
		if v == "" {
			return
		}
		m := fixture(t, "taro@example.jp")
		m.Subject = v
		built, err := b.Build(m)
		if err != nil {
			t.Fatalf("valid subject %q refused: %v", v, err)
		}
		got := testutil.CheckMessage(t, built.Raw, testutil.MessageWant{FromEmail: fromEmail, Now: sendClock})
		dec := new(mime.WordDecoder)
		s, err := dec.DecodeHeader(got.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject does not decode: %v", err)
		}
		if strings.TrimSpace(s) != strings.TrimSpace(v) && !strings.Contains(v, "=?") && !strings.Contains(v, "  ") && !strings.Contains(v, "\t") {
			t.Fatalf("subject %q decodes to %q", v, s)
		}
	})
}

// AppendBuild writes the same bytes as Build, into the caller's buffer when
// it is large enough: a worker reuses one buffer for message after message.
func TestAppendBuildReusesBuffer(t *testing.T) {
	b := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	want, err := b.Build(fixture(t, "taro@example.jp"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(want.Raw))
	for _, rcpt := range []string{"hanako@example.jp", "taro@example.jp"} {
		got, err := b.AppendBuild(bytes.Repeat([]byte{'x'}, 10)[:0:0], fixture(t, rcpt))
		if err != nil {
			t.Fatal(err)
		}
		reused, err := b.AppendBuild(buf, fixture(t, rcpt))
		if err != nil {
			t.Fatal(err)
		}
		if &reused.Raw[0] != &buf[:1][0] {
			t.Error("AppendBuild did not write into the buffer it was given")
		}
		if !bytes.Equal(reused.Raw, got.Raw) {
			t.Errorf("%s: AppendBuild into a used buffer differs from a fresh build at line %d", rcpt, firstDiffLine(reused.Raw, got.Raw))
		}
		if rcpt == "taro@example.jp" && !bytes.Equal(reused.Raw, want.Raw) {
			t.Errorf("AppendBuild differs from Build at line %d", firstDiffLine(reused.Raw, want.Raw))
		}
	}
}

// The Builder keeps the last encoded From, Subject and List-Id phrase;
// messages that differ in them, built one after another on one Builder,
// come out as from fresh Builders.
func TestBuilderHeaderCache(t *testing.T) {
	shared := newBuilder(t, deterministic(mailer.BuilderOptions{}))
	variants := []func(m *mailer.Message){
		func(m *mailer.Message) {},
		func(m *mailer.Message) { m.Subject = "別の件名：AI政策動向 2026年1月号" },
		func(m *mailer.Message) { m.From.Name = "別の発行者" },
		func(m *mailer.Message) { m.ListName = "Another list" },
		func(m *mailer.Message) { m.From.Email = "other@news.example.go.jp" },
		func(m *mailer.Message) {},
	}
	for i, change := range variants {
		m := fixture(t, "taro@example.jp")
		change(m)
		got, err := shared.Build(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := newBuilder(t, deterministic(mailer.BuilderOptions{})).Build(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Raw, want.Raw) {
			n := firstDiffLine(got.Raw, want.Raw)
			t.Errorf("message %d: shared builder differs at line %d: %q vs %q", i, n, lineAt(got.Raw, n), lineAt(want.Raw, n))
		}
	}
}

// A sender may name each copy itself (Message.MessageID, used for bounce
// and complaint correlation); the Builder writes it as given and refuses
// one that would break the header.
func TestBuildMessageIDPerCopy(t *testing.T) {
	b := newBuilder(t, mailer.BuilderOptions{})
	m := fixture(t, "taro@example.jp")
	m.MessageID = "k0123456789abcdefghjkmnpqrs.abcdefghjkmnp@" + domain
	built, err := b.Build(m)
	if err != nil {
		t.Fatal(err)
	}
	if built.MessageID != m.MessageID {
		t.Errorf("Built.MessageID %q, want %q", built.MessageID, m.MessageID)
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(built.Raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := parsed.Header.Get("Message-ID"); got != "<"+m.MessageID+">" {
		t.Errorf("Message-ID header %q", got)
	}
	for _, bad := range []string{"x@" + domain + "\r\nBcc: a@b.example", "<x@" + domain + ">", "no-at-sign", "a@b@c", "sp ace@" + domain} {
		m.MessageID = bad
		if _, err := b.Build(m); !errors.Is(err, mailer.ErrInvalidMessage) {
			t.Errorf("MessageID %q: err %v, want ErrInvalidMessage", bad, err)
		}
	}
}
