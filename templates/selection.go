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
}

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
// nothing is selected, Select returns [ErrNothingToSend]. Select does not
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
	if s.n == 0 {
		return Selection{}, ErrNothingToSend
	}
	s.key = selectionKey(s)
	return s, nil
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

func selectionKey(s Selection) string {
	if s.n == s.total {
		return "all"
	}
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
