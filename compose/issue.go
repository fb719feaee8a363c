package compose

import (
	"time"

	"github.com/tayori-news/tayori/audience"
)

// Issue is one issue of a newsletter, as an editor composed it.
type Issue struct {
	Newsletter string    `json:"newsletter"`          // newsletter name, e.g. "AI政策動向マンスリー情報"
	Slug       string    `json:"slug"`                // stable identifier of the issue, e.g. "2025-11"
	Title      string    `json:"title"`               // subject line and page title
	Preheader  string    `json:"preheader,omitempty"` // inbox preview text
	Intro      []string  `json:"intro,omitempty"`     // intro paragraphs
	Period     string    `json:"period,omitempty"`    // period the issue covers, as written
	Sections   []Section `json:"sections"`
	Closing    []string  `json:"closing,omitempty"` // closing paragraphs, after the last section

	// RegionRules are the editor's own rules for inferring the region of
	// items in an international section, tried with DefaultRegionRules.
	RegionRules []RegionRule `json:"region_rules,omitempty"`
	// Source is the name of the file the issue was read from, used in
	// problem reports; empty if unknown.
	Source string `json:"-"`
}

// Section is a group of items from one region about one kind of news.
type Section struct {
	Group   string          `json:"group,omitempty"`  // parent heading without its note, e.g. "海外主要国のAI政策動向"
	Heading string          `json:"heading"`          // heading as written, e.g. "【米国】(11月1日~11月30日)"
	Title   string          `json:"title,omitempty"`  // heading without the period, e.g. "【米国】"
	Period  string          `json:"period,omitempty"` // period as written, e.g. "11月1日~11月30日"
	Note    string          `json:"note,omitempty"`   // e.g. "※日時は現地時間"; the group's if the heading has none
	Region  audience.Region `json:"region"`
	Kind    audience.Topic  `json:"kind"` // activities, policy or reports
	Items   []Item          `json:"items"`
	// Nothing is the editor's note that the section has nothing this
	// month, as written ("該当なし", "なし", "特になし"); empty otherwise.
	// A section so marked keeps its heading and the note in the copies of
	// the readers who chose it, as the newsletter itself prints it.
	Nothing string `json:"nothing,omitempty"`
	Line    int    `json:"-"` // source line of the heading, 0 if unknown
}

// Item is one piece of news.
type Item struct {
	Dates    Dates    `json:"dates"`
	Headline string   `json:"headline"`
	Body     []string `json:"body,omitempty"`  // paragraphs
	Links    []string `json:"links,omitempty"` // URLs in source order
	// LinkLabels holds the editor's text for each link, parallel to
	// Links ("" where the link has none: readers then see where it goes,
	// "www.soumu.go.jp のページ"); nil when no link has one.
	LinkLabels []string         `json:"link_labels,omitempty"`
	Region     audience.Region  `json:"region"` // the section's unless the item says otherwise
	Topics     []audience.Topic `json:"topics"` // the section's kind first, then editor tags
	Line       int              `json:"-"`      // source line of the item, 0 if unknown
	// LinkLines holds the source line of each link, parallel to Links;
	// nil when unknown.
	LinkLines []int `json:"-"`
}

// Dates are an item's dates as written ("2025/11/04、21") and as parsed:
// Days lists single days, or From and To give a range.
type Dates struct {
	Text string      `json:"text"`
	Days []time.Time `json:"days,omitempty"` // dates at midnight UTC
	From time.Time   `json:"from,omitzero"`
	To   time.Time   `json:"to,omitzero"`
}
