package web

import (
	"errors"
	"net/http"

	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// Error codes of the API's JSON errors ({"error":{"code":…,"message":…}}).
const (
	codeInvalid       = "invalid"
	codeInvalidToken  = "invalid_token"
	codeExpiredToken  = "expired_token"
	codeUnauthorized  = "unauthorized"
	codeForbidden     = "forbidden"
	codeNotFound      = "not_found"
	codeConflict      = "conflict"
	codeSuppressed    = "suppressed"
	codeTooMany       = "rate_limited"
	codeTooLarge      = "too_large"
	codeMethod        = "method_not_allowed"
	codeInternal      = "internal"
	codeUnavailable   = "unavailable"
	codeUnsupported   = "unsupported_media_type"
	codeNothingToSend = "nothing_to_send"
	codeLint          = "lint_errors"
	codeGateClosed    = "gate_closed"
	codeAlreadySent   = "already_sent"
	codeUnknownList   = "unknown_list"
	codeKeyReused     = "idempotency_key_reused"
)

// httpError is an error the handlers raise themselves with a code and a
// message safe to show.
type httpError struct {
	code string
	msg  string
	err  error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func newError(code, msg string) error { return &httpError{code: code, msg: msg} }

func wrapError(code, msg string, err error) error { return &httpError{code: code, msg: msg, err: err} }

// errRateLimited is returned when a client exceeds a rate limit.
var errRateLimited = errors.New("too many requests")

// errorTable maps errors to a code and an HTTP status: the first entry the
// error matches (errors.Is) wins. It is the only place that knows which
// domain error is which status. Order matters: the more specific token
// sentinels come before token.ErrInvalid, and queue.ErrBlocked before the
// queue.ErrState it wraps.
var errorTable = []struct {
	target error
	code   string
	status int
}{
	{token.ErrExpired, codeExpiredToken, http.StatusGone},
	{token.ErrUsed, codeExpiredToken, http.StatusGone},
	{token.ErrInvalid, codeInvalidToken, http.StatusBadRequest},
	{subscribers.ErrNotFound, codeNotFound, http.StatusNotFound},
	{subscribers.ErrExists, codeConflict, http.StatusConflict},
	{subscribers.ErrSuppressed, codeSuppressed, http.StatusConflict},
	{subscribers.ErrTransition, codeConflict, http.StatusConflict},
	{subscribers.ErrInvalid, codeInvalid, http.StatusBadRequest},
	{queue.ErrNotFound, codeNotFound, http.StatusNotFound},
	{queue.ErrBlocked, codeGateClosed, http.StatusConflict}, // wraps ErrState
	{queue.ErrAlreadySent, codeAlreadySent, http.StatusConflict},
	{queue.ErrNoList, codeUnknownList, http.StatusUnprocessableEntity},
	{queue.ErrKeyReused, codeKeyReused, http.StatusUnprocessableEntity},
	{queue.ErrState, codeConflict, http.StatusConflict},
	{queue.ErrInvalid, codeInvalid, http.StatusBadRequest},
	{compose.ErrTooLarge, codeTooLarge, http.StatusRequestEntityTooLarge},
	{compose.ErrSyntax, codeInvalid, http.StatusUnprocessableEntity},
	{compose.ErrInvalidUTF8, codeInvalid, http.StatusUnprocessableEntity},
	{ErrNotFound, codeNotFound, http.StatusNotFound},
	{ErrExists, codeConflict, http.StatusConflict},
	{ErrInvalid, codeInvalid, http.StatusBadRequest},
	{ErrUnauthorized, codeUnauthorized, http.StatusUnauthorized},
	{errRateLimited, codeTooMany, http.StatusTooManyRequests},
}

// codeStatus is the status of each code raised with newError.
var codeStatus = map[string]int{
	codeInvalid:       http.StatusBadRequest,
	codeInvalidToken:  http.StatusBadRequest,
	codeExpiredToken:  http.StatusGone,
	codeUnauthorized:  http.StatusUnauthorized,
	codeForbidden:     http.StatusForbidden,
	codeNotFound:      http.StatusNotFound,
	codeConflict:      http.StatusConflict,
	codeSuppressed:    http.StatusConflict,
	codeTooMany:       http.StatusTooManyRequests,
	codeTooLarge:      http.StatusRequestEntityTooLarge,
	codeMethod:        http.StatusMethodNotAllowed,
	codeUnsupported:   http.StatusUnsupportedMediaType,
	codeUnavailable:   http.StatusServiceUnavailable,
	codeNothingToSend: http.StatusUnprocessableEntity,
	codeLint:          http.StatusUnprocessableEntity,
	codeGateClosed:    http.StatusConflict,
	codeAlreadySent:   http.StatusConflict,
	codeUnknownList:   http.StatusUnprocessableEntity,
	codeKeyReused:     http.StatusUnprocessableEntity,
	codeInternal:      http.StatusInternalServerError,
}

// classify returns the code and status of err; anything unknown is an
// internal error (500), whose message is never shown.
func classify(err error) (code string, status int) {
	var he *httpError
	if errors.As(err, &he) {
		if st, ok := codeStatus[he.code]; ok {
			return he.code, st
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return codeTooLarge, http.StatusRequestEntityTooLarge
	}
	for _, e := range errorTable {
		if errors.Is(err, e.target) {
			return e.code, e.status
		}
	}
	return codeInternal, http.StatusInternalServerError
}

// publicMessage is the message of err that may be shown to a client.
func publicMessage(err error, code string) string {
	if code == codeInternal {
		return "internal error"
	}
	var he *httpError
	if errors.As(err, &he) {
		return he.msg
	}
	return err.Error()
}
