package feedback

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// MaxReportSize is the largest report Parse reads (10 MiB). Bounces and
// complaints carry at most one returned message; anything larger is
// refused with ErrTooLarge rather than held in memory.
const MaxReportSize = 10 << 20

// Limits on a report's structure, so that a hostile report cannot make
// the parser loop or allocate without bound.
const (
	maxDepth      = 8    // nested multiparts
	maxParts      = 64   // parts in all
	maxRecipients = 1000 // per-recipient groups of a DSN
)

// Errors of Parse, checked with errors.Is.
var (
	// ErrTooLarge: the input is over MaxReportSize.
	ErrTooLarge = errors.New("report too large")
	// ErrNotReport: the input is a message but holds no delivery-status
	// (RFC 3464) or feedback-report (RFC 5965) part, and is not a
	// plain-text bounce either.
	ErrNotReport = errors.New("not a delivery status or feedback report")
	// ErrMalformed: the input is not a message, or its report part cannot
	// be read.
	ErrMalformed = errors.New("malformed report")
)

// Type is the kind of a report.
type Type string

// The report types, as in multipart/report's report-type parameter.
const (
	DeliveryStatus Type = "delivery-status" // RFC 3464 DSN (and RFC 6533 global-delivery-status)
	FeedbackReport Type = "feedback-report" // RFC 5965 ARF
)

// Report is a bounce or a complaint as Parse understood it.
type Report struct {
	Type Type `json:"type"`
	// MessageID is the report's own Message-ID, without angle brackets.
	MessageID string `json:"message_id,omitempty"`
	// Key identifies the report for idempotent intake: the hex SHA-256 of
	// its Message-ID and From, or of its bytes when it has no Message-ID.
	Key string `json:"key"`
	// From is the address the report came from (MAILER-DAEMON, a feedback
	// loop), Subject its decoded subject and Date its date.
	From    string    `json:"from,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Date    time.Time `json:"date,omitzero"`
	// SentTo are the addresses the report was delivered to, from its
	// X-Original-To, Delivered-To and To fields in that order: where a
	// return path's token is read when the caller does not pass the
	// envelope recipient.
	SentTo []string `json:"sent_to,omitempty"`
	// ReportingMTA and ArrivalDate are a DSN's per-message fields.
	ReportingMTA string    `json:"reporting_mta,omitempty"`
	ArrivalDate  time.Time `json:"arrival_date,omitzero"`
	// Recipients are a DSN's per-recipient results, each classified.
	Recipients []Recipient `json:"recipients,omitempty"`
	// ARF is a feedback report's machine-readable part.
	ARF *ARF `json:"arf,omitempty"`
	// Original holds the correlation headers of the returned message
	// (message/rfc822 or text/rfc822-headers, or inline after a plain-text
	// bounce's marker line), where there was one.
	Original Original `json:"original"`
	// PlainText: the report is a plain-text bounce (qmail, Exim and the
	// like) read by its wording, not an RFC 3464 report; its Recipients
	// have an Action, a DiagnosticCode and the Status found in it.
	PlainText bool `json:"plain_text,omitempty"`
}

// Recipient is one per-recipient group of a DSN (RFC 3464 §2.3).
type Recipient struct {
	// FinalRecipient and OriginalRecipient are bare addresses (their
	// "rfc822;" type removed).
	FinalRecipient    string `json:"final_recipient,omitempty"`
	OriginalRecipient string `json:"original_recipient,omitempty"`
	// Action is failed, delayed, delivered, relayed or expanded (lower case).
	Action string `json:"action,omitempty"`
	// Status is the enhanced status code (RFC 3463), "5.1.1": the Status
	// field's, or the Diagnostic-Code's when Status is missing or generic
	// (x.0.0).
	Status string `json:"status,omitempty"`
	// DiagnosticCode is the remote server's reply, its "smtp;" type
	// removed and continuation lines joined.
	DiagnosticCode string `json:"diagnostic_code,omitempty"`
	// RemoteMTA is the server that answered, its "dns;" type removed.
	RemoteMTA       string    `json:"remote_mta,omitempty"`
	LastAttemptDate time.Time `json:"last_attempt_date,omitzero"`
	// Class is what the result means for the reader (see Classify), and
	// Auth marks an authentication refusal (5.7.26, 5.7.515, …).
	Class Class `json:"class"`
	Auth  bool  `json:"auth,omitempty"`
}

// ARF is the message/feedback-report part of a complaint (RFC 5965 §3.5).
type ARF struct {
	// FeedbackType is abuse, fraud, virus, other, not-spam or
	// auth-failure (lower case).
	FeedbackType string `json:"feedback_type"`
	UserAgent    string `json:"user_agent,omitempty"`
	Version      string `json:"version,omitempty"`
	// OriginalMailFrom is the envelope sender of the complained-of
	// message: our return path, so it usually carries the token.
	OriginalMailFrom string `json:"original_mail_from,omitempty"`
	// OriginalRcptTo lists the recipients; providers often omit or redact
	// them.
	OriginalRcptTo []string  `json:"original_rcpt_to,omitempty"`
	ArrivalDate    time.Time `json:"arrival_date,omitzero"`
	ReportedDomain []string  `json:"reported_domain,omitempty"`
	SourceIP       string    `json:"source_ip,omitempty"`
	// Class is Complaint for abuse and fraud (see ClassifyFeedback).
	Class Class `json:"class"`
}

// Original holds the headers of the returned message that tie a report
// to the copy it is about.
type Original struct {
	MessageID      string `json:"message_id,omitempty"` // without angle brackets
	FeedbackID     string `json:"feedback_id,omitempty"`
	ListID         string `json:"list_id,omitempty"`
	CFBLFeedbackID string `json:"cfbl_feedback_id,omitempty"` // RFC 9477
	ReturnPath     string `json:"return_path,omitempty"`
	From           string `json:"from,omitempty"`
	To             string `json:"to,omitempty"` // as given: often redacted
	Subject        string `json:"subject,omitempty"`
}

// Parse reads one report (a whole message, as delivered: a maildir file,
// a pipe from the MTA; an mbox "From " line is skipped). It returns
// ErrTooLarge beyond MaxReportSize, ErrNotReport for a message with no
// report part, and ErrMalformed for input that is not a message. It never
// panics on bad input.
func Parse(r io.Reader) (*Report, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if len(raw) > MaxReportSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxReportSize)
	}
	return parseBytes(raw)
}

func parseBytes(raw []byte) (*Report, error) {
	msg := raw
	if bytes.HasPrefix(msg, []byte("From ")) { // mbox separator (Postfix pipe flag F)
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
	}
	headBytes, body := splitHead(msg)
	h := parseHeader(headBytes)
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	rep := &Report{
		MessageID: strings.Trim(h.get("message-id"), "<> "),
		From:      bareAddress(h.get("from")),
		Subject:   decodeWords(h.get("subject")),
	}
	if d, err := mail.ParseDate(h.get("date")); err == nil {
		rep.Date = d.UTC()
	}
	for _, name := range []string{"x-original-to", "delivered-to", "to"} {
		for _, v := range h.all(name) {
			for _, a := range addressList(v) {
				if !containsFold(rep.SentTo, a) {
					rep.SentTo = append(rep.SentTo, a)
				}
			}
		}
	}
	if rep.MessageID != "" {
		sum := sha256.Sum256([]byte("message-id\x00" + rep.MessageID + "\x00" + strings.ToLower(rep.From)))
		rep.Key = hex.EncodeToString(sum[:])
	} else {
		sum := sha256.Sum256(raw)
		rep.Key = hex.EncodeToString(sum[:])
	}

	p := &parser{rep: rep}
	if err := p.walk(h, body, 0); err != nil {
		return nil, err
	}
	switch {
	case p.dsn:
		rep.Type = DeliveryStatus
		if len(rep.Recipients) == 0 {
			return nil, fmt.Errorf("%w: delivery-status part names no recipient", ErrMalformed)
		}
	case rep.ARF != nil:
		rep.Type = FeedbackReport
	case p.parsePlain(p.text):
		rep.Type = DeliveryStatus
	default:
		return nil, ErrNotReport
	}
	return rep, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// parser walks the MIME tree of one report.
type parser struct {
	rep          *Report
	parts        int
	dsn          bool
	haveOriginal bool
	text         []byte // the first text/plain body, for parsePlain
}

func (p *parser) walk(h header, body []byte, depth int) error {
	p.parts++
	if p.parts > maxParts {
		return nil // enough: whatever was found so far stands
	}
	mt, params, err := mime.ParseMediaType(h.get("content-type"))
	if mt == "" {
		if err != nil && h.get("content-type") != "" {
			mt = "application/octet-stream" // unreadable: skip the part
		} else {
			mt = "text/plain" // RFC 2045 default
		}
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			return nil
		}
		boundary := params["boundary"]
		if boundary == "" {
			if depth == 0 {
				return fmt.Errorf("%w: %s without a boundary", ErrMalformed, mt)
			}
			return nil
		}
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				break // the end, or damage past the parts already read
			}
			pb, err := io.ReadAll(part)
			if err != nil && len(pb) == 0 {
				break
			}
			ph := make(header, 0, len(part.Header))
			for k, vs := range part.Header {
				for _, v := range vs {
					ph = append(ph, field{name: strings.ToLower(k), value: strings.TrimSpace(v)})
				}
			}
			if err := p.walk(ph, pb, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	switch mt {
	case "text/plain":
		if p.text == nil && depth <= 1 {
			p.text = decodeBody(h, body)
		}
	case "message/delivery-status", "message/global-delivery-status":
		p.parseDSN(decodeBody(h, body))
	case "message/feedback-report":
		if p.rep.ARF == nil {
			p.parseARF(decodeBody(h, body))
		}
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers":
		if !p.haveOriginal {
			p.haveOriginal = true
			p.parseOriginal(decodeBody(h, body))
		}
	}
	return nil
}

// decodeBody undoes a base64 or quoted-printable transfer encoding, which
// some MTAs apply even to message/* parts.
func decodeBody(h header, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(h.get("content-transfer-encoding"))) {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil && n == 0 {
			return body
		}
		return out[:n]
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil && len(out) == 0 {
			return body
		}
		return out
	}
	return body
}

func (p *parser) parseDSN(body []byte) {
	p.dsn = true
	for _, g := range splitGroups(body) {
		f := parseHeader(g)
		if v := f.get("reporting-mta"); v != "" && p.rep.ReportingMTA == "" {
			p.rep.ReportingMTA = typedValue(v)
		}
		if v := f.get("arrival-date"); v != "" && p.rep.ArrivalDate.IsZero() {
			if d, err := mail.ParseDate(v); err == nil {
				p.rep.ArrivalDate = d.UTC()
			}
		}
		if f.get("final-recipient") == "" && f.get("original-recipient") == "" && f.get("status") == "" {
			continue // per-message fields only
		}
		if len(p.rep.Recipients) >= maxRecipients {
			continue
		}
		r := Recipient{
			FinalRecipient:    typedAddress(f.get("final-recipient")),
			OriginalRecipient: typedAddress(f.get("original-recipient")),
			Action:            strings.ToLower(strings.TrimSpace(f.get("action"))),
			DiagnosticCode:    typedValue(f.get("diagnostic-code")),
			RemoteMTA:         typedValue(f.get("remote-mta")),
		}
		if d, err := mail.ParseDate(f.get("last-attempt-date")); err == nil {
			r.LastAttemptDate = d.UTC()
		}
		r.Status = effectiveStatus(f.get("status"), r.DiagnosticCode)
		r.Class, r.Auth = Classify(r.Action, r.Status, r.DiagnosticCode)
		p.rep.Recipients = append(p.rep.Recipients, r)
	}
}

func (p *parser) parseARF(body []byte) {
	// The fields form one group; be lenient about stray blank lines.
	f := parseHeader(body)
	a := &ARF{
		FeedbackType:     strings.ToLower(strings.TrimSpace(f.get("feedback-type"))),
		UserAgent:        f.get("user-agent"),
		Version:          f.get("version"),
		OriginalMailFrom: bareAddress(f.get("original-mail-from")),
		SourceIP:         f.get("source-ip"),
	}
	for _, v := range f.all("original-rcpt-to") {
		if addr := bareAddress(v); addr != "" {
			a.OriginalRcptTo = append(a.OriginalRcptTo, addr)
		}
	}
	for _, v := range f.all("reported-domain") {
		a.ReportedDomain = append(a.ReportedDomain, strings.ToLower(strings.TrimSpace(v)))
	}
	date := f.get("arrival-date")
	if date == "" {
		date = f.get("received-date") // the draft's name, still sent by some
	}
	if d, err := mail.ParseDate(date); err == nil {
		a.ArrivalDate = d.UTC()
	}
	a.Class = ClassifyFeedback(a.FeedbackType)
	p.rep.ARF = a
}

func (p *parser) parseOriginal(b []byte) {
	head, _ := splitHead(b)
	h := parseHeader(head)
	p.rep.Original = Original{
		MessageID:      strings.Trim(h.get("message-id"), "<> "),
		FeedbackID:     h.get("feedback-id"),
		ListID:         decodeWords(h.get("list-id")),
		CFBLFeedbackID: h.get("cfbl-feedback-id"),
		ReturnPath:     bareAddress(h.get("return-path")),
		From:           decodeWords(h.get("from")),
		To:             decodeWords(h.get("to")),
		Subject:        decodeWords(h.get("subject")),
	}
}
