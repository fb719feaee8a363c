package compose

import (
	"errors"
	"fmt"
	"strings"
)

// MaxInputSize is the largest source Parse and Load accept, in bytes. A
// monthly issue is about 15 KB; anything near this limit is not an issue.
const MaxInputSize = 2 << 20

// Sentinel errors wrapped by the errors of this package; check them with
// errors.Is.
var (
	// ErrTooLarge means the source is larger than MaxInputSize.
	ErrTooLarge = errors.New("input too large")
	// ErrInvalidUTF8 means the source is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrSyntax means the source does not follow its format.
	ErrSyntax = errors.New("syntax error")
)

// Error is one problem found in a source, at a place in it.
type Error struct {
	File string // name of the source as given to Parse
	Line int    // 1-based line, 0 if the problem concerns the whole source
	Msg  string // what is wrong, for a person
	Err  error  // sentinel the problem wraps (ErrSyntax, ErrInvalidUTF8, …)
}

// Error formats the problem as "file:line: message".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Unwrap returns the sentinel the problem wraps.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a source, in source order. Parse
// functions return it (never an empty one) so that an editor sees all the
// problems at once.
type Errors []*Error

// Error lists the problems, one a line.
func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems so that errors.Is and errors.As see each.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// errs collects problems while parsing one source.
type errs struct {
	file string
	list Errors
}

func (c *errs) add(line int, sentinel error, format string, args ...any) {
	c.list = append(c.list, &Error{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...), Err: sentinel})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}
