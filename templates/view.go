package templates

import (
	"net/url"
	"path"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// view is what the theme and the text writer render: one variant of an
// issue, already filtered, with the sender's details. Every string in it
// comes from the editor or the configuration and is escaped by
// html/template when rendered.
type view struct {
	Newsletter string
	Title      string
	Preheader  string
	Period     string
	Intro      []string
	WebURL     string
	Sections   []sectionView
	Closing    []string

	Sender        string
	PostalAddress string
	Contact       string
	ContactURL    string // Contact when it is an http(s) URL

	// Placeholders, written into the output as they are and replaced per
	// reader by [Variant]. Exposed to the template as fields so that the
	// theme names them in one place.
	Name           string
	UnsubscribeURL string
	PreferencesURL string

	items int
	// OnlyNothing is true for the short copy of a reader whose chosen
	// sections all have nothing this month.
	OnlyNothing bool
	NothingText string // onlyNothingText, for the theme
}

type sectionView struct {
	Group   string // parent heading, set on the first section of a group only
	Title   string
	Region  string // Japanese label of the region
	Period  string
	Note    string
	Items   []itemView
	Heading string // full heading as written, used when Title is empty
	// Nothing is the editor's "nothing this month" note of a section
	// without items ("該当なし").
	Nothing string
}

type itemView struct {
	Date     string
	Headline string
	Body     []string
	Links    []linkView
}

type linkView struct {
	URL   string
	Href  string // where the anchor goes: URL, or its counting redirect (Links)
	Label string // descriptive link text: the editor's, or "www.soumu.go.jp のページ"; empty if URL is not http(s)
	Own   bool   // Label is the editor's
	// Counted: Href is the counting redirect (Links), which the text
	// part shows with the label, so readers still see where it goes.
	Counted bool
}

// regionLabels names the regions in Japanese.
var regionLabels = map[audience.Region]string{
	audience.JP:   "日本",
	audience.US:   "米国",
	audience.EU:   "欧州",
	audience.Asia: "アジア",
	audience.Intl: "国際",
}

func regionLabel(r audience.Region) string {
	if l, ok := regionLabels[r]; ok {
		return l
	}
	return string(r)
}

// buildView filters issue by sel and prepares it for rendering.
func buildView(issue *compose.Issue, sel Selection, cfg *Config, links *Links) view {
	v := view{
		Newsletter:     issue.Newsletter,
		Title:          issue.Title,
		Preheader:      issue.Preheader,
		Period:         issue.Period,
		Intro:          issue.Intro,
		Closing:        issue.Closing,
		Sender:         cfg.SenderName,
		PostalAddress:  cfg.PostalAddress,
		Contact:        cfg.Contact,
		Name:           placeholders[fieldName],
		UnsubscribeURL: placeholders[fieldUnsubscribe],
		PreferencesURL: placeholders[fieldPreferences],
	}
	if v.Title == "" {
		v.Title = v.Newsletter
	}
	if v.Newsletter == v.Title {
		v.Newsletter = ""
	}
	if isHTTPURL(cfg.Contact) {
		v.ContactURL = cfg.Contact
	}
	if cfg.WebURL != "" {
		v.WebURL = strings.ReplaceAll(cfg.WebURL, "{slug}", url.PathEscape(issue.Slug))
	}
	idx := 0
	lastGroup := ""
	marked := markedIndex(issue)
	for si := range issue.Sections {
		sec := &issue.Sections[si]
		sv := sectionView{
			Title:   sec.Title,
			Heading: sec.Heading,
			Region:  regionLabel(sec.Region),
			Period:  sec.Period,
			Note:    sec.Note,
		}
		for ii := range sec.Items {
			if sel.Includes(idx) {
				sv.Items = append(sv.Items, newItemView(&sec.Items[ii], idx, links))
			}
			idx++
		}
		if j := marked[si]; j >= 0 && j < len(sel.marked) && sel.marked[j] {
			// Marked as having nothing this month: the heading stays,
			// with the note, as the newsletter prints it.
			sv.Nothing = sec.Nothing
		} else if len(sv.Items) == 0 {
			continue // a section left empty is dropped
		}
		if sec.Group != "" && sec.Group != lastGroup {
			sv.Group = sec.Group
		}
		lastGroup = sec.Group
		if sv.Title == "" {
			sv.Title = sv.Heading
			sv.Period = "" // the heading as written already carries it
		}
		v.items += len(sv.Items)
		v.Sections = append(v.Sections, sv)
	}
	// The editor's preheader describes the whole issue; a reader's partial
	// copy gets one made of its own headlines, so that the inbox preview
	// never promises news the copy leaves out.
	if v.Preheader == "" || sel.n != sel.total {
		v.Preheader = defaultPreheader(&v)
	}
	if sel.OnlyNothing() {
		v.OnlyNothing = true
		v.Preheader, v.NothingText = onlyNothingText, onlyNothingText
	}
	return v
}

// onlyNothingText opens the short copy of a reader whose chosen sections
// all have nothing this month.
const onlyNothingText = "今月は、お選びいただいた地域・分野に該当する項目はありませんでした。"

// newItemView prepares item number idx of the issue (counting through
// the sections), its links rewritten by links if not nil.
func newItemView(it *compose.Item, idx int, links *Links) itemView {
	iv := itemView{Date: it.Dates.Text, Headline: it.Headline, Body: it.Body}
	for i, l := range it.Links {
		if strings.TrimSpace(l) == "" {
			continue
		}
		lv := linkView{URL: l, Href: l}
		// Only web links become anchors; anything else (lint reports it)
		// is shown as text rather than as a link html/template would
		// neuter to "#ZgotmplZ".
		if isHTTPURL(l) {
			lv.Label = linkLabel(l)
			if i < len(it.LinkLabels) && strings.TrimSpace(it.LinkLabels[i]) != "" {
				lv.Label = strings.TrimSpace(it.LinkLabels[i])
				lv.Own = true
			}
			if links != nil && links.URL != nil {
				if u := links.URL(idx, i); isHTTPURL(u) {
					lv.Href, lv.Counted = u, true
				}
			}
		}
		iv.Links = append(iv.Links, lv)
	}
	return iv
}

// linkLabel describes where a link goes, in Japanese, from its host and
// the kind of document: "www.soumu.go.jp のページ", "www.whitehouse.gov のPDF".
func linkLabel(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "関連リンク"
	}
	kind := "のページ"
	switch strings.ToLower(path.Ext(u.Path)) {
	case ".pdf":
		kind = "のPDF資料"
	case ".xlsx", ".xls", ".csv":
		kind = "の表計算資料"
	case ".docx", ".doc":
		kind = "の文書資料"
	}
	switch h := strings.TrimPrefix(u.Hostname(), "www."); h {
	case "youtube.com", "youtu.be":
		return "YouTubeの動画"
	case "linkedin.com":
		return "LinkedInの投稿"
	}
	return u.Hostname() + " " + kind
}

// defaultPreheader summarises a variant from the headlines of its items,
// in order, cut at about 100 characters (what inbox previews show).
func defaultPreheader(v *view) string {
	const limit = 100
	var out []rune
	for _, s := range v.Sections {
		for _, it := range s.Items {
			if len(out) > 0 {
				out = append(out, '／')
			}
			out = append(out, []rune(it.Headline)...)
			if len(out) >= limit {
				return string(append(out[:limit-1], '…'))
			}
		}
	}
	return string(out)
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// containsPlaceholder reports whether any editor-supplied text of the issue
// contains the placeholder prefix, which would let it impersonate a
// reader's link.
func containsPlaceholder(issue *compose.Issue) bool {
	has := func(s string) bool { return strings.Contains(s, placeholderPrefix) }
	if has(issue.Newsletter) || has(issue.Title) || has(issue.Preheader) || has(issue.Period) || has(issue.Slug) {
		return true
	}
	for _, s := range issue.Intro {
		if has(s) {
			return true
		}
	}
	for _, s := range issue.Closing {
		if has(s) {
			return true
		}
	}
	for _, sec := range issue.Sections {
		if has(sec.Group) || has(sec.Heading) || has(sec.Title) || has(sec.Period) || has(sec.Note) {
			return true
		}
		for _, it := range sec.Items {
			if has(it.Dates.Text) || has(it.Headline) {
				return true
			}
			for _, s := range it.Body {
				if has(s) {
					return true
				}
			}
			for _, s := range it.Links {
				if has(s) {
					return true
				}
			}
			for _, s := range it.LinkLabels {
				if has(s) {
					return true
				}
			}
		}
	}
	return false
}
