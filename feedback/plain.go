package feedback

import (
	"bytes"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Plain-text bounces
//
// Most MTAs return RFC 3464 reports, but some still write a bounce as a
// person would read it: qmail's "failure notice", Exim's "Mail delivery
// failed: returning message to sender" (its default), and the code-only
// notices of some providers. parsePlain reads those, conservatively: the
// message must come from a mailer daemon or carry a bounce's subject (an
// out-of-office answer, which also goes to the return path, does
// neither), and its text must hold an SMTP reply code or say the message
// is delayed. Such a report is marked PlainText; it is matched to a copy
// like any other, by the token of the address it was sent to or of the
// returned message's headers.

var (
	daemonFromRe    = regexp.MustCompile(`(?i)^(mailer-daemon|mail-daemon|postmaster|mdaemon|mailerdaemon)@`)
	bounceSubjectRe = regexp.MustCompile(`(?i)undeliver|failure notice|returned mail|returning message|delivery (status notification|failure|failed|has failed|problem|notification|delayed)|mail delivery (failed|failure|system)|non-?delivery|could not be delivered|not delivered|delayed mail|warning: message`)
	// originalMarkerRe finds the line after which the returned message
	// (or its headers) follows.
	originalMarkerRe = regexp.MustCompile(`(?im)^[ \t]*-{2,}[^\n]*(copy of the message|original message|below this line|undelivered message|returned message|message headers)[^\n]*$`)
	// addrLineRe is a line holding only an address: qmail's "<a@b>:",
	// Exim's indented "  a@b".
	addrLineRe = regexp.MustCompile(`(?m)^(?:<([^<>\s@]+@[^<>\s@]+)>:|[ \t]{1,8}<?([^<>\s@:;,]+@[^<>\s@:;,]+\.[^<>\s@:;,]+?)>?:?)[ \t]*\r?$`)
	// replyCodeRe finds an SMTP reply in a line: a basic code at the start
	// or after a colon or "said", followed by a space, dash or colon.
	replyCodeRe = regexp.MustCompile(`(?i)(?:^|said:?|error:|:)\s*([45]\d\d)[\s:-]`)
	delayedRe   = regexp.MustCompile(`(?i)not yet been delivered|has been delayed|is delayed|delivery delayed|will (continue|keep) (to )?(try|retry)|still (be )?trying|will be retried|no action is required`)
	permanentRe = regexp.MustCompile(`(?i)permanent (error|failure)|given up|gave up|could ?n[o']t be delivered|unable to deliver|was not delivered|failed permanently|undeliverable|address(es)? failed|delivery (has )?failed`)
)

// unknownRecipient is a recipient whose address the text does not give.
const unknownRecipient = ""

// parsePlain fills the report from a plain-text bounce (text is the first
// text/plain body, decoded) and reports whether it was one.
// With the returned message inline after a marker line, its headers are
// read for correlation when no message/rfc822 part gave them.
func (p *parser) parsePlain(text []byte) bool {
	if text == nil {
		return false
	}
	if !daemonFromRe.MatchString(p.rep.From) && !bounceSubjectRe.MatchString(p.rep.Subject) {
		return false
	}
	if !utf8.Valid(text) {
		text = bytes.ToValidUTF8(text, []byte("\uFFFD"))
	}
	region := text
	if loc := originalMarkerRe.FindIndex(text); loc != nil {
		region = text[:loc[0]]
		if !p.haveOriginal {
			p.haveOriginal = true
			p.parseOriginal(bytes.TrimLeft(text[loc[1]:], "\r\n"))
		}
	}
	s := string(region)
	delayed := delayedRe.MatchString(s) && !permanentRe.MatchString(s)

	// Each address line starts a block; a block's reply is the first line
	// in it with a code (qmail and Exim put it under the address). Text
	// before the first address, or a bounce naming no address, is one
	// block for an unknown recipient.
	type block struct{ addr, text string }
	var blocks []block
	locs := addrLineRe.FindAllStringSubmatchIndex(s, maxRecipients)
	if len(locs) == 0 {
		blocks = append(blocks, block{unknownRecipient, s})
	}
	for i, m := range locs {
		end := len(s)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		addr := ""
		for g := 1; g <= 2; g++ {
			if m[2*g] >= 0 {
				addr = s[m[2*g]:m[2*g+1]]
			}
		}
		blocks = append(blocks, block{addr, s[m[1]:end]})
	}
	// A code stated before the first address applies to blocks with none.
	fallback, _ := replyLine(s)
	var recips []Recipient
	for _, b := range blocks {
		diag, found := replyLine(b.text)
		if !found {
			diag = fallback
		}
		if diag == "" && !delayed {
			continue
		}
		action := "failed"
		if delayed {
			action = "delayed"
		}
		r := Recipient{FinalRecipient: b.addr, Action: action, DiagnosticCode: diag}
		r.Status = effectiveStatus("", diag)
		r.Class, r.Auth = Classify(r.Action, r.Status, r.DiagnosticCode)
		recips = append(recips, r)
	}
	if len(recips) == 0 {
		return false
	}
	p.rep.Recipients = recips
	p.rep.PlainText = true
	return true
}

// replyLine returns the SMTP reply in text: from the first line holding
// an enhanced status code (RFC 3463) with class 4 or 5, or else a basic
// reply code, starting at the code, with the following indented lines
// (a wrapped reply) joined.
func replyLine(text string) (string, bool) {
	lines := strings.Split(text, "\n")
	pick := func(i, at int) string {
		out := strings.TrimSpace(lines[i][at:])
		for _, next := range lines[i+1:] {
			if next == "" || next == "\r" || (next[0] != ' ' && next[0] != '\t') || addrLineRe.MatchString(next) {
				break
			}
			out += " " + strings.TrimSpace(next)
		}
		// One line of printable text: no control bytes (an ISO-2022-JP
		// notice keeps its ASCII; its escapes go).
		out = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, out)
		return strings.Join(strings.Fields(out), " ")
	}
	for i, l := range lines {
		if m := replyCodeRe.FindStringSubmatchIndex(l); m != nil {
			return pick(i, m[2]), true
		}
	}
	for i, l := range lines {
		if m := enhancedRe.FindStringSubmatchIndex(l); m != nil && l[m[2]] != '2' {
			return pick(i, m[0]), true
		}
	}
	return "", false
}
