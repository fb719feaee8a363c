package mailer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrInvalidMessage is wrapped by every *ValidationError: the message
	// cannot be built as given (bad address, CR/LF in a header, missing
	// field, oversized input). Retrying will not help.
	ErrInvalidMessage = errors.New("mailer: invalid message")

	// ErrInvalidSMTPURL is wrapped by every error from ParseSMTPURL.
	ErrInvalidSMTPURL = errors.New("mailer: invalid SMTP URL")

	// ErrPoolClosed is returned by Pool.Get after Pool.Close.
	ErrPoolClosed = errors.New("mailer: pool closed")

	// ErrRelayUnavailable is matched (errors.Is) by every error that
	// says the relay could not be reached at all, so nothing was sent:
	// a failed dial (*ConnError with Stage "connect"), a 4xx at
	// connection time (*SMTPError with Stage "connect"), and the circuit
	// breaker's *UnavailableError. It is temporary, and no fault of the
	// recipient's.
	ErrRelayUnavailable = errors.New("mailer: relay unavailable")
)

// SMTP stages at which a relay can refuse a message (SMTPError.Stage).
const (
	StageConnect = "connect" // greeting, EHLO, STARTTLS, AUTH
	StageMail    = "mail"    // MAIL FROM
	StageRcpt    = "rcpt"    // RCPT TO
	StageData    = "data"    // DATA command or the reply after the final dot
)

// SMTPError is a refusal by the relay: a 4xx or 5xx reply at some stage of the
// transaction.
type SMTPError struct {
	// Code is the three-digit reply code, e.g. 550.
	Code int
	// Enhanced is the RFC 3463 enhanced status code, e.g. "5.1.1"; empty if
	// the relay gave none.
	Enhanced string
	// Message is the reply text without the codes.
	Message string
	// Stage is one of StageConnect, StageMail, StageRcpt, StageData.
	Stage string
}

// Error implements error.
func (e *SMTPError) Error() string {
	var b strings.Builder
	b.WriteString("smtp ")
	b.WriteString(e.Stage)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Code))
	if e.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(e.Enhanced)
	}
	if e.Message != "" {
		b.WriteByte(' ')
		b.WriteString(e.Message)
	}
	return b.String()
}

// Temporary reports whether the reply is a 4xx.
func (e *SMTPError) Temporary() bool { return e.Code/100 == 4 }

// Is makes a 4xx at connection time match ErrRelayUnavailable.
func (e *SMTPError) Is(target error) bool {
	return target == ErrRelayUnavailable && e.Stage == StageConnect && e.Code/100 == 4
}

// ConnError is a failure of the connection rather than a reply from the relay:
// dial, TLS, timeout, reset, EOF, or a reply that could not be read. The
// connection it happened on is discarded. It is always temporary.
type ConnError struct {
	// Stage is where it happened (see the Stage constants).
	Stage string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *ConnError) Error() string { return "smtp " + e.Stage + ": connection: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *ConnError) Unwrap() error { return e.Err }

// Is makes a failure to connect match ErrRelayUnavailable.
func (e *ConnError) Is(target error) bool {
	return target == ErrRelayUnavailable && e.Stage == StageConnect
}

// IsTemporary reports whether err is worth retrying later: a 4xx reply, a
// connection failure (*ConnError or any network error, which go-mail's
// SendError.IsTemp reports as permanent), or a cancelled context.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var se *SMTPError
	if errors.As(err, &se) {
		return se.Code/100 == 4
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		return true
	}
	return isNetworkError(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// IsPermanent reports whether err is a 5xx reply: do not retry.
func IsPermanent(err error) bool {
	var se *SMTPError
	return errors.As(err, &se) && se.Code/100 == 5
}

// IsBadMailbox reports whether err says the recipient's mailbox does not
// exist or cannot receive mail, so the address should be marked bounced: a 5xx
// with enhanced code 5.1.x (except 5.1.7 and 5.1.8, which concern the sender),
// or a 550, 551 or 553 at RCPT TO from a relay that gives no enhanced code.
// Replies at MAIL FROM and CONNECT never count: they are about the sender.
func IsBadMailbox(err error) bool {
	var se *SMTPError
	if !errors.As(err, &se) || se.Code/100 != 5 {
		return false
	}
	if se.Stage != StageRcpt && se.Stage != StageData {
		return false
	}
	if se.Enhanced != "" {
		return strings.HasPrefix(se.Enhanced, "5.1.") && se.Enhanced != "5.1.7" && se.Enhanced != "5.1.8"
	}
	return se.Stage == StageRcpt && (se.Code == 550 || se.Code == 551 || se.Code == 553)
}

// IsPolicy reports whether err is a permanent refusal for authentication or
// policy reasons (enhanced code 5.7.x, e.g. 5.7.26 DMARC, 5.7.8 bad
// credentials; or 530/535 without an enhanced code). The caller should pause
// the send and tell a person; it must not mark the recipient bounced.
func IsPolicy(err error) bool {
	var se *SMTPError
	if !errors.As(err, &se) || se.Code/100 != 5 {
		return false
	}
	if se.Enhanced != "" {
		return strings.HasPrefix(se.Enhanced, "5.7.")
	}
	return se.Code == 530 || se.Code == 535
}

func isNetworkError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// FieldError is one problem with one field of a Message.
type FieldError struct {
	// Field names the header or part, e.g. "Subject", "To", "Header[3]".
	Field string
	// Problem says what is wrong.
	Problem string
}

// ValidationError lists every problem found in a Message. It wraps
// ErrInvalidMessage.
type ValidationError struct {
	Problems []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("mailer: invalid message: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Field)
		b.WriteString(": ")
		b.WriteString(p.Problem)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidMessage) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidMessage }

func (e *ValidationError) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}
