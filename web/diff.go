package web

import "strings"

// Line diffs of revisions (the revisions page) and the three-way choice
// of a merge (the conflict page).

// span is a run of lines: a[A1:A2] and b[B1:B2]. Equal spans have the
// same lines on both sides; a change replaces a's lines with b's.
type span struct {
	Equal          bool
	A1, A2, B1, B2 int
}

// maxDiffCells bounds the table of the longest common subsequence; past
// it the differing middle is one change.
const maxDiffCells = 4_000_000

// diffLines compares a and b line by line (longest common subsequence,
// after the common head and tail) and returns equal spans and changes in
// order.
func diffLines(a, b []string) []span {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []span
	add := func(sp span) {
		if sp.A1 == sp.A2 && sp.B1 == sp.B2 {
			return
		}
		if n := len(out); n > 0 && out[n-1].Equal == sp.Equal {
			out[n-1].A2, out[n-1].B2 = sp.A2, sp.B2
			return
		}
		out = append(out, sp)
	}
	add(span{Equal: true, A1: 0, A2: pre, B1: 0, B2: pre})
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(ma)*len(mb) > maxDiffCells {
		add(span{A1: pre, A2: pre + len(ma), B1: pre, B2: pre + len(mb)})
	} else {
		// lcs[i][j]: length of the LCS of ma[i:] and mb[j:].
		w := len(mb) + 1
		lcs := make([]int32, (len(ma)+1)*w)
		for i := len(ma) - 1; i >= 0; i-- {
			for j := len(mb) - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(ma) || j < len(mb) {
			switch {
			case i < len(ma) && j < len(mb) && ma[i] == mb[j]:
				add(span{Equal: true, A1: pre + i, A2: pre + i + 1, B1: pre + j, B2: pre + j + 1})
				i, j = i+1, j+1
			case j < len(mb) && (i == len(ma) || lcs[i*w+j+1] >= lcs[(i+1)*w+j]):
				add(span{A1: pre + i, A2: pre + i, B1: pre + j, B2: pre + j + 1})
				j++
			default:
				add(span{A1: pre + i, A2: pre + i + 1, B1: pre + j, B2: pre + j})
				i++
			}
		}
	}
	add(span{Equal: true, A1: len(a) - suf, A2: len(a), B1: len(b) - suf, B2: len(b)})
	return out
}

// splitLines splits a source into lines without their ends.
func splitLines(src []byte) []string {
	s := strings.ReplaceAll(string(src), "\r\n", "\n")
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// diffRow is one line of a shown diff.
type diffRow struct {
	Op   string // " ", "-", "+", or "…" for unchanged lines left out
	A, B int    // line numbers (1-based), 0 where the side has none
	Text string
}

// diffRows shows the changes from a to b with context lines around them.
func diffRows(a, b []string, context int) []diffRow {
	var out []diffRow
	spans := diffLines(a, b)
	for k, sp := range spans {
		if !sp.Equal {
			for i := sp.A1; i < sp.A2; i++ {
				out = append(out, diffRow{Op: "-", A: i + 1, Text: a[i]})
			}
			for j := sp.B1; j < sp.B2; j++ {
				out = append(out, diffRow{Op: "+", B: j + 1, Text: b[j]})
			}
			continue
		}
		n := sp.A2 - sp.A1
		head, tail := context, context
		if k == 0 {
			head = 0
		}
		if k == len(spans)-1 {
			tail = 0
		}
		if n <= head+tail+1 {
			for i := range n {
				out = append(out, diffRow{Op: " ", A: sp.A1 + i + 1, B: sp.B1 + i + 1, Text: a[sp.A1+i]})
			}
			continue
		}
		for i := range head {
			out = append(out, diffRow{Op: " ", A: sp.A1 + i + 1, B: sp.B1 + i + 1, Text: a[sp.A1+i]})
		}
		out = append(out, diffRow{Op: "…"})
		for i := n - tail; i < n; i++ {
			out = append(out, diffRow{Op: " ", A: sp.A1 + i + 1, B: sp.B1 + i + 1, Text: a[sp.A1+i]})
		}
	}
	return out
}

// hunk is one place where two editors' versions differ, with who changed
// it since the revision both started from.
type hunk struct {
	Theirs, Mine []string
	ByThem, ByMe bool
}

// Both reports whether both editors changed the place: the editor must
// choose.
func (h hunk) Both() bool { return h.ByThem && h.ByMe }

// TakeMine is the default choice: mine unless only they changed the place.
func (h hunk) TakeMine() bool { return !(h.ByThem && !h.ByMe) }

// mergePlan lines up theirs and mine (both edited from base): the lines
// they share, and the hunks where they differ.
type mergePlan struct {
	spans  []span
	theirs []string
	mine   []string
	Hunks  []hunk
}

func planMerge(base, theirs, mine []string) *mergePlan {
	// Which lines each side kept from base: a line that is not in its
	// side's common subsequence with base was written by that editor.
	kept := func(side []string) []bool {
		out := make([]bool, len(side))
		for _, sp := range diffLines(base, side) {
			if sp.Equal {
				for j := sp.B1; j < sp.B2; j++ {
					out[j] = true
				}
			}
		}
		return out
	}
	keptT, keptM := kept(theirs), kept(mine)
	mp := &mergePlan{spans: diffLines(theirs, mine), theirs: theirs, mine: mine}
	for _, sp := range mp.spans {
		if sp.Equal {
			continue
		}
		h := hunk{Theirs: theirs[sp.A1:sp.A2], Mine: mine[sp.B1:sp.B2]}
		for i := sp.A1; i < sp.A2; i++ {
			if keptT[i] {
				h.ByMe = true // in base and theirs but not mine: I removed it
			} else {
				h.ByThem = true // they wrote it
			}
		}
		for j := sp.B1; j < sp.B2; j++ {
			if keptM[j] {
				h.ByThem = true // in base and mine but not theirs: they removed it
			} else {
				h.ByMe = true
			}
		}
		mp.Hunks = append(mp.Hunks, h)
	}
	return mp
}

// merge joins the shared lines with the chosen side of each hunk
// (takeMine[i] for hunk i).
func (mp *mergePlan) merge(takeMine []bool) []byte {
	var b strings.Builder
	k := 0
	for _, sp := range mp.spans {
		lines := mp.theirs[sp.A1:sp.A2]
		if !sp.Equal {
			if k < len(takeMine) && takeMine[k] {
				lines = mp.mine[sp.B1:sp.B2]
			}
			k++
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}
