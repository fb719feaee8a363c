package compose

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Severity says whether a problem stops an issue from being sent.
type Severity string

// The severities of Problem.
const (
	// SeverityError is a problem that must be fixed before sending.
	SeverityError Severity = "error"
	// SeverityWarning is worth a look but does not stop a send.
	SeverityWarning Severity = "warning"
)

// Problem is one finding of Check, at a place in the issue's source.
type Problem struct {
	File     string   `json:"file"`
	Line     int      `json:"line"` // 0 when the problem concerns the whole issue
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Japanese is the message in Japanese, for the editor's console; the
	// CLI prints Message.
	Japanese string `json:"message_ja"`
}

// String formats the problem as "file:line: severity: message".
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Severity, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Severity, p.Message)
}

// HasErrors reports whether any problem is an error.
func HasErrors(ps []Problem) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return p.Severity == SeverityError })
}

// Check lints an issue and returns every problem found, in source order:
// missing slug, title or region; empty sections; items without a headline
// or dated outside their section's period; malformed URLs (not http(s),
// no host, spaces or control characters) and URLs carrying "®", the trace
// of an "&reg=" parameter mangled as an HTML entity; duplicate items and
// URLs. Problems are named after is.Source.
func Check(is *Issue) []Problem {
	c := checker{file: is.Source}
	if is.Slug == "" {
		c.add(0, SeverityError, "issue has no slug (front matter slug: 2025-11)", "号の識別名（slug、例: 2025-11）がありません")
	}
	if is.Title == "" {
		c.add(0, SeverityError, "issue has no title (front matter title:)", "号のタイトルがありません")
	}
	if is.Newsletter == "" {
		c.add(0, SeverityWarning, "issue has no newsletter name (front matter newsletter:)", "ニュースレターの名前がありません")
	}
	if len(is.Sections) == 0 {
		c.add(0, SeverityError, "issue has no sections", "セクションがひとつもありません")
	}
	year := issueYear(is)
	items := map[string]int{} // headline → line of first item
	urls := map[string]int{}  // URL → line of first use
	for si := range is.Sections {
		s := &is.Sections[si]
		name := s.Heading
		if s.Region == "" {
			c.add(s.Line, SeverityError, fmt.Sprintf("section %q has no region", name), fmt.Sprintf("セクション「%s」に地域がありません", name))
		} else if err := validRegion(s.Region); err != nil {
			c.add(s.Line, SeverityError, fmt.Sprintf("section %q: %v", name, err), fmt.Sprintf("セクション「%s」の地域「%s」は使えません（jp・us・eu・asia・intl のいずれか）", name, s.Region))
		}
		if !s.Kind.IsStandard() {
			c.add(s.Line, SeverityError, fmt.Sprintf("section %q has kind %q, want activities, policy or reports", name, s.Kind), fmt.Sprintf("セクション「%s」の種類「%s」は使えません（activities・policy・reports のいずれか）", name, s.Kind))
		}
		if len(s.Items) == 0 && s.Nothing == "" {
			c.add(s.Line, SeverityWarning, fmt.Sprintf("section %q has no items; readers will not see it", name), fmt.Sprintf("セクション「%s」に記事がありません。読者には表示されません", name))
		}
		var from, to time.Time
		hasPeriod := false
		if s.Period != "" && year > 0 {
			var err error
			from, to, err = parsePeriod(s.Period, year)
			if err != nil {
				c.add(s.Line, SeverityWarning, fmt.Sprintf("section period: %v", err), fmt.Sprintf("セクションの期間「%s」を読み取れません（例: 2025年11月1日~11月30日）", s.Period))
			} else {
				hasPeriod = true
				// A December period in a January issue is last year's.
				if end, ok := slugMonthEnd(is.Slug); ok && from.After(end) {
					from, to = from.AddDate(-1, 0, 0), to.AddDate(-1, 0, 0)
				}
			}
		}
		for ii := range s.Items {
			it := &s.Items[ii]
			c.item(it, hasPeriod, from, to, s.Period)
			key := strings.Join(strings.Fields(it.Headline), " ")
			if first, dup := items[key]; dup && key != "" {
				c.add(it.Line, SeverityError, fmt.Sprintf("duplicate item: same headline as the item at line %d", first), fmt.Sprintf("同じ見出しの記事がすでにあります（%d 行目）", first))
			} else {
				items[key] = it.Line
			}
			for li, u := range it.Links {
				ln := it.Line
				if li < len(it.LinkLines) {
					ln = it.LinkLines[li]
				}
				c.link(ln, u)
				if first, dup := urls[u]; dup {
					c.add(ln, SeverityWarning, fmt.Sprintf("duplicate URL: also at line %d: %s", first, u), fmt.Sprintf("同じ URL が %d 行目にもあります: %s", first, u))
				} else {
					urls[u] = ln
				}
			}
		}
	}
	return c.list
}

type checker struct {
	file string
	list []Problem
}

// add records a problem, worded in English (the CLI) and Japanese (the
// console).
func (c *checker) add(line int, sev Severity, msg, ja string) {
	c.list = append(c.list, Problem{File: c.file, Line: line, Severity: sev, Message: msg, Japanese: ja})
}

func (c *checker) item(it *Item, hasPeriod bool, from, to time.Time, period string) {
	if strings.TrimSpace(it.Headline) == "" {
		c.add(it.Line, SeverityError, "item has no headline", "記事に見出しがありません")
	}
	if it.Region == "" {
		c.add(it.Line, SeverityError, "item has no region", "記事に地域がありません")
	} else if err := validRegion(it.Region); err != nil {
		c.add(it.Line, SeverityError, "item: "+err.Error(), "記事の地域「"+string(it.Region)+"」は使えません（jp・us・eu・asia・intl のいずれか）")
	}
	if len(it.Topics) == 0 {
		c.add(it.Line, SeverityError, "item has no topics", "記事にトピックがありません")
	}
	first, last, ok := it.Dates.Span()
	switch {
	case !ok:
		c.add(it.Line, SeverityWarning, "item has no date", "記事に日付がありません")
	case hasPeriod && (first.Before(from) || last.After(to)):
		c.add(it.Line, SeverityWarning, fmt.Sprintf("item dated %s is outside the section's period %s", it.Dates.Text, period),
			fmt.Sprintf("記事の日付 %s がセクションの期間 %s の外にあります", it.Dates.Text, period))
	}
}

// link checks one URL.
func (c *checker) link(ln int, u string) {
	for _, e := range mangledEntities {
		if strings.Contains(u, e.char) && (e.always || strings.Contains(u, e.char+"=")) {
			fixed := strings.ReplaceAll(u, e.char, "&"+e.name)
			c.add(ln, SeverityError, fmt.Sprintf("URL contains %q: its \"&%s=\" parameter was read as the HTML entity &%s; (%s); write %s", e.char, e.name, e.name, e.char, fixed),
				fmt.Sprintf("URL に「%s」があります。パラメータ「&%s=」が HTML の文字参照として読まれたものです。%s と書いてください", e.char, e.name, fixed))
			return
		}
	}
	if i := strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		c.add(ln, SeverityError, fmt.Sprintf("URL contains white space or a control character at byte %d: %s", i+1, strconv.Quote(u)),
			fmt.Sprintf("URL の %d バイト目に空白か制御文字があります: %s", i+1, strconv.Quote(u)))
		return
	}
	pu, err := url.Parse(u)
	switch {
	case err != nil:
		c.add(ln, SeverityError, fmt.Sprintf("malformed URL: %v", err), fmt.Sprintf("URL の形が正しくありません: %s", u))
	case pu.Scheme != "http" && pu.Scheme != "https":
		c.add(ln, SeverityError, fmt.Sprintf("URL %q is not http or https", u), fmt.Sprintf("URL は http か https で始めてください: %s", u))
	case pu.Host == "" || strings.HasPrefix(pu.Host, ".") || !strings.Contains(pu.Hostname(), "."):
		c.add(ln, SeverityError, fmt.Sprintf("URL %q has no valid host", u), fmt.Sprintf("URL のホスト名が正しくありません: %s", u))
	case strings.IndexFunc(u, func(r rune) bool { return r > unicode.MaxASCII }) >= 0:
		c.add(ln, SeverityWarning, fmt.Sprintf("URL %q has non-ASCII characters; some mail clients break it: percent-encode them", u),
			fmt.Sprintf("URL に ASCII 以外の文字があります。一部のメールソフトでリンクが切れるため、パーセントエンコードしてください: %s", u))
	}
}

// issueYear is the year periods are read in: the slug's, else the first
// dated item's; 0 if neither is known.
func issueYear(is *Issue) int {
	if y, _, ok := strings.Cut(is.Slug, "-"); ok {
		if n, err := strconv.Atoi(y); err == nil && n >= 1900 && n <= 2999 {
			return n
		}
	}
	for _, s := range is.Sections {
		for _, it := range s.Items {
			if first, _, ok := it.Dates.Span(); ok {
				return first.Year()
			}
		}
	}
	return 0
}

// slugMonthEnd returns the last day of a "YYYY-MM" slug's month.
func slugMonthEnd(slug string) (time.Time, bool) {
	t, err := time.Parse("2006-01", slug)
	if err != nil {
		return time.Time{}, false
	}
	return t.AddDate(0, 1, -1), true
}

// mangledEntities are the HTML entities that browsers and editors decode
// even without their ";", so that a query parameter such as "&reg=3" turns
// into "®=3" when a URL is copied out of HTML. "®" is always flagged (the
// monthly's own URLs carry reg=); the others only before "=".
var mangledEntities = []struct {
	char, name string
	always     bool
}{
	{"®", "reg", true},
	{"©", "copy", false},
	{"¶", "para", false},
	{"§", "sect", false},
	{"¬", "not", false},
	{"×", "times", false},
	{"¥", "yen", false},
	{"£", "pound", false},
	{"¢", "cent", false},
	{"µ", "micro", false},
	{"°", "deg", false},
}
