package templates

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Layout of the plain-text part.
const (
	// textWidth is the wrap width in display columns: a full-width
	// character counts two, so a line holds about 36 Japanese characters
	// (about 110 bytes), the customary width of Japanese plain-text mail.
	textWidth = 72
	// maxTokenBytes bounds an unbreakable token (a URL or a long word).
	// Longer ones are cut on a character boundary so that no line comes
	// near the 998-byte limit of RFC 5322; lint reports such URLs.
	maxTokenBytes = 900
)

var lineBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

var (
	ruleHeavy = strings.Repeat("=", textWidth)
	ruleLight = strings.Repeat("-", textWidth)
)

// writeText writes the plain-text part of v. It carries everything the
// HTML part does: every heading, item, body paragraph and URL, and the full
// footer with the unsubscribe URL and the statement that the reader may
// refuse further mail. Lines end in "\n"; the mailer turns them into CRLF.
func writeText(b *strings.Builder, v *view) {
	if v.Newsletter != "" {
		wrapTo(b, v.Newsletter, "", "")
	}
	wrapTo(b, v.Title, "", "")
	if v.Period != "" {
		wrapTo(b, "対象期間："+v.Period, "", "")
	}
	if v.WebURL != "" {
		b.WriteString("この号をブラウザで読む：\n")
		wrapTo(b, v.WebURL, "", "")
	}
	b.WriteString("\n")
	b.WriteString(v.Name)
	b.WriteString("\n\n")
	for _, p := range v.Intro {
		wrapTo(b, p, "", "")
		b.WriteString("\n")
	}
	if v.OnlyNothing {
		wrapTo(b, onlyNothingText, "", "")
		if v.WebURL != "" {
			wrapTo(b, "ほかの地域・分野を含む号の全体は、こちらでお読みいただけます：", "", "")
			wrapTo(b, v.WebURL, "", "")
		}
		b.WriteString("\n")
	}
	for _, s := range v.Sections {
		if s.Group != "" {
			wrapTo(b, "◆ "+s.Group, "", "  ")
		}
		b.WriteString(ruleHeavy)
		b.WriteString("\n")
		wrapTo(b, "■ "+s.Title, "", "  ")
		meta := "地域：" + s.Region
		if s.Period != "" {
			meta += "　期間：" + s.Period
		}
		wrapTo(b, meta, "  ", "  ")
		if s.Note != "" {
			wrapTo(b, s.Note, "  ", "  ")
		}
		b.WriteString(ruleHeavy)
		b.WriteString("\n\n")
		if s.Nothing != "" {
			wrapTo(b, s.Nothing, "", "")
			b.WriteString("\n")
		}
		for _, it := range s.Items {
			head := "● "
			if it.Date != "" {
				head += "(" + it.Date + ") "
			}
			wrapTo(b, head+it.Headline, "", "  ")
			for _, p := range it.Body {
				wrapTo(b, p, "  ", "  ")
			}
			for _, l := range it.Links {
				if l.Own || l.Counted {
					wrapTo(b, "▸ "+l.Label, "  ", "    ")
				}
				wrapTo(b, l.Href, "  ", "  ")
			}
			b.WriteString("\n")
		}
	}
	for _, p := range v.Closing {
		wrapTo(b, p, "", "")
		b.WriteString("\n")
	}
	b.WriteString(ruleLight)
	b.WriteString("\n")
	b.WriteString("【配信停止】\n")
	wrapTo(b, "今後このメールの受信を希望されない場合は、次のURLから配信を停止する（受信を拒否する）ことができます。", "", "")
	b.WriteString(v.UnsubscribeURL)
	b.WriteString("\n\n【受け取る地域・分野の変更】\n")
	b.WriteString(v.PreferencesURL)
	b.WriteString("\n\n")
	wrapTo(b, "発行者："+v.Sender, "", "  ")
	wrapTo(b, "所在地："+v.PostalAddress, "", "  ")
	wrapTo(b, "お問い合わせ："+v.Contact, "", "  ")
}

// unit is an unbreakable piece of a line: one full-width character with any
// punctuation that may not start or end a line glued to it, or a run of
// narrow non-space characters (a Latin word, a number, a URL).
type unit struct {
	s     string
	cols  int
	space bool // preceded by a space, which is dropped at a line break
}

// wrapTo writes s wrapped at textWidth columns, first line prefixed with
// first and the others with rest, breaking only between units: never inside
// a Latin word or URL, never before closing punctuation (、。」) nor after
// opening punctuation (「（). It inserts no spaces: a line break in
// Japanese text replaces nothing.
func wrapTo(b *strings.Builder, s, first, rest string) {
	s = strings.Trim(lineBreaks.Replace(s), " \t") // only ASCII: "　" is text
	units := splitUnits(s)
	b.WriteString(first)
	col := textCols(first)
	atStart := true
	for _, u := range units {
		add := u.cols
		if u.space && !atStart {
			add++
		}
		if !atStart && col+add > textWidth {
			b.WriteString("\n")
			b.WriteString(rest)
			col = textCols(rest)
			atStart = true
		}
		if u.space && !atStart {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(u.s)
		col += u.cols
		atStart = false
	}
	b.WriteString("\n")
}

func splitUnits(s string) []unit {
	var units []unit
	space := false
	glue := false // the last unit ends in a character that may not end a line
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == ' ' || r == '\t' {
			space = true
			glue = false
			i += n
			continue
		}
		if isWide(r) {
			if len(units) > 0 && !space && (glue || noLineStart(r)) {
				u := &units[len(units)-1]
				u.s += s[i : i+n]
				u.cols += 2
			} else {
				units = append(units, unit{s: s[i : i+n], cols: 2, space: space})
			}
			glue = noLineEnd(r)
			space = false
			i += n
			continue
		}
		// A run of narrow non-space characters.
		j := i
		cols := 0
		for j < len(s) && j-i < maxTokenBytes {
			r, m := utf8.DecodeRuneInString(s[j:])
			if r == ' ' || r == '\t' || isWide(r) {
				break
			}
			j += m
			cols++
		}
		if len(units) > 0 && !space && glue {
			u := &units[len(units)-1]
			u.s += s[i:j]
			u.cols += cols
		} else {
			units = append(units, unit{s: s[i:j], cols: cols, space: space})
		}
		glue = false
		space = false
		i = j
	}
	return units
}

// isWide reports whether r takes two columns in a monospaced Japanese
// font. Ambiguous-width characters above U+2000 (※, ①, ～) count as wide;
// those below (®, ×) as narrow, so that URLs stay one token.
func isWide(r rune) bool {
	if r < 0x1100 {
		return false
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return true
	case width.EastAsianAmbiguous:
		return r >= 0x2000
	}
	return false
}

func textCols(s string) int {
	n := 0
	for _, r := range s {
		if isWide(r) {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// noLineStart lists characters that may not begin a line (行頭禁則).
func noLineStart(r rune) bool {
	return strings.ContainsRune("、。，．・：；？！）」』】〕〉》］｝〙〗’”ゝゞーァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎ々〻‐゠–〜～…‥", r)
}

// noLineEnd lists characters that may not end a line (行末禁則).
func noLineEnd(r rune) bool {
	return strings.ContainsRune("（「『【〔〈《［｛〘〖‘“", r)
}
