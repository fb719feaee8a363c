package compose

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tayori-news/tayori/audience"
)

// ImportOptions override what ImportText derives from the plain text.
// A zero field means "derive it".
type ImportOptions struct {
	// Newsletter is the newsletter's name. Default: the first short line
	// before the first section that is not a sentence.
	Newsletter string
	// Slug identifies the issue. Default: the year and month most items
	// are dated in, e.g. "2025-11".
	Slug string
	// Title is the subject line. Default: "<Newsletter> <year>年<month>月号".
	Title string
	// Preheader is the inbox preview text. Default: empty.
	Preheader string
}

// itemStartRE matches a line that starts an item in either plain-text
// layout: "(2025/11/12)headline" or "  1. (2025/11/12)headline". Group 1 is
// the dates, group 2 the headline. Every line it matches becomes an item
// or an error, never body text.
var itemStartRE = regexp.MustCompile(`^(?:[0-9０-９]+[.．]\s*)?[(（]([0-9０-９]{4}\s*[/／年][^)）]*)[)）](.*)$`)

// IsItemStart reports whether a plain-text line (without its indentation)
// starts an item.
func IsItemStart(line string) bool {
	return itemStartRE.MatchString(strings.TrimLeft(line, " \t\u3000"))
}

// noItems marks a section that has nothing this month.
var noItems = []string{"該当なし", "なし", "特になし"}

// ImportText reads the plain-text monthly layout, in either of its two
// forms: items after a "-" line, each an "(date)headline" line, body lines
// and URL lines, the last URL of an item ending in " -" (July 2025); or
// numbered items "  1. (date)headline" with indented body and URLs
// (November 2025). Every item, body line and URL is kept. Unknown
// section headings, malformed dates and stray URLs are errors; all are
// returned at once as Errors.
func ImportText(name string, data []byte, opt ImportOptions) (*Issue, error) {
	lines, err := sourceLines(name, data)
	if err != nil {
		return nil, err
	}
	c := errs{file: name}
	is := &Issue{Source: name}
	type pre struct {
		line int
		text string
	}
	var preamble []pre
	var (
		sec       *Section // current section
		it        *Item    // current item, nil between items
		numbered  bool     // the current item is "  1. (date)…": its body is indented
		group     string   // current parent heading
		groupNote string
		lost      bool // after an unknown heading: items have no section
	)
	endItem := func() { it = nil }
	for i, raw := range lines {
		ln := i + 1
		t := strings.TrimLeft(raw, " \t\u3000")
		indented := t != raw
		switch {
		case t == "":
			continue
		case t == "-" || t == "－" || t == "ー":
			endItem()
			continue
		}
		if m := itemStartRE.FindStringSubmatch(t); m != nil {
			endItem()
			d, derr := ParseDates(m[1])
			dash := strings.HasPrefix(t, "(") || strings.HasPrefix(t, "（")
			headline, ends := strings.TrimSpace(m[2]), false
			if dash {
				headline, ends = cutEndMark(headline)
			}
			switch {
			case derr != nil:
				c.add(ln, ErrSyntax, "item: %v", derr)
			case headline == "":
				c.add(ln, ErrSyntax, "item has dates but no headline")
			case sec == nil && !lost:
				c.add(ln, ErrSyntax, "item before the first section heading")
			case sec == nil:
				// The unknown heading before it was reported.
			default:
				sec.Items = append(sec.Items, Item{Dates: d, Headline: headline, Line: ln})
				it = &sec.Items[len(sec.Items)-1]
				numbered = !dash
				if ends {
					endItem()
				}
			}
			continue
		}
		if isURLLine(t) {
			u, last := strings.CutSuffix(t, " -")
			u = strings.TrimSpace(u)
			if it == nil {
				if !lost {
					c.add(ln, ErrSyntax, "URL %q outside an item (a \" -\" ended the item before it?)", u)
				}
				continue
			}
			it.Links = append(it.Links, u)
			it.LinkLines = append(it.LinkLines, ln)
			if last {
				endItem()
			}
			continue
		}
		title, period, note := splitHeading(t)
		rule, known := lookupHeading(title)
		// Body: indented under a numbered item, or after a dated line
		// until the first URL. Anything else ends the item.
		if !known && it != nil && (indented || !numbered && len(it.Links) == 0) {
			body, ends := t, false
			if !numbered {
				body, ends = cutEndMark(t)
			}
			it.Body = append(it.Body, body)
			if ends {
				endItem()
			}
			continue
		}
		endItem()
		if known {
			lost = false
			if rule.group {
				group, groupNote = splitNote(t)
				sec = nil
				continue
			}
			if !rule.sub {
				group, groupNote = "", ""
			}
			if note == "" {
				note = groupNote
			}
			is.Sections = append(is.Sections, Section{
				Group: group, Heading: t, Title: title, Period: period, Note: note,
				Region: rule.region, Kind: rule.kind, Items: []Item{}, Line: ln,
			})
			sec = &is.Sections[len(is.Sections)-1]
			continue
		}
		if slices.Contains(noItems, t) && sec != nil {
			if len(sec.Items) == 0 {
				sec.Nothing = t
			}
			continue
		}
		if len(is.Sections) == 0 && group == "" {
			preamble = append(preamble, pre{ln, t})
			continue
		}
		c.add(ln, ErrSyntax, "unknown section heading %q (known: %s)", t, knownHeadings())
		sec, lost = nil, true
	}
	if len(is.Sections) == 0 && len(c.list) == 0 {
		c.add(0, ErrSyntax, "no section heading found (known: %s)", knownHeadings())
	}
	if err := c.err(); err != nil {
		return nil, err
	}

	for _, p := range preamble {
		if is.Newsletter == "" && looksLikeName(p.text) {
			is.Newsletter = p.text
			continue
		}
		is.Intro = append(is.Intro, p.text)
	}
	for si := range is.Sections {
		s := &is.Sections[si]
		for ii := range s.Items {
			s.Items[ii].Region = is.RegionOf(s, s.Items[ii].Headline)
			s.Items[ii].Topics = []audience.Topic{s.Kind}
		}
	}
	is.Period = commonPeriod(is.Sections)
	if opt.Newsletter != "" {
		is.Newsletter = opt.Newsletter
	}
	is.Slug = opt.Slug
	if is.Slug == "" {
		is.Slug = deriveSlug(is.Sections)
	}
	is.Title = opt.Title
	if is.Title == "" {
		is.Title = deriveTitle(is.Newsletter, is.Slug)
	}
	is.Preheader = opt.Preheader
	return is, nil
}

// isURLLine reports whether a line is a link.
func isURLLine(t string) bool {
	l := strings.ToLower(t)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// looksLikeName reports whether a preamble line reads as a name rather
// than a sentence: short and without sentence punctuation.
func looksLikeName(s string) bool {
	return utf8.RuneCountInString(s) <= 40 && !strings.ContainsAny(s, "。．.!?！？、")
}

// commonPeriod returns the period shared by every section that has one,
// or "" if they differ. Range separators do not count (CanonicalPeriod).
func commonPeriod(ss []Section) string {
	p := ""
	for _, s := range ss {
		sp := CanonicalPeriod(s.Period)
		switch {
		case sp == "":
		case p == "":
			p = sp
		case p != sp:
			return ""
		}
	}
	return p
}

// deriveSlug returns "YYYY-MM" of the month most items start in; ties go
// to the later month. Empty if no item has a date.
func deriveSlug(ss []Section) string {
	count := map[string]int{}
	for _, s := range ss {
		for _, it := range s.Items {
			if first, _, ok := it.Dates.Span(); ok {
				count[first.Format("2006-01")]++
			}
		}
	}
	best := ""
	for k, n := range count {
		if n > count[best] || n == count[best] && k > best {
			best = k
		}
	}
	return best
}

// deriveTitle returns "<newsletter> <year>年<month>月号" for a "YYYY-MM" slug.
func deriveTitle(newsletter, slug string) string {
	y, m, ok := strings.Cut(slug, "-")
	mn, err := strconv.Atoi(m)
	if !ok || err != nil {
		return strings.TrimSpace(newsletter + " " + slug)
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s年%d月号", newsletter, y, mn))
}

// cutEndMark removes the " -" that ends an item of the dash-separated
// layout from the end of its last line when that line is not a URL (an
// item without links).
func cutEndMark(s string) (string, bool) {
	if rest, ok := strings.CutSuffix(s, " -"); ok && strings.TrimSpace(rest) != "" {
		return strings.TrimSpace(rest), true
	}
	return s, false
}
