package templates

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/tayori-news/tayori/compose"
)

// fingerprint hashes every field of issue that rendering reads, so that the
// cache never serves a variant of an earlier version of an issue edited
// under the same slug. Each string is written with its length, so that
// different field boundaries give different input. It costs a few
// microseconds for an issue the size of the samples.
func fingerprint(seed maphash.Seed, issue *compose.Issue) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var n [8]byte
	num := func(v int) {
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	str := func(s string) {
		num(len(s))
		h.WriteString(s)
	}
	strs := func(ss []string) {
		num(len(ss))
		for _, s := range ss {
			str(s)
		}
	}
	str(issue.Newsletter)
	str(issue.Slug)
	str(issue.Title)
	str(issue.Preheader)
	strs(issue.Intro)
	str(issue.Period)
	num(len(issue.Sections))
	for i := range issue.Sections {
		s := &issue.Sections[i]
		str(s.Group)
		str(s.Heading)
		str(s.Title)
		str(s.Period)
		str(s.Note)
		str(string(s.Region))
		str(string(s.Kind))
		str(s.Nothing)
		num(len(s.Items))
		for j := range s.Items {
			it := &s.Items[j]
			str(it.Dates.Text)
			str(it.Headline)
			strs(it.Body)
			strs(it.Links)
			strs(it.LinkLabels)
			str(string(it.Region))
			num(len(it.Topics))
			for _, t := range it.Topics {
				str(string(t))
			}
		}
	}
	strs(issue.Closing)
	return h.Sum64()
}
