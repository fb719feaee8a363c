package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// The composer's form: an issue as structured fields, named
//
//	newsletter title preheader period intro closing rules
//	s0.heading s0.region s0.kind s0.group
//	s0.i0.dates s0.i0.headline s0.i0.body s0.i0.region s0.i0.topics
//	s0.i0.l0.label s0.i0.l0.url
//
// The same names serve the form without script and the script's requests
// (which post the form as it is). A draft becomes Markdown by way of a
// compose.Issue written with compose.WriteMarkdown, so that the lint and
// the parse are exactly those of `tayori compose check`.

// Limits of a posted draft, well above any monthly issue.
const (
	maxSections = 100
	maxItems    = 300 // per section
	maxLinks    = 50  // per item
)

// draft is a composer form as posted.
type draft struct {
	Slug       string
	Base       int
	Newsletter string
	Title      string
	Preheader  string
	Period     string
	Intro      string // paragraphs separated by blank lines
	Closing    string
	Rules      string // region rules, one "name = region" a line
	Sections   []draftSection
}

type draftSection struct {
	Heading, Region, Kind, Group string
	Items                        []draftItem
}

type draftItem struct {
	Dates, Headline, Body, Region, Topics string
	Links                                 []draftLink
}

type draftLink struct{ Label, URL string }

// parseDraft reads a posted composer form.
func parseDraft(slug string, v url.Values) *draft {
	d := &draft{
		Slug:       slug,
		Newsletter: v.Get("newsletter"),
		Title:      v.Get("title"),
		Preheader:  v.Get("preheader"),
		Period:     v.Get("period"),
		Intro:      v.Get("intro"),
		Closing:    v.Get("closing"),
		Rules:      v.Get("rules"),
	}
	d.Base, _ = strconv.Atoi(v.Get("base"))
	for si := 0; si < maxSections; si++ {
		p := "s" + strconv.Itoa(si) + "."
		if _, ok := v[p+"heading"]; !ok {
			break
		}
		s := draftSection{Heading: v.Get(p + "heading"), Region: v.Get(p + "region"), Kind: v.Get(p + "kind"), Group: v.Get(p + "group")}
		for ii := 0; ii < maxItems; ii++ {
			q := p + "i" + strconv.Itoa(ii) + "."
			if _, ok := v[q+"headline"]; !ok {
				break
			}
			it := draftItem{Dates: v.Get(q + "dates"), Headline: v.Get(q + "headline"), Body: v.Get(q + "body"),
				Region: v.Get(q + "region"), Topics: v.Get(q + "topics")}
			for li := 0; li < maxLinks; li++ {
				r := q + "l" + strconv.Itoa(li) + "."
				if _, ok := v[r+"url"]; !ok {
					break
				}
				it.Links = append(it.Links, draftLink{Label: v.Get(r + "label"), URL: v.Get(r + "url")})
			}
			s.Items = append(s.Items, it)
		}
		d.Sections = append(d.Sections, s)
	}
	return d
}

// values is the draft as form values (the inverse of parseDraft).
func (d *draft) values() url.Values {
	v := url.Values{"base": {strconv.Itoa(d.Base)}, "newsletter": {d.Newsletter}, "title": {d.Title},
		"preheader": {d.Preheader}, "period": {d.Period}, "intro": {d.Intro}, "closing": {d.Closing}, "rules": {d.Rules}}
	for si, s := range d.Sections {
		p := "s" + strconv.Itoa(si) + "."
		v.Set(p+"heading", s.Heading)
		v.Set(p+"region", s.Region)
		v.Set(p+"kind", s.Kind)
		v.Set(p+"group", s.Group)
		for ii, it := range s.Items {
			q := p + "i" + strconv.Itoa(ii) + "."
			v.Set(q+"dates", it.Dates)
			v.Set(q+"headline", it.Headline)
			v.Set(q+"body", it.Body)
			v.Set(q+"region", it.Region)
			v.Set(q+"topics", it.Topics)
			for li, l := range it.Links {
				r := q + "l" + strconv.Itoa(li) + "."
				v.Set(r+"label", l.Label)
				v.Set(r+"url", l.URL)
			}
		}
	}
	return v
}

// form is the draft's fields as a revision keeps them (without the base,
// which is the revision's own number when it is opened again).
func (d *draft) form() []byte {
	v := d.values()
	v.Del("base")
	return []byte(v.Encode())
}

// draftOf is the form of an issue.
func draftOf(is *compose.Issue, base int) *draft {
	d := &draft{Slug: is.Slug, Base: base, Newsletter: is.Newsletter, Title: is.Title, Preheader: is.Preheader,
		Period: is.Period, Intro: strings.Join(is.Intro, "\n\n"), Closing: strings.Join(is.Closing, "\n\n")}
	var rules []string
	for _, r := range is.RegionRules {
		rules = append(rules, r.Match+" = "+string(r.Region))
	}
	d.Rules = strings.Join(rules, "\n")
	for si := range is.Sections {
		sec := &is.Sections[si]
		heading := sec.Heading
		if heading == "" {
			heading = sec.Title
		}
		s := draftSection{Heading: heading, Region: string(sec.Region), Kind: string(sec.Kind), Group: sec.GroupAttr()}
		for ii := range sec.Items {
			it := &sec.Items[ii]
			di := draftItem{Dates: it.Dates.Text, Headline: it.Headline, Body: strings.Join(it.Body, "\n\n")}
			if it.Region != is.RegionOf(sec, it.Headline) {
				di.Region = string(it.Region)
			}
			var tags []string
			for i, t := range it.Topics {
				if i == 0 && t == sec.Kind {
					continue
				}
				tags = append(tags, string(t))
			}
			di.Topics = strings.Join(tags, ", ")
			for li, u := range it.Links {
				l := draftLink{URL: u}
				if li < len(it.LinkLabels) {
					l.Label = it.LinkLabels[li]
				}
				di.Links = append(di.Links, l)
			}
			s.Items = append(s.Items, di)
		}
		d.Sections = append(d.Sections, s)
	}
	return d
}

// oneLine keeps a single-line field on one line.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(s)), " "))
}

// trimDates drops the parentheses an editor may type around the dates.
func trimDates(s string) string {
	s = oneLine(s)
	for _, p := range [][2]string{{"(", ")"}, {"（", "）"}} {
		if strings.HasPrefix(s, p[0]) && strings.HasSuffix(s, p[1]) {
			s = strings.TrimSpace(s[len(p[0]) : len(s)-len(p[1])])
		}
	}
	return s
}

// splitTags splits topic tags typed with commas, spaces or 、.
func splitTags(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == '、' || r == '，' || r == ' ' || r == '\u3000' || r == '\t'
	})
}

// issue builds the issue the draft describes, with its values as typed:
// what does not parse (dates, regions, tags) is left for the Markdown
// reader to report, at its line.
func (d *draft) issue() *compose.Issue {
	is := &compose.Issue{
		Newsletter: oneLine(d.Newsletter), Slug: d.Slug, Title: oneLine(d.Title), Preheader: oneLine(d.Preheader),
		Period: oneLine(d.Period), Intro: compose.Paragraphs(d.Intro), Closing: compose.Paragraphs(d.Closing),
		Sections: []compose.Section{},
	}
	for l := range strings.SplitSeq(d.Rules, "\n") {
		m, r, ok := strings.Cut(l, "=")
		if m, r = strings.TrimSpace(m), strings.TrimSpace(r); m == "" && r == "" {
			continue
		}
		if !ok {
			m, r = oneLine(l), ""
		}
		is.RegionRules = append(is.RegionRules, compose.RegionRule{Match: m, Region: audience.Region(r)})
	}
	for _, ds := range d.Sections {
		sec := compose.Section{Heading: oneLine(ds.Heading), Region: audience.Region(strings.TrimSpace(ds.Region)),
			Kind: audience.Topic(strings.TrimSpace(ds.Kind)), Group: oneLine(ds.Group), Items: []compose.Item{}}
		for _, di := range ds.Items {
			it := compose.Item{Dates: compose.Dates{Text: trimDates(di.Dates)}, Headline: oneLine(di.Headline),
				Body: compose.Paragraphs(di.Body), Topics: []audience.Topic{sec.Kind}}
			if r := strings.TrimSpace(di.Region); r != "" {
				it.Region = audience.Region(r)
			} else {
				it.Region = is.RegionOf(&sec, it.Headline)
			}
			for _, t := range splitTags(di.Topics) {
				if audience.Topic(t) != sec.Kind {
					it.Topics = append(it.Topics, audience.Topic(t))
				}
			}
			labelled := false
			for _, l := range di.Links {
				u, label := strings.TrimSpace(oneLine(l.URL)), oneLine(l.Label)
				if u == "" && label == "" {
					continue
				}
				it.Links = append(it.Links, u)
				it.LinkLabels = append(it.LinkLabels, label)
				labelled = labelled || label != ""
			}
			if !labelled {
				it.LinkLabels = nil
			}
			sec.Items = append(sec.Items, it)
		}
		is.Sections = append(is.Sections, sec)
	}
	return is
}

// fieldProblem is a problem of the lint or the parse, placed at a field
// of the form.
type fieldProblem struct {
	Field    string `json:"field"`      // form field name; "" for the issue as a whole
	Severity string `json:"severity"`   // "error" or "warning"
	Message  string `json:"message"`    // the message as `tayori compose check` prints it
	Japanese string `json:"message_ja"` // the same in Japanese, for the console ("" for the parser's errors)
	Text     string `json:"text"`       // the whole line `tayori compose check` prints
	Line     int    `json:"line"`       // line in the Markdown (the downloaded file)
}

// Say is the problem's message in the console's language: Japanese when
// there is a Japanese wording and the editor has not chosen English.
func (p fieldProblem) Say(lang string) string {
	if lang != "en" && p.Japanese != "" {
		return p.Japanese
	}
	return p.Message
}

// checked is a draft written as Markdown and read back.
type checked struct {
	Markdown []byte
	Name     string         // the Markdown's file name in problem reports
	Issue    *compose.Issue // nil when the Markdown does not parse
	Problems []fieldProblem // parse errors, or the lint
}

// parsed writes the draft as Markdown and reads it back; the issue is nil
// when it does not parse (check says why, field by field).
func (d *draft) parsed() (*compose.Issue, error) {
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, d.issue()); err != nil {
		return nil, err
	}
	is, err := compose.ParseMarkdown(d.Slug+".md", buf.Bytes())
	if err != nil {
		return nil, nil
	}
	return is, nil
}

// check writes the draft as Markdown, reads it back (as `tayori compose
// check` reads the file) and lints it, placing each problem at a field.
func (d *draft) check() (*checked, error) {
	var buf bytes.Buffer
	if err := compose.WriteMarkdown(&buf, d.issue()); err != nil {
		return nil, err
	}
	c := &checked{Markdown: buf.Bytes(), Name: d.Slug + ".md"}
	fields := d.lineFields(c.Markdown)
	c.Issue, c.Problems = lintSource(c.Name, c.Markdown, fields)
	return c, nil
}

// lintSource parses and lints a source as `tayori compose check` does;
// fields names the form field of each line (nil: none).
func lintSource(name string, src []byte, fields []string) (*compose.Issue, []fieldProblem) {
	var out []fieldProblem
	is, err := compose.Parse(name, src)
	if err != nil {
		var list compose.Errors
		var one *compose.Error
		switch {
		case errors.As(err, &list):
		case errors.As(err, &one):
			list = compose.Errors{one}
		default:
			return nil, []fieldProblem{{Severity: string(compose.SeverityError), Message: err.Error(), Text: err.Error()}}
		}
		for _, e := range list {
			out = append(out, fieldProblem{Field: fieldAt(fields, e.Line, e.Msg), Severity: string(compose.SeverityError),
				Message: e.Msg, Text: e.Error(), Line: e.Line})
		}
		return nil, out
	}
	for _, p := range compose.Check(is) {
		out = append(out, fieldProblem{Field: fieldAt(fields, p.Line, p.Message), Severity: string(p.Severity),
			Message: p.Message, Japanese: p.Japanese, Text: p.String(), Line: p.Line})
	}
	return is, out
}

// lineFields names the form field each line of the draft's Markdown comes
// from (index 0 is line 1). Links left out of the Markdown (empty rows)
// keep the form's numbering.
func (d *draft) lineFields(md []byte) []string {
	lines := strings.Split(strings.TrimSuffix(string(md), "\n"), "\n")
	out := make([]string, len(lines))
	// The form rows of the links that were written, per item.
	written := make([][][]int, len(d.Sections))
	for si, s := range d.Sections {
		written[si] = make([][]int, len(s.Items))
		for ii, it := range s.Items {
			for li, l := range it.Links {
				if strings.TrimSpace(l.URL) != "" || strings.TrimSpace(l.Label) != "" {
					written[si][ii] = append(written[si][ii], li)
				}
			}
		}
	}
	inFront, key := false, ""
	si, ii, li := -1, -1, 0
	closing := false
	for n, l := range lines {
		switch {
		case n == 0 && l == "---":
			inFront = true
			continue
		case inFront && l == "---":
			inFront = false
			continue
		case inFront:
			if k, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "#") {
				key = k
			}
			switch key {
			case "newsletter", "title", "preheader", "period", "slug":
				out[n] = key
			case "region_rules":
				out[n] = "rules"
			}
			continue
		}
		switch {
		case closing:
			out[n] = "closing"
		case l == "---":
			closing = true
			out[n] = "closing"
		case strings.HasPrefix(l, "## "):
			si, ii = si+1, -1
			out[n] = fmt.Sprintf("s%d.heading", si)
		case strings.HasPrefix(l, "### ") || l == "###":
			ii, li = ii+1, 0
			out[n] = fmt.Sprintf("s%d.i%d.headline", si, ii)
		case si < 0:
			out[n] = "intro"
		case ii >= 0 && strings.HasPrefix(l, "- "):
			row := li
			if si < len(written) && ii < len(written[si]) && li < len(written[si][ii]) {
				row = written[si][ii][li]
			}
			out[n] = fmt.Sprintf("s%d.i%d.l%d.url", si, ii, row)
			li++
		case ii >= 0:
			out[n] = fmt.Sprintf("s%d.i%d.body", si, ii)
		default:
			out[n] = fmt.Sprintf("s%d.heading", si)
		}
	}
	return out
}

// fieldAt places a problem reported at line (1-based; 0 for the whole
// issue) with message msg at a form field.
func fieldAt(fields []string, line int, msg string) string {
	if line <= 0 || line > len(fields) {
		switch {
		case strings.Contains(msg, "no slug"):
			return "slug"
		case strings.Contains(msg, "no title"):
			return "title"
		case strings.Contains(msg, "newsletter name"):
			return "newsletter"
		case strings.Contains(msg, "no sections"):
			return "sections"
		}
		return ""
	}
	f := fields[line-1]
	switch base, ok := strings.CutSuffix(f, ".headline"); {
	case ok:
		switch {
		case strings.Contains(msg, "date"):
			return base + ".dates"
		case strings.Contains(msg, "topics"):
			return base + ".topics"
		case strings.Contains(msg, "region"):
			return base + ".region"
		}
	case strings.HasSuffix(f, ".heading") && strings.Count(f, ".") == 1:
		base := strings.TrimSuffix(f, ".heading")
		switch {
		case strings.Contains(msg, "kind"):
			return base + ".kind"
		case strings.Contains(msg, "region"):
			return base + ".region"
		}
	}
	return f
}

// ---- structure operations of the form without script ----

// apply performs a structure operation named by a button of the form:
// "add-section", "add-item:s1", "del:s1", "del:s1.i2", "up:s1", "down:s1.i2".
// Unknown or out-of-range operations change nothing.
func (d *draft) apply(op string) {
	verb, target, _ := strings.Cut(op, ":")
	si, ii := parseTarget(target)
	switch {
	case verb == "add-section":
		d.Sections = append(d.Sections, draftSection{Items: []draftItem{{}}})
		return
	case si < 0 || si >= len(d.Sections):
		return
	case verb == "add-item":
		d.Sections[si].Items = append(d.Sections[si].Items, draftItem{})
		return
	}
	if ii < 0 {
		switch verb {
		case "del":
			d.Sections = slices.Delete(d.Sections, si, si+1)
		case "up":
			if si > 0 {
				d.Sections[si-1], d.Sections[si] = d.Sections[si], d.Sections[si-1]
			}
		case "down":
			if si+1 < len(d.Sections) {
				d.Sections[si+1], d.Sections[si] = d.Sections[si], d.Sections[si+1]
			}
		}
		return
	}
	items := d.Sections[si].Items
	if ii >= len(items) {
		return
	}
	switch verb {
	case "del":
		d.Sections[si].Items = slices.Delete(items, ii, ii+1)
	case "up":
		if ii > 0 {
			items[ii-1], items[ii] = items[ii], items[ii-1]
		} else if si > 0 { // the first item moves to the end of the section above
			it := items[0]
			d.Sections[si].Items = slices.Delete(items, 0, 1)
			d.Sections[si-1].Items = append(d.Sections[si-1].Items, it)
		}
	case "down":
		if ii+1 < len(items) {
			items[ii+1], items[ii] = items[ii], items[ii+1]
		} else if si+1 < len(d.Sections) { // the last item moves to the top of the section below
			it := items[ii]
			d.Sections[si].Items = items[:ii]
			d.Sections[si+1].Items = append([]draftItem{it}, d.Sections[si+1].Items...)
		}
	}
}

// parseTarget reads "s1" or "s1.i2"; -1 for what is absent or malformed.
func parseTarget(t string) (si, ii int) {
	si, ii = -1, -1
	s, i, hasItem := strings.Cut(t, ".")
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "s")); err == nil && strings.HasPrefix(s, "s") {
		si = n
	}
	if hasItem {
		if n, err := strconv.Atoi(strings.TrimPrefix(i, "i")); err == nil && strings.HasPrefix(i, "i") {
			ii = n
		} else {
			si = -1
		}
	}
	return si, ii
}
