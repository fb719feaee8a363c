package compose

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tayori-news/tayori/audience"
)

// RegionRule says that a headline naming Match is news from Region. Rules
// give the region of items in an international section (region intl);
// items elsewhere take their section's region.
type RegionRule struct {
	Match  string          `json:"match" yaml:"match"`
	Region audience.Region `json:"region" yaml:"region"`
	Line   int             `json:"-" yaml:"-"` // source line of the rule, 0 if unknown
}

// UnmarshalYAML decodes a rule and records its line.
func (r *RegionRule) UnmarshalYAML(n *yaml.Node) error {
	type plain RegionRule
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = RegionRule(p)
	r.Line = n.Line
	return nil
}

// DefaultRegionRules are the well-known names every issue knows. An
// issue's own RegionRules are tried alongside them and win ties.
var DefaultRegionRules = []RegionRule{
	{Match: "英国", Region: audience.EU},
	{Match: "イギリス", Region: audience.EU},
	{Match: "ドイツ", Region: audience.EU},
	{Match: "フランス", Region: audience.EU},
	{Match: "欧州", Region: audience.EU},
	{Match: "EU", Region: audience.EU},
	{Match: "NIST", Region: audience.US},
	{Match: "米国", Region: audience.US},
	{Match: "アメリカ", Region: audience.US},
	{Match: "中国", Region: audience.Asia},
	{Match: "韓国", Region: audience.Asia},
	{Match: "インド", Region: audience.Asia},
	{Match: "シンガポール", Region: audience.Asia},
	{Match: "UNESCO", Region: audience.Intl},
	{Match: "ISO", Region: audience.Intl},
	{Match: "IEC", Region: audience.Intl},
	{Match: "ITU", Region: audience.Intl},
	{Match: "OECD", Region: audience.Intl},
	{Match: "国連", Region: audience.Intl},
}

// InferRegion returns the region of the rule whose Match occurs first in
// headline; among rules matching at the same place, the earlier rule in
// rules wins. ASCII names match only as whole words ("EU", not "EUR").
// ok is false when no rule matches.
func InferRegion(headline string, rules []RegionRule) (r audience.Region, ok bool) {
	best := -1
	for _, rule := range rules {
		if rule.Match == "" {
			continue
		}
		at := indexWord(headline, rule.Match)
		if at >= 0 && (best < 0 || at < best) {
			best, r = at, rule.Region
		}
	}
	return r, best >= 0
}

// RegionOf returns the region an item with this headline gets in section
// s when the source does not say: the section's region, or for an
// international section the region inferred from the issue's rules and
// then DefaultRegionRules, else intl.
func (is *Issue) RegionOf(s *Section, headline string) audience.Region {
	if s.Region != audience.Intl {
		return s.Region
	}
	rules := make([]RegionRule, 0, len(is.RegionRules)+len(DefaultRegionRules))
	rules = append(append(rules, is.RegionRules...), DefaultRegionRules...)
	if r, ok := InferRegion(headline, rules); ok {
		return r
	}
	return audience.Intl
}

// indexWord is strings.Index, except that a match starting or ending with
// an ASCII letter or digit must not touch another one.
func indexWord(s, sub string) int {
	off := 0
	for {
		i := strings.Index(s[off:], sub)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(sub)
		okStart := !isASCIIAlnum(sub[0]) || i == 0 || !isASCIIAlnum(s[i-1])
		okEnd := !isASCIIAlnum(sub[len(sub)-1]) || end == len(s) || !isASCIIAlnum(s[end])
		if okStart && okEnd {
			return i
		}
		off = i + 1
	}
}

func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// headingRule is a known section heading of the monthly.
type headingRule struct {
	title  string // title without period and note
	prefix bool   // title starts with this and ends with "】"
	group  bool   // a parent heading of sub-sections, not a section
	sub    bool   // a sub-section of the group before it
	region audience.Region
	kind   audience.Topic
}

var headingRules = []headingRule{
	{title: "日本AISIの活動", region: audience.JP, kind: audience.Activities},
	{title: "国内AI政策動向", region: audience.JP, kind: audience.Policy},
	{title: "海外主要国のAI政策動向", group: true},
	{title: "【米国】", sub: true, region: audience.US, kind: audience.Policy},
	{title: "【欧州】", sub: true, region: audience.EU, kind: audience.Policy},
	{title: "【アジア", prefix: true, sub: true, region: audience.Asia, kind: audience.Policy},
	{title: "国内の主要なAI関連レポート等", region: audience.JP, kind: audience.Reports},
	{title: "海外の主要なAI関連レポート等", region: audience.Intl, kind: audience.Reports},
}

// lookupHeading finds the rule for a heading's title, ignoring spaces.
func lookupHeading(title string) (headingRule, bool) {
	t := strings.Join(strings.Fields(title), "")
	for _, h := range headingRules {
		if h.prefix && strings.HasPrefix(t, h.title) && strings.HasSuffix(t, "】") || !h.prefix && t == h.title {
			return h, true
		}
	}
	return headingRule{}, false
}

// knownHeadings lists the known titles for error messages.
func knownHeadings() string {
	var b strings.Builder
	for i, h := range headingRules {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.title)
		if h.prefix {
			b.WriteString("…】")
		}
	}
	return b.String()
}

// splitHeading splits a heading as written into its title, its period
// (the text of a final parenthesis holding a range) and its note (from
// "※" on): "海外の主要なAI関連レポート等(7月1日~7月31日) ※日時は現地時間".
// The period's range separator is made the ASCII tilde (CanonicalPeriod);
// the heading keeps it as written.
func splitHeading(h string) (title, period, note string) {
	s, note := splitNote(h)
	for _, p := range [][2]string{{"(", ")"}, {"（", "）"}} {
		if !strings.HasSuffix(s, p[1]) {
			continue
		}
		i := strings.LastIndex(s, p[0])
		if i < 0 {
			continue
		}
		inner := s[i+len(p[0]) : len(s)-len(p[1])]
		if strings.ContainsAny(inner, "~～〜") && strings.ContainsAny(inner, "0123456789０１２３４５６７８９") {
			return strings.TrimSpace(s[:i]), CanonicalPeriod(inner), note
		}
	}
	return s, "", note
}

// splitNote splits a heading into its text and its note (from "※" on).
func splitNote(h string) (text, note string) {
	s := strings.TrimSpace(h)
	if i := strings.Index(s, "※"); i >= 0 {
		return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	}
	return s, ""
}

// validRegion reports an error for a region outside the vocabulary.
func validRegion(r audience.Region) error {
	if _, err := audience.ParseRegion(string(r)); err != nil || string(r) != strings.ToLower(string(r)) {
		return fmt.Errorf("unknown region %q (want one of jp, us, eu, asia, intl)", r)
	}
	return nil
}
