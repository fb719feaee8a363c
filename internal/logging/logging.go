// Package logging builds Tayori's slog handler (text on a terminal, JSON
// otherwise).
package logging

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format "text", "json" or "auto" (text when w is a terminal).
func New(w io.Writer, level, format string) *slog.Logger {
	return NewIn(w, level, format, nil)
}

// NewIn is New with every time it writes, the record's and its
// attributes', in loc (TAYORI_TIMEZONE), as the console and the CLI show
// times; nil keeps the process's zone.
func NewIn(w io.Writer, level, format string, loc *time.Location) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if loc != nil {
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindTime {
				a.Value = slog.TimeValue(a.Value.Time().In(loc))
			}
			return a
		}
	}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
