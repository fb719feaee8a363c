// Package feedback closes Tayori's loop with the mailbox providers: it
// reads the bounce and complaint reports that come back, ties each to the
// copy it is about, acts on the reader, and keeps the figures of the send
// gate (deliverability checklist items 34–37).
//
// # Reports
//
// Parse reads one report, at most MaxReportSize bytes: a delivery status
// notification (RFC 3464, multipart/report; report-type=delivery-status)
// with its per-recipient Final-Recipient, Action, Status, Diagnostic-Code
// and Remote-MTA, or a complaint (RFC 5965 ARF, report-type=
// feedback-report) with its Feedback-Type, Original-Mail-From, Arrival-Date,
// Reported-Domain and Original-Rcpt-To (often redacted). From the returned
// message (message/rfc822 or text/rfc822-headers) it keeps the Message-ID,
// Feedback-ID, List-Id and CFBL-Feedback-ID, and from the report itself
// the addresses it was delivered to. Plain-text bounces (qmail's "failure
// notice", Exim's default notices, code-only notices) are read by their
// wording, conservatively, and marked PlainText. Bad input is an error,
// never a panic.
//
// Classify turns a recipient's Action, Status and Diagnostic-Code into a
// Class: Hard (5.1.x), Soft (4.x.x after the MTA gave up, 5.2.x mailbox
// full, other 5.x.x), Policy (5.7.x and other sender faults; 5.7.20–27 and
// 5.7.515 are authentication refusals), Delayed or Delivered.
// ClassifyFeedback makes abuse and fraud complaints a Complaint.
//
// # Correlation
//
// A Tagger writes, into every copy, a token naming the send and the
// reader: in the envelope sender (ReturnPath: b+TOKEN@bounce.<domain>,
// checklist 37) and in the Message-ID (MessageID: TOKEN.RANDOM@domain).
// The token is AES-encrypted and authenticated with a key derived from
// the keyring (token.Keyring.Derive(KeyLabel)), so it reveals nothing and
// cannot be forged (2^-64); its first character names the key, so old
// keys still read it after a rotation. RefFromAddress, RefFromMessageID
// and Parse read it back.
//
//	tg, _ := feedback.NewTagger(ring, feedback.TaggerConfig{Domain: "news.example.go.jp"})
//	ref := feedback.Ref{SendID: snd.ID, SubscriberID: r.ID}
//	envelopeFrom := tg.ReturnPath(ref) // b+…@bounce.news.example.go.jp
//	messageID := tg.MessageID(ref)     // …@news.example.go.jp, no brackets
//
// # Intake
//
// An Intake applies a parsed report to the subscriber store. It matches
// the report to a copy by the token of the address it was sent to, of the
// original's envelope sender or Return-Path, of its Message-ID or of its
// CFBL-Feedback-ID: a redacted recipient does not matter. Then:
//
//   - Hard: the reader is marked bounced and suppressed;
//   - Soft: recorded; when the reader's last three copies that reached
//     the relay all soft-bounced (by report, or by temporary refusals
//     until retries ran out), the reader is marked bounced and
//     suppressed. Only failures produce reports, so a copy sent without
//     a soft report counts as delivered and breaks the streak;
//   - Policy: recorded and logged at warn level; the reader is left
//     alone (it is the sender's fault), and an authentication refusal
//     closes the send gate;
//   - Complaint: the reader leaves every list and is suppressed.
//
// Reports with no valid token change nobody unless
// IntakeConfig.MatchByAddress is set, since anyone can mail a forged
// bounce to the bounce address. Every result is recorded as a
// subscribers.FeedbackEvent, keyed by the report's Message-ID, so
// ingesting a report twice changes nothing.
//
// # The send gate
//
// Decide is the gate of checklist 36, a pure function of a trailing
// window's figures (Gate reads them: complaints and authentication
// refusals from the events, copies sent and relay refusals from the
// queue): any authentication refusal, or a complaint rate at or above
// 0.3%, blocks an editor's send; 0.1% warns. Only reports matched to a
// copy count: one that matched none could be forged by anyone who can mail
// the bounce address, so it is shown (Figures.Unmatched) but decides
// nothing.
//
// Package feedback imports subscribers for its store's types; it does not
// import queue, whose small adapters live in cmd/tayori.
package feedback
