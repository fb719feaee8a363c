package feedback

import (
	"regexp"
	"strconv"
	"strings"
)

// Class is what a report means for the reader it concerns.
type Class string

// The classes. Only Hard, Soft (three times in a row) and Complaint act on
// the reader; Policy acts on the sender.
const (
	// Hard: the address does not work (5.1.x: no such mailbox, bad
	// address, null MX). The reader is marked bounced and suppressed.
	Hard Class = "hard"
	// Soft: a failure that may pass (4.x.x after the MTA gave up, mailbox
	// full 5.2.x, routing 5.4.x, other 5.x.x). Recorded; three soft
	// bounces on the reader's last three sends suppress the address.
	Soft Class = "soft"
	// Policy: the sender's fault (5.7.x policy and authentication, 5.1.7
	// and 5.1.8 about our own address, 5.2.3, 5.3.4 and 5.6.x about our
	// message). The reader is left alone; the operator is alerted, and an
	// authentication refusal closes the send gate.
	Policy Class = "policy"
	// Complaint: the reader reported the message as spam (ARF abuse or
	// fraud). The reader leaves every list and is suppressed.
	Complaint Class = "complaint"
	// Delayed: the MTA is still retrying (Action: delayed). Recorded only.
	Delayed Class = "delayed"
	// Delivered: a success notice (delivered, relayed, expanded). Recorded
	// only.
	Delivered Class = "delivered"
	// Unknown: a report Tayori cannot interpret (ARF not-spam, unknown
	// feedback types). Recorded only.
	Unknown Class = "unknown"
)

// Classes lists every class.
var Classes = []Class{Hard, Soft, Policy, Complaint, Delayed, Delivered, Unknown}

var (
	enhancedRe = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)
	basicRe    = regexp.MustCompile(`^\s*(?:[A-Za-z0-9-]+;\s*)?([245]\d\d)[\s:-]`)
)

// code is a parsed enhanced status code.
type code struct{ class, subject, detail int }

func parseCode(s string) (code, bool) {
	m := enhancedRe.FindStringSubmatch(s)
	if m == nil {
		return code{}, false
	}
	c, _ := strconv.Atoi(m[1])
	sub, _ := strconv.Atoi(m[2])
	det, _ := strconv.Atoi(m[3])
	return code{c, sub, det}, true
}

func (c code) String() string {
	return strconv.Itoa(c.class) + "." + strconv.Itoa(c.subject) + "." + strconv.Itoa(c.detail)
}

// effectiveStatus returns the enhanced code of a DSN's Status field, or
// the Diagnostic-Code's when Status is missing or generic (x.0.0) and the
// diagnostic has a more precise one of the same class.
func effectiveStatus(status, diagnostic string) string {
	st, ok := parseCode(status)
	dc, dok := parseCode(diagnostic)
	switch {
	case ok && (st.subject != 0 || st.detail != 0):
		return st.String()
	case ok && dok && dc.class == st.class:
		return dc.String()
	case ok:
		return st.String()
	case dok:
		return dc.String()
	}
	return ""
}

// authDetails are the x.7.y details that mean the receiver refused our
// mail for authentication: RFC 7372's 20–27 (no valid DKIM, SPF failed,
// reverse DNS, several checks failed: Gmail's 5.7.26 "unauthenticated";
// Gmail also uses 5.7.27 for SPF) and Microsoft's 5.7.515 ("does not meet
// the required authentication level").
func isAuthDetail(d int) bool { return d >= 20 && d <= 27 || d == 515 }

// unknownUser are phrases of code-less replies that say the mailbox does
// not exist (Yahoo's "552 1 Requested mail action aborted, mailbox not
// found", "554 delivery error: dd This user doesn't have a … account").
var unknownUser = []string{
	"user unknown", "unknown user", "no such user", "no such recipient", "unknown recipient",
	"recipient not found", "mailbox not found", "does not exist", "doesn't have a", "invalid recipient",
	"not a valid recipient",
}

// policyWords are phrases of code-less replies that blame the message or
// the sender, not the address.
var policyWords = []string{
	"spam", "policy", "blocked", "block list", "blocklist", "blacklist", "reputation",
	"authentication", "dmarc", "spf", "dkim", "rate limit",
}

// Classify says what one DSN result means for its reader, from its
// Action, Status and Diagnostic-Code (either code may be missing), and
// whether it is an authentication refusal. The rules, in order:
//
//   - delivered, relayed, expanded → Delivered; delayed → Delayed;
//   - x.7.x → Policy (auth for 5.7.20–27 and 5.7.515);
//   - 4.x.x (the MTA gave up retrying) → Soft;
//   - 5.1.7, 5.1.8 (our own address) → Policy; other 5.1.x → Hard;
//   - 5.2.3, 5.3.4, 5.6.x (our message) → Policy; other 5.2.x (mailbox
//     full, disabled), 5.3.x, 5.4.x, 5.5.x → Soft;
//   - no precise code (x.0.0 or none): a reply that blames spam or policy
//     → Policy; 550, 551 or 553, or an "unknown user" phrase → Hard (the
//     notes' "550 with no enhanced code"); anything else → Soft.
func Classify(action, status, diagnostic string) (Class, bool) {
	switch strings.ToLower(strings.TrimSpace(action)) {
	case "delivered", "relayed", "expanded":
		return Delivered, false
	case "delayed":
		return Delayed, false
	}
	c, ok := parseCode(status)
	if !ok {
		c, ok = parseCode(diagnostic)
	}
	basic := 0
	if m := basicRe.FindStringSubmatch(diagnostic); m != nil {
		basic, _ = strconv.Atoi(m[1])
	}
	if !ok {
		if basic == 0 {
			return Soft, false // failed, and nothing says why
		}
		c = code{class: basic / 100}
	}
	if c.class == 2 {
		return Delivered, false
	}
	if c.subject == 7 {
		return Policy, c.class == 5 && isAuthDetail(c.detail)
	}
	if c.class == 4 {
		return Soft, false
	}
	switch c.subject {
	case 1:
		if c.detail == 7 || c.detail == 8 {
			return Policy, false
		}
		if c.detail != 0 {
			return Hard, false
		}
	case 2:
		if c.detail == 3 {
			return Policy, false
		}
		return Soft, false
	case 3:
		if c.detail == 4 {
			return Policy, false
		}
		return Soft, false
	case 4, 5:
		return Soft, false
	case 6:
		return Policy, false
	}
	// x.0.0, 5.1.0, or no enhanced code at all: read the reply.
	text := strings.ToLower(diagnostic)
	for _, w := range policyWords {
		if strings.Contains(text, w) {
			return Policy, false
		}
	}
	if basic == 550 || basic == 551 || basic == 553 || c.subject == 1 {
		return Hard, false
	}
	for _, w := range unknownUser {
		if strings.Contains(text, w) {
			return Hard, false
		}
	}
	return Soft, false
}

// ClassifyFeedback says what an ARF Feedback-Type means: abuse, fraud
// and other are complaints; virus and auth-failure (a DMARC failure
// report, often about mail we did not send) are Policy, alerting the
// operator without closing the gate; not-spam and unknown types are
// Unknown.
func ClassifyFeedback(feedbackType string) Class {
	switch strings.ToLower(strings.TrimSpace(feedbackType)) {
	case "abuse", "fraud", "other":
		return Complaint
	case "virus", "auth-failure":
		return Policy
	}
	return Unknown
}
