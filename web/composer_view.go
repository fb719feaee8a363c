package web

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

// composerView is the composer page's data: the form's fields with their
// names, values and problems.
type composerView struct {
	Slug     string
	Title    string
	Base     int
	State    IssueState
	Locked   bool
	Head     *Revision
	Notice   string
	Error    string
	Comments bool
	Upload   []fieldProblem
	Valid    bool
	Problems []fieldProblem
	Errors   int
	Warnings int
	Sections []secView
	Regions  []choice // preview checkboxes
	Topics   []choice
	byField  map[string][]fieldProblem
	focus    string
	lang     string
	vals     url.Values
}

type secView struct {
	V        *composerView
	N, Index int
	Prefix   string
	ID       string
	Items    []itemView
}

type itemView struct {
	V        *composerView
	N, Index int
	Prefix   string
	Target   string // "s1.i2", for the buttons of the form without script
	ID       string
	Links    []linkRow
}

type linkRow struct{ Prefix string }

// fieldView is one field of the form as a template draws it.
type fieldView struct {
	Name, ID, Value, Label string
	Problems               []fieldProblem
	Invalid, Focus         bool
	Options                []option
	Lang                   string
}

type option struct {
	Value, Label string
	Selected     bool
}

func newComposerView(cd *composerData) *composerView {
	d := cd.Draft
	v := &composerView{Slug: d.Slug, Title: oneLine(d.Title), Base: d.Base, State: cd.State, Locked: cd.State.Locked(),
		Head: cd.Head, Notice: cd.Notice, Error: cd.Error, Comments: cd.Comments, Upload: cd.Upload,
		Valid: cd.checked.Issue != nil, Problems: cd.checked.Problems, byField: map[string][]fieldProblem{}, lang: cd.lang,
		vals: d.values()}
	if v.Title == "" {
		v.Title = d.Slug
	}
	for _, p := range v.Problems {
		v.byField[p.Field] = append(v.byField[p.Field], p)
		if p.Severity == string(compose.SeverityError) {
			v.Errors++
			if v.focus == "" && p.Field != "" {
				v.focus = p.Field
			}
		} else {
			v.Warnings++
		}
	}
	for si, s := range d.Sections {
		v.Sections = append(v.Sections, v.section(si, len(s.Items), func(ii int) int { return len(s.Items[ii].Links) }))
	}
	all := audience.All()
	v.Regions, v.Topics = regionChoices(all), topicChoices(all)
	return v
}

func (v *composerView) section(si, items int, links func(int) int) secView {
	sv := secView{V: v, N: si + 1, Index: si, Prefix: "s" + strconv.Itoa(si) + ".", ID: "sec-" + strconv.Itoa(si)}
	for ii := range items {
		sv.Items = append(sv.Items, v.item(si, ii, links(ii)))
	}
	return sv
}

func (v *composerView) item(si, ii, links int) itemView {
	t := "s" + strconv.Itoa(si) + ".i" + strconv.Itoa(ii)
	iv := itemView{V: v, N: ii + 1, Index: ii, Prefix: t + ".", Target: t, ID: "item-" + strconv.Itoa(si) + "-" + strconv.Itoa(ii)}
	// One empty row more than the links: without script, the way to add
	// a link.
	for li := range links + 1 {
		iv.Links = append(iv.Links, linkRow{Prefix: iv.Prefix + "l" + strconv.Itoa(li) + "."})
	}
	return iv
}

// NewSection is an empty section for the script to copy (its names are
// renumbered when it is added).
func (v *composerView) NewSection() secView { return v.section(999, 1, func(int) int { return 0 }) }

// NewItem is an empty item for the script to copy.
func (v *composerView) NewItem() itemView { return v.item(999, 999, 0) }

// T translates key into the page's language.
func (v *composerView) T(key string) string { return translate(v.lang, key) }

// Language is the console's language, "ja" or "en".
func (v *composerView) Language() string { return v.lang }

// P lists the problems of a field.
func (v *composerView) P(name string) []fieldProblem { return v.byField[name] }

// fieldID is the element id of a field name: "s0.i1.headline" → "f-s0-i1-headline".
func fieldID(name string) string { return "f-" + strings.ReplaceAll(name, ".", "-") }

// F describes a text field with its label (an i18n key).
func (v *composerView) F(name, label string) fieldView {
	f := fieldView{Name: name, ID: fieldID(name), Value: v.vals.Get(name), Label: translate(v.lang, label), Problems: v.byField[name],
		Focus: name == v.focus, Lang: v.lang}
	for _, p := range f.Problems {
		f.Invalid = f.Invalid || p.Severity == string(compose.SeverityError)
	}
	return f
}

// S describes a select: which is "region", "kind" or "item-region".
func (v *composerView) S(name, label, which string) fieldView {
	f := v.F(name, label)
	value := f.Value
	add := func(val, lab string) {
		f.Options = append(f.Options, option{Value: val, Label: lab, Selected: val == value})
	}
	switch which {
	case "kind":
		for _, t := range audience.StandardTopics {
			add(string(t), translate(v.lang, "topic."+string(t)))
		}
	case "item-region":
		add("", translate(v.lang, "c.region_auto"))
		fallthrough
	default:
		for _, r := range audience.Regions {
			add(string(r), translate(v.lang, "region."+string(r)))
		}
	}
	known := false
	for _, o := range f.Options {
		known = known || o.Selected
	}
	if !known && value != "" { // a value the form does not offer: keep it, the lint names it
		f.Options = append(f.Options, option{Value: value, Label: value, Selected: true})
	}
	return f
}
