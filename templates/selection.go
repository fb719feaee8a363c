package templates

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// ErrNothingToSend is returned by [Select] and [Renderer.Render] when a
// reader's preferences match none of an issue's items: that reader gets no
// message for this issue. Check it with errors.Is.
var ErrNothingToSend = errors.New("templates: nothing in this issue matches the reader's preferences")

// ErrInvalidSelection is returned by [Renderer.Render] when a [Selection]
// was not made by [Select] or [SelectAll] for the issue being rendered.
var ErrInvalidSelection = errors.New("templates: selection does not belong to this issue")

// Selection is the set of an issue's items that one reader receives. The
// zero Selection selects nothing. Make one with [Select] or [SelectAll].
type Selection struct {
	bits  []uint64 // bit i set: the i-th item of the issue, counting across sections in order
	total int      // number of items in the issue when the selection was made
	n     int      // number of items selected
	key   string
	// marked[j] is true when the j-th section marked as having nothing
	// this month (compose.Section.Nothing, counting such sections in
	// order) is for the reader: its heading and note are in their copy.
	marked  []bool
	nMarked int // sections of marked included
}

// NothingKeyPrefix starts the [Selection.Key] of a reader for whom every
// chosen section has nothing this month: their copy is a short one that
// says so, with the issue's link ([Selection.OnlyNothing]).
const NothingKeyPrefix = "empty:"

// OnlyNothing reports whether the selection holds no item, only sections
// marked as having nothing this month: the short copy that says so.
func (s Selection) OnlyNothing() bool { return s.n == 0 && s.nMarked > 0 }

// Key names the set of included items: two readers with different
// preferences that include the same items of the same issue get the same
// key, and only they do. It is "all" when every item is included, otherwise
// the item count followed by a hexadecimal bitmap of the included items in
// issue order ("24:f3a0c1"). A key is only meaningful together with the
// issue's slug.
func (s Selection) Key() string { return s.key }

// Len returns the number of items selected.
func (s Selection) Len() int { return s.n }

// Includes reports whether the item with the given index, counting across
// all sections of the issue in order from 0, is selected.
func (s Selection) Includes(index int) bool {
	if index < 0 || index >= s.total || index/64 >= len(s.bits) {
		return false
	}
	return s.bits[index/64]&(1<<(index%64)) != 0
}

// Select returns the items of issue that a reader with preferences p
// receives: those whose region and topics p wants ([audience.Prefs.Wants]).
// An item with no region or topics of its own takes its section's. If
// nothing is selected, Select returns [ErrNothingToSend]; a reader whose
// chosen sections all have nothing this month gets a selection of those
// sections alone ([Selection.OnlyNothing]). Select does not
// render anything; it is cheap enough to call once per reader, though a
// planner with millions of readers does better to call it once per distinct
// [audience.Prefs.Key].
func Select(issue *compose.Issue, p audience.Prefs) (Selection, error) {
	return selectItems(issue, func(r audience.Region, ts []audience.Topic) bool { return p.Wants(r, ts) })
}

// SelectAll returns a selection of every item of issue: the full variant,
// as shown in the web archive and in previews. It returns
// [ErrNothingToSend] for an issue without items.
func SelectAll(issue *compose.Issue) (Selection, error) {
	return selectItems(issue, func(audience.Region, []audience.Topic) bool { return true })
}

func selectItems(issue *compose.Issue, want func(audience.Region, []audience.Topic) bool) (Selection, error) {
	if issue == nil {
		return Selection{}, fmt.Errorf("templates: select: nil issue")
	}
	total := countItems(issue)
	s := Selection{total: total, bits: make([]uint64, (total+63)/64)}
	i := 0
	var one [1]audience.Topic
	for si := range issue.Sections {
		sec := &issue.Sections[si]
		if isMarked(sec) {
			one[0] = sec.Kind
			in := want(sec.Region, one[:])
			s.marked = append(s.marked, in)
			if in {
				s.nMarked++
			}
			continue
		}
		for ii := range sec.Items {
			it := &sec.Items[ii]
			r, ts := itemAudience(sec, it, &one)
			if want(r, ts) {
				s.bits[i/64] |= 1 << (i % 64)
				s.n++
			}
			i++
		}
	}
	if s.n == 0 && s.nMarked == 0 {
		return Selection{}, ErrNothingToSend
	}
	s.key = selectionKey(s)
	return s, nil
}

// isMarked reports whether sec is a section the editor marked as having
// nothing this month.
func isMarked(sec *compose.Section) bool { return len(sec.Items) == 0 && sec.Nothing != "" }

func countMarked(issue *compose.Issue) int {
	n := 0
	for si := range issue.Sections {
		if isMarked(&issue.Sections[si]) {
			n++
		}
	}
	return n
}

// markedIndex maps the marked sections of issue to their place among
// them (-1 for every other section).
func markedIndex(issue *compose.Issue) []int {
	out := make([]int, len(issue.Sections))
	j := 0
	for si := range issue.Sections {
		out[si] = -1
		if isMarked(&issue.Sections[si]) {
			out[si] = j
			j++
		}
	}
	return out
}

// itemAudience returns the region and topics an item is filed under,
// falling back to its section's.
func itemAudience(sec *compose.Section, it *compose.Item, buf *[1]audience.Topic) (audience.Region, []audience.Topic) {
	r := it.Region
	if r == "" {
		r = sec.Region
	}
	ts := it.Topics
	if len(ts) == 0 && sec.Kind != "" {
		buf[0] = sec.Kind
		ts = buf[:]
	}
	return r, ts
}

func countItems(issue *compose.Issue) int {
	n := 0
	for _, s := range issue.Sections {
		n += len(s.Items)
	}
	return n
}

// selectionKey is itemsKey, followed, when the issue has sections marked
// as having nothing this month and the reader has not all of them, by "+"
// and their bitmap. A selection of marked sections alone is
// NothingKeyPrefix and their bitmap.
func selectionKey(s Selection) string {
	if s.n > 0 && s.nMarked == len(s.marked) {
		return itemsKey(s)
	}
	var b strings.Builder
	if s.n == 0 {
		b.WriteString(NothingKeyPrefix)
	} else {
		b.WriteString(itemsHex(s))
		b.WriteByte('+')
	}
	const hex = "0123456789abcdef"
	for i := 0; i < len(s.marked); i += 4 {
		var d byte
		for j := range 4 {
			d <<= 1
			if i+j < len(s.marked) && s.marked[i+j] {
				d |= 1
			}
		}
		b.WriteByte(hex[d])
	}
	return b.String()
}

func itemsKey(s Selection) string {
	if s.n == s.total {
		return "all"
	}
	return itemsHex(s)
}

func itemsHex(s Selection) string {
	var b strings.Builder
	b.Grow(8 + (s.total+3)/4)
	b.WriteString(strconv.Itoa(s.total))
	b.WriteByte(':')
	const hex = "0123456789abcdef"
	// One hex digit per four items, first item in the high bit of the
	// first digit, so the key reads left to right in issue order.
	for i := 0; i < s.total; i += 4 {
		var d byte
		for j := range 4 {
			d <<= 1
			if i+j < s.total && s.bits[(i+j)/64]&(1<<((i+j)%64)) != 0 {
				d |= 1
			}
		}
		b.WriteByte(hex[d])
	}
	return b.String()
}
