package compose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tayori-news/tayori/audience"
)

// frontMatter is the YAML block at the top of the editor's Markdown.
type frontMatter struct {
	Newsletter  string       `yaml:"newsletter"`
	Slug        string       `yaml:"slug"`
	Title       string       `yaml:"title"`
	Preheader   string       `yaml:"preheader,omitempty"`
	Period      string       `yaml:"period,omitempty"`
	RegionRules []RegionRule `yaml:"region_rules,omitempty"`
}

// Attribute keys allowed on section and item headings.
var (
	sectionKeys = []string{"region", "kind", "group"}
	itemKeys    = []string{"region", "topics"}
)

// yamlLineRE finds the line numbers in yaml.v3's messages.
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseMarkdown reads an issue in the editor's Markdown format (see
// docs/issue-format.md): YAML front matter, intro paragraphs, "## "
// section headings and "### " items, each heading optionally ending in an
// attribute block such as {region=us kind=policy}. Every problem is
// reported with its line, all at once, as Errors.
func ParseMarkdown(name string, data []byte) (*Issue, error) {
	lines, err := sourceLines(name, data)
	if err != nil {
		return nil, err
	}
	c := errs{file: name}
	is := &Issue{Source: name, Sections: []Section{}}
	if len(lines) == 0 || lines[0] != "---" {
		c.add(1, ErrSyntax, `the editor's format starts with a front matter line "---"`)
		return nil, c.err()
	}
	end := -1
	for i := 1; i < len(lines); i++ {
		if lines[i] == "---" || lines[i] == "..." {
			end = i
			break
		}
	}
	if end < 0 {
		c.add(1, ErrSyntax, `front matter is not closed by a "---" line`)
		return nil, c.err()
	}
	parseFrontMatter(&c, is, strings.Join(lines[1:end], "\n"), 1)

	p := mdParser{c: &c, is: is}
	for i := end + 1; i < len(lines); i++ {
		p.line(i+1, lines[i])
	}
	p.flush()
	if p.inComment {
		c.add(p.commentLine, ErrSyntax, `comment "<!--" is not closed by "-->"`)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return is, nil
}

// parseFrontMatter decodes the YAML whose first line is line off+1.
func parseFrontMatter(c *errs, is *Issue, src string, off int) {
	var fm frontMatter
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&fm); err != nil && !errors.Is(err, io.EOF) {
		var msgs []string
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = te.Errors
		} else {
			msgs = []string{err.Error()}
		}
		for _, m := range msgs {
			line := off
			if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
				n, _ := strconv.Atoi(sm[1])
				line, m = off+n, sm[2]
			}
			c.add(line, ErrSyntax, "front matter: %s (keys: newsletter, slug, title, preheader, period, region_rules)", m)
		}
	}
	for i := range fm.RegionRules {
		r := &fm.RegionRules[i]
		r.Line += off
		if strings.TrimSpace(r.Match) == "" {
			c.add(r.Line, ErrSyntax, "region_rules: rule has no match")
		}
		if err := validRegion(r.Region); err != nil {
			c.add(r.Line, ErrSyntax, "region_rules: %v", err)
		}
	}
	is.Newsletter, is.Slug, is.Title = fm.Newsletter, fm.Slug, fm.Title
	is.Preheader, is.Period, is.RegionRules = fm.Preheader, CanonicalPeriod(fm.Period), fm.RegionRules
}

// mdParser holds the state of the line-based Markdown parser.
type mdParser struct {
	c           *errs
	is          *Issue
	sec         *Section
	it          *Item
	para        []string // lines of the paragraph being read
	paraLine    int
	inComment   bool
	commentLine int
	lostSection bool // the last section heading was bad: skip its items quietly
	closing     bool // after the "---" line that starts the closing
}

func (p *mdParser) line(ln int, l string) {
	if p.inComment {
		if strings.Contains(l, "-->") {
			p.inComment = false
		}
		return
	}
	t := strings.TrimLeft(l, " \t")
	if p.closing {
		p.closingLine(ln, t)
		return
	}
	switch {
	case t == "":
		p.flush()
	case l == closingMark:
		p.flush()
		p.it, p.sec, p.lostSection, p.closing = nil, nil, false, true
	case strings.HasPrefix(t, "<!--"):
		p.flush()
		if !strings.Contains(t[4:], "-->") {
			p.inComment, p.commentLine = true, ln
		}
	case strings.HasPrefix(t, "#"):
		p.flush()
		level := len(t) - len(strings.TrimLeft(t, "#"))
		rest := t[level:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			p.c.add(ln, ErrSyntax, `heading marks need a space after them ("## 見出し"); to start a paragraph with "#", write "\#"`)
			return
		}
		rest = strings.TrimSpace(rest)
		switch level {
		case 2:
			p.section(ln, rest)
		case 3:
			p.item(ln, rest)
		default:
			p.c.add(ln, ErrSyntax, `level-%d heading: sections are "## " and items "### "`, level)
		}
	case t[0] == '-' || t[0] == '*' || t[0] == '+':
		if len(t) > 1 && t[1] != ' ' && t[1] != '\t' {
			p.text(ln, t)
			return
		}
		p.flush()
		u := strings.TrimSpace(t[1:])
		label := ""
		if strings.HasPrefix(u, "<") && strings.HasSuffix(u, ">") {
			u = u[1 : len(u)-1]
		} else if l, url, ok := splitLabel(u); ok {
			label, u = l, url
		}
		switch {
		case p.it != nil:
			p.it.Links = append(p.it.Links, u)
			p.it.LinkLines = append(p.it.LinkLines, ln)
			if label != "" && p.it.LinkLabels == nil {
				p.it.LinkLabels = make([]string, len(p.it.Links)-1)
			}
			if p.it.LinkLabels != nil {
				p.it.LinkLabels = append(p.it.LinkLabels, label)
			}
		case !p.lostSection:
			p.c.add(ln, ErrSyntax, "link %q outside an item (links follow an item's \"### \" heading)", u)
		}
	default:
		p.text(ln, t)
	}
}

// text adds a line to the current paragraph; a leading backslash escapes
// a character that would otherwise start a heading, link or comment.
func (p *mdParser) text(ln int, t string) {
	t = strings.TrimPrefix(t, `\`)
	if len(p.para) == 0 {
		p.paraLine = ln
	}
	p.para = append(p.para, t)
}

// flush ends the current paragraph.
func (p *mdParser) flush() {
	if len(p.para) == 0 {
		return
	}
	text := joinLines(p.para)
	p.para = p.para[:0]
	switch {
	case p.closing:
		p.is.Closing = append(p.is.Closing, text)
	case p.it != nil:
		p.it.Body = append(p.it.Body, text)
	case p.sec != nil:
		if !slices.Contains(noItems, text) {
			p.c.add(p.paraLine, ErrSyntax, "text between a section heading and its first item: an item starts with \"### \"")
		} else if len(p.sec.Items) == 0 {
			p.sec.Nothing = text
		}
	case p.lostSection:
	default:
		p.is.Intro = append(p.is.Intro, text)
	}
}

func (p *mdParser) section(ln int, rest string) {
	p.it = nil
	p.sec = nil
	p.lostSection = true
	text, attrs, ok := p.attrs(ln, rest, sectionKeys)
	if !ok {
		return
	}
	if text == "" {
		p.c.add(ln, ErrSyntax, "section heading is empty")
		return
	}
	title, period, note := splitHeading(text)
	s := Section{Heading: text, Title: title, Period: period, Note: note, Items: []Item{}, Line: ln}
	var groupNote string
	if g := attrs["group"]; g != "" {
		s.Group, groupNote = splitNote(g)
	}
	if rule, ok := lookupHeading(title); ok && !rule.group {
		s.Region, s.Kind = rule.region, rule.kind
	}
	if s.Note == "" {
		s.Note = groupNote
	}
	bad := false
	if v, ok := attrs["region"]; ok {
		s.Region = audience.Region(v)
	}
	if v, ok := attrs["kind"]; ok {
		s.Kind = audience.Topic(v)
	}
	switch {
	case s.Region == "" && s.Kind == "":
		p.c.add(ln, ErrSyntax, "unknown section heading %q: say its region and kind, e.g. {region=jp kind=policy}", title)
		bad = true
	case s.Region == "":
		p.c.add(ln, ErrSyntax, "section %q has no region: add region=jp|us|eu|asia|intl", title)
		bad = true
	case s.Kind == "":
		p.c.add(ln, ErrSyntax, "section %q has no kind: add kind=activities|policy|reports", title)
		bad = true
	}
	if s.Region != "" {
		if err := validRegion(s.Region); err != nil {
			p.c.add(ln, ErrSyntax, "section %q: %v", title, err)
			bad = true
		}
	}
	if s.Kind != "" && !s.Kind.IsStandard() {
		p.c.add(ln, ErrSyntax, "section %q: unknown kind %q (want activities, policy or reports)", title, s.Kind)
		bad = true
	}
	if bad {
		return
	}
	p.is.Sections = append(p.is.Sections, s)
	p.sec = &p.is.Sections[len(p.is.Sections)-1]
	p.lostSection = false
}

func (p *mdParser) item(ln int, rest string) {
	p.it = nil
	if p.sec == nil {
		if !p.lostSection {
			p.c.add(ln, ErrSyntax, "item before the first section heading (\"## \")")
		}
		return
	}
	text, attrs, ok := p.attrs(ln, rest, itemKeys)
	if !ok {
		return
	}
	var dates Dates
	if strings.HasPrefix(text, "(") || strings.HasPrefix(text, "（") {
		i := strings.IndexAny(text, ")）")
		if i < 0 {
			p.c.add(ln, ErrSyntax, "item dates: \"(\" without \")\"")
			return
		}
		open := 1
		if text[0] != '(' {
			open = len("（")
		}
		var err error
		if dates, err = ParseDates(text[open:i]); err != nil {
			p.c.add(ln, ErrSyntax, "item: %v", err)
			return
		}
		_, n := utf8.DecodeRuneInString(text[i:])
		text = strings.TrimSpace(text[i+n:])
	}
	if text == "" {
		p.c.add(ln, ErrSyntax, "item has no headline")
		return
	}
	it := Item{Dates: dates, Headline: text, Line: ln}
	it.Region = p.is.RegionOf(p.sec, text)
	if v, ok := attrs["region"]; ok {
		if err := validRegion(audience.Region(v)); err != nil {
			p.c.add(ln, ErrSyntax, "item: %v", err)
			return
		}
		it.Region = audience.Region(v)
	}
	it.Topics = []audience.Topic{p.sec.Kind}
	if v, ok := attrs["topics"]; ok {
		tags, err := audience.ParseTopics(v)
		if err != nil {
			p.c.add(ln, ErrSyntax, "item topics: %v", err)
			return
		}
		for _, t := range tags {
			if t != p.sec.Kind {
				it.Topics = append(it.Topics, t)
			}
		}
	}
	p.sec.Items = append(p.sec.Items, it)
	p.it = &p.sec.Items[len(p.sec.Items)-1]
}

// closingMark is the line that ends the sections: the paragraphs after it
// are the issue's closing.
const closingMark = "---"

// closingLine reads a line of the closing: paragraphs only.
func (p *mdParser) closingLine(ln int, t string) {
	switch {
	case t == "":
		p.flush()
	case strings.HasPrefix(t, "<!--"):
		p.flush()
		if !strings.Contains(t[4:], "-->") {
			p.inComment, p.commentLine = true, ln
		}
	case t[0] == '#':
		p.flush()
		p.c.add(ln, ErrSyntax, `heading after the closing: sections and items come before the "---" line that starts the closing; to start a paragraph with "#", write "\#"`)
	case t[0] == '-' || t[0] == '*' || t[0] == '+':
		if len(t) > 1 && t[1] != ' ' && t[1] != '\t' {
			p.text(ln, t)
			return
		}
		p.flush()
		p.c.add(ln, ErrSyntax, `link in the closing: links belong to items; to start a paragraph with "%c", write "\%c"`, t[0], t[0])
	default:
		p.text(ln, t)
	}
}

// splitLabel reads a labelled link "[label](url)", where "\]" and "\\"
// in the label stand for "]" and "\".
func splitLabel(s string) (label, url string, ok bool) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, ")") {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == ']' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == ']':
			if !strings.HasPrefix(s[i:], "](") {
				return "", "", false
			}
			label, url = strings.TrimSpace(b.String()), strings.TrimSpace(s[i+2:len(s)-1])
			return label, url, label != "" && url != ""
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// attrs splits a heading into its text and its trailing attribute block,
// checking the keys against allowed. ok is false after an error.
func (p *mdParser) attrs(ln int, s string, allowed []string) (text string, attrs map[string]string, ok bool) {
	text, attrs, found, err := splitAttrs(s)
	if err != nil {
		p.c.add(ln, ErrSyntax, "attributes: %v", err)
		return "", nil, false
	}
	if !found {
		return s, nil, true
	}
	ok = true
	for k := range attrs {
		if !slices.Contains(allowed, k) {
			p.c.add(ln, ErrSyntax, "unknown attribute %q (allowed here: %s)", k, strings.Join(allowed, ", "))
			ok = false
		}
	}
	return text, attrs, ok
}

// splitAttrs finds a trailing block "{key=value key="quoted value"}" after
// a space (or alone). found is false when there is none; err is set when
// the last block looks like attributes (holds "=") but is malformed.
func splitAttrs(s string) (text string, attrs map[string]string, found bool, err error) {
	if !strings.HasSuffix(s, "}") {
		return s, nil, false, nil
	}
	var firstErr error
	for i := strings.LastIndexByte(s, '{'); i >= 0; i = strings.LastIndexByte(s[:i], '{') {
		if i > 0 && s[i-1] != ' ' && s[i-1] != '\t' {
			continue
		}
		a, perr := parseAttrBlock(s[i+1 : len(s)-1])
		if perr == nil {
			return strings.TrimSpace(s[:i]), a, true, nil
		}
		if firstErr == nil {
			firstErr = perr
		}
	}
	last := s[strings.LastIndexByte(s, '{')+1:]
	if strings.Contains(last, "=") && firstErr != nil {
		return "", nil, false, firstErr
	}
	return s, nil, false, nil
}

// parseAttrBlock parses `key=value key="a \"b\""`.
func parseAttrBlock(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return out, nil
		}
		k0 := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] == '_') {
			i++
		}
		key := s[k0:i]
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("want key=value in {%s}", s)
		}
		i++
		var val strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			closed := false
			for i < len(s) {
				ch := s[i]
				if ch == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				i++
				if ch == '"' {
					closed = true
					break
				}
				val.WriteByte(ch)
			}
			if !closed {
				return nil, fmt.Errorf("unclosed quote in {%s}", s)
			}
			if i < len(s) && s[i] != ' ' && s[i] != '\t' {
				return nil, fmt.Errorf("want a space after a quoted value in {%s}", s)
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' {
				if s[i] == '"' || s[i] == '{' || s[i] == '}' {
					return nil, fmt.Errorf("quote a value holding %q in {%s}", s[i], s)
				}
				val.WriteByte(s[i])
				i++
			}
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("attribute %q given twice", key)
		}
		out[key] = val.String()
	}
}

// joinLines joins the lines of a paragraph: with nothing between two
// lines when either side of the join is a wide (CJK) character, else with
// one space.
func joinLines(ls []string) string {
	var b strings.Builder
	for i, l := range ls {
		l = strings.TrimSpace(l)
		if i > 0 && b.Len() > 0 && l != "" {
			last, _ := utf8.DecodeLastRuneInString(b.String())
			first, _ := utf8.DecodeRuneInString(l)
			if !isWide(last) && !isWide(first) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// isWide reports whether r is a CJK character or full-width form, around
// which Japanese text takes no spaces.
func isWide(r rune) bool {
	return r >= 0x2E80 && r <= 0x9FFF || r >= 0xAC00 && r <= 0xD7AF || r >= 0xF900 && r <= 0xFAFF || r >= 0xFF00 && r <= 0xFFEF || r >= 0x20000
}

// WriteMarkdown writes is in the editor's Markdown format. Parsing the
// output with ParseMarkdown gives back the same issue, line numbers aside.
func WriteMarkdown(w io.Writer, is *Issue) error {
	bw := bufio.NewWriter(w)
	var fm bytes.Buffer
	enc := yaml.NewEncoder(&fm)
	enc.SetIndent(2)
	if err := enc.Encode(frontMatter{
		Newsletter: is.Newsletter, Slug: is.Slug, Title: is.Title, Preheader: is.Preheader,
		Period: is.Period, RegionRules: is.RegionRules,
	}); err != nil {
		return fmt.Errorf("write front matter: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write front matter: %w", err)
	}
	bw.WriteString("---\n")
	bw.Write(fm.Bytes())
	if len(is.RegionRules) == 0 {
		bw.WriteString("# region_rules:        # regions of items in intl sections, by a name in the headline\n")
		bw.WriteString("#   - {match: 台湾, region: asia}\n")
	}
	bw.WriteString("---\n")
	for _, p := range is.Intro {
		bw.WriteString("\n")
		bw.WriteString(escapeParagraph(p))
		bw.WriteString("\n")
	}
	for si := range is.Sections {
		s := &is.Sections[si]
		heading := s.Heading
		if heading == "" {
			heading = s.Title
		}
		bw.WriteString("\n## ")
		bw.WriteString(heading)
		bw.WriteString(" {region=" + quoteAttr(string(s.Region)) + " kind=" + quoteAttr(string(s.Kind)))
		if g := groupAttr(s); g != "" {
			bw.WriteString(" group=" + quoteAttr(g))
		}
		bw.WriteString("}\n")
		if s.Nothing != "" && len(s.Items) == 0 {
			bw.WriteString("\n" + s.Nothing + "\n")
		}
		for ii := range s.Items {
			writeItem(bw, is, s, &s.Items[ii])
		}
	}
	if len(is.Closing) > 0 {
		bw.WriteString("\n" + closingMark + "\n")
		for _, p := range is.Closing {
			bw.WriteString("\n")
			bw.WriteString(escapeParagraph(p))
			bw.WriteString("\n")
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// groupAttr is the group attribute of a section: the parent heading, with
// the section's note when the note is not in the section's own heading.
func groupAttr(s *Section) string {
	if s.Group == "" {
		return ""
	}
	if _, _, own := splitHeading(s.Heading); own == "" && s.Note != "" {
		return s.Group + " " + s.Note
	}
	return s.Group
}

func writeItem(bw *bufio.Writer, is *Issue, s *Section, it *Item) {
	bw.WriteString("\n### ")
	switch {
	case it.Dates.Text != "":
		bw.WriteString("(" + it.Dates.Text + ") ")
	case strings.HasPrefix(it.Headline, "(") || strings.HasPrefix(it.Headline, "（"):
		bw.WriteString("() ")
	}
	bw.WriteString(it.Headline)
	var attrs []string
	if it.Region != is.RegionOf(s, it.Headline) {
		attrs = append(attrs, "region="+quoteAttr(string(it.Region)))
	}
	var tags []string
	for i, t := range it.Topics {
		if i == 0 && t == s.Kind {
			continue
		}
		tags = append(tags, string(t))
	}
	if len(tags) > 0 {
		attrs = append(attrs, "topics="+quoteAttr(strings.Join(tags, ",")))
	}
	switch {
	case len(attrs) > 0:
		bw.WriteString(" {" + strings.Join(attrs, " ") + "}")
	case strings.HasSuffix(it.Headline, "}"):
		bw.WriteString(" {}")
	}
	bw.WriteString("\n")
	for _, p := range it.Body {
		bw.WriteString("\n" + escapeParagraph(p) + "\n")
	}
	if len(it.Links) > 0 {
		bw.WriteString("\n")
		for i, u := range it.Links {
			label := ""
			if i < len(it.LinkLabels) {
				label = strings.TrimSpace(it.LinkLabels[i])
			}
			switch {
			case label != "":
				u = "[" + strings.NewReplacer(`\`, `\\`, `]`, `\]`).Replace(label) + "](" + u + ")"
			case strings.HasPrefix(u, "<") && strings.HasSuffix(u, ">"):
				u = "<" + u + ">" // the reader drops one pair of angle brackets
			case strings.HasPrefix(u, "[") && strings.HasSuffix(u, ")"):
				u = "<" + u + ">" // not a label: angle brackets keep it a URL
			}
			bw.WriteString("- " + u + "\n")
		}
	}
}

// escapeParagraph protects a paragraph that would otherwise read as a
// heading, link, comment or front matter.
func escapeParagraph(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return `\`
	}
	switch p[0] {
	case '#', '-', '*', '+', '\\':
		return `\` + p
	}
	if strings.HasPrefix(p, "<!--") {
		return `\` + p
	}
	return p
}

// quoteAttr quotes an attribute value when it needs it.
func quoteAttr(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"{}\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// Paragraphs splits text typed in a form into the paragraphs the Markdown
// reader would read from it: paragraphs are separated by blank lines, and
// the lines of a paragraph are joined as in the format (with nothing
// between Japanese text, with one space between Latin words). Line ends
// may be LF, CRLF or CR.
func Paragraphs(text string) []string {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
	var out, para []string
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			if len(para) > 0 {
				out = append(out, joinLines(para))
				para = para[:0]
			}
			continue
		}
		para = append(para, l)
	}
	if len(para) > 0 {
		out = append(out, joinLines(para))
	}
	return out
}

// GroupAttr is the group attribute WriteMarkdown writes for the section:
// its parent heading, with the section's note when the section's own
// heading has none (see docs/issue-format.md).
func (s *Section) GroupAttr() string { return groupAttr(s) }
