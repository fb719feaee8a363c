package audience

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Region is where a piece of news comes from.
type Region string

// The regions of the monthly, in the order the newsletter presents them.
const (
	JP   Region = "jp"   // Japan (domestic)
	US   Region = "us"   // United States
	EU   Region = "eu"   // Europe, including the United Kingdom
	Asia Region = "asia" // China, Korea, India, Singapore and the rest of Asia
	Intl Region = "intl" // international bodies (UN, OECD, ISO, …)
)

// Regions lists every region in presentation order.
var Regions = []Region{JP, US, EU, Asia, Intl}

// Topic is what a piece of news is about. The standard topics are the kinds
// of section in an issue; editors may tag items with further custom topics.
type Topic string

// The standard topics (section kinds).
const (
	Activities Topic = "activities" // the institute's own activities
	Policy     Topic = "policy"     // government policy
	Reports    Topic = "reports"    // reports and publications
)

// StandardTopics lists the standard topics in presentation order.
var StandardTopics = []Topic{Activities, Policy, Reports}

// ErrInvalid is wrapped by every parse error of this package.
var ErrInvalid = errors.New("invalid audience value")

var tagRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ParseRegion parses one region name, case-insensitively.
func ParseRegion(s string) (Region, error) {
	r := Region(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Regions, r) {
		return r, nil
	}
	return "", fmt.Errorf("%w: region %q (want one of jp, us, eu, asia, intl)", ErrInvalid, s)
}

// ParseTopic parses a topic: a standard topic or a custom tag of lower-case
// letters, digits and hyphens, at most 32 characters.
func ParseTopic(s string) (Topic, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if slices.Contains(StandardTopics, Topic(t)) {
		return Topic(t), nil // the common case, without the regular expression
	}
	if !tagRE.MatchString(t) {
		return "", fmt.Errorf("%w: topic %q (want a-z, 0-9 and '-', at most 32)", ErrInvalid, s)
	}
	return Topic(t), nil
}

// IsStandard reports whether t is one of the standard topics.
func (t Topic) IsStandard() bool { return slices.Contains(StandardTopics, t) }

// ParseRegions parses a comma-separated list of regions ("jp,us"). The
// result is sorted in presentation order without duplicates. An empty
// string gives an empty list.
func ParseRegions(csv string) ([]Region, error) {
	var out []Region
	var errs []error
	for f := range strings.SplitSeq(csv, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		r, err := ParseRegion(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return NormalizeRegions(out), errors.Join(errs...)
}

// ParseTopics parses a comma-separated list of topics. Standard topics come
// first in presentation order, then custom tags sorted; no duplicates.
func ParseTopics(csv string) ([]Topic, error) {
	var out []Topic
	var errs []error
	for f := range strings.SplitSeq(csv, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		t, err := ParseTopic(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, t)
	}
	return NormalizeTopics(out), errors.Join(errs...)
}

// NormalizeRegions sorts regions in presentation order and removes duplicates.
func NormalizeRegions(rs []Region) []Region {
	out := make([]Region, 0, len(rs))
	for _, r := range Regions {
		if slices.Contains(rs, r) {
			out = append(out, r)
		}
	}
	return out
}

// NormalizeTopics puts standard topics first in presentation order, then
// custom tags in lexical order, without duplicates.
func NormalizeTopics(ts []Topic) []Topic {
	out := make([]Topic, 0, len(ts))
	for _, t := range StandardTopics {
		if slices.Contains(ts, t) {
			out = append(out, t)
		}
	}
	var custom []Topic
	for _, t := range ts {
		if !t.IsStandard() && !slices.Contains(custom, t) {
			custom = append(custom, t)
		}
	}
	slices.Sort(custom)
	return append(out, custom...)
}

// Prefs is what a reader chose: the regions and topics they want. A reader
// who chose nothing in a dimension receives nothing; new subscribers start
// with All().
type Prefs struct {
	Regions []Region `json:"regions"`
	Topics  []Topic  `json:"topics"`
}

// All returns preferences that include every region and standard topic.
func All() Prefs {
	return Prefs{Regions: slices.Clone(Regions), Topics: slices.Clone(StandardTopics)}
}

// Wants reports whether content from region r about any of topics is for
// this reader: the region must be chosen and at least one topic shared.
func (p Prefs) Wants(r Region, topics []Topic) bool {
	if !slices.Contains(p.Regions, r) {
		return false
	}
	for _, t := range topics {
		if slices.Contains(p.Topics, t) {
			return true
		}
	}
	return false
}

// Key is a canonical string for the preferences ("jp,us|policy,reports"),
// equal for equal sets whatever their order.
func (p Prefs) Key() string { return string(p.AppendKey(nil)) }

// AppendKey appends p's Key to dst. Without custom topics it allocates
// nothing: the delivery worker computes one key per reader.
func (p Prefs) AppendKey(dst []byte) []byte {
	dst, _ = appendIn(dst, Regions, p.Regions)
	dst = append(dst, '|')
	dst, n := appendIn(dst, StandardTopics, p.Topics)
	if !slices.ContainsFunc(p.Topics, func(t Topic) bool { return !t.IsStandard() }) {
		return dst
	}
	for _, t := range NormalizeTopics(p.Topics)[n:] {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t...)
		n++
	}
	return dst
}

// appendIn appends, comma-separated and in order's order, the members of
// order that set holds, and returns how many it appended.
func appendIn[T ~string](dst []byte, order, set []T) ([]byte, int) {
	n := 0
	for _, v := range order {
		if slices.Contains(set, v) {
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
			n++
		}
	}
	return dst, n
}
