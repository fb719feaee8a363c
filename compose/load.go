package compose

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Load reads an issue from a file in either format: the editor's Markdown
// (recognised by its front matter) or the plain-text monthly layout. It
// refuses files larger than MaxInputSize.
func Load(path string) (*Issue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load issue: %w", err)
	}
	defer f.Close()
	data, err := ReadLimited(f, path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadLimited reads all of r, failing with ErrTooLarge beyond
// MaxInputSize bytes; name is used in the error.
func ReadLimited(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxInputSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes: not an issue", MaxInputSize), Err: ErrTooLarge}
	}
	return data, nil
}

// Parse reads an issue from data in either format, named name in error
// messages: Markdown when the first line is the front matter's "---",
// otherwise plain text imported with default ImportOptions.
func Parse(name string, data []byte) (*Issue, error) {
	if IsMarkdown(data) {
		return ParseMarkdown(name, data)
	}
	return ImportText(name, data, ImportOptions{})
}

// IsMarkdown reports whether data starts with a front matter line "---"
// (after an optional byte order mark).
func IsMarkdown(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return string(bytes.TrimRight(line, " \t\r")) == "---"
}

// sourceLines checks the size and encoding of a source and splits it into
// lines without their terminators (LF, CRLF or CR), with a byte order mark
// and trailing white space removed. It reports every invalid UTF-8
// sequence with its line and byte column.
func sourceLines(name string, data []byte) ([]string, error) {
	if len(data) > MaxInputSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes: not an issue", MaxInputSize), Err: ErrTooLarge}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	c := errs{file: name}
	text := string(data)
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if !utf8.ValidString(l) {
			col := 0
			for j := 0; j < len(l); {
				r, n := utf8.DecodeRuneInString(l[j:])
				if r == utf8.RuneError && n <= 1 {
					col = j + 1
					break
				}
				j += n
			}
			c.add(i+1, ErrInvalidUTF8, "invalid UTF-8 at byte %d of the line: save the file as UTF-8", col)
			continue
		}
		if strings.ContainsRune(l, 0) {
			c.add(i+1, ErrSyntax, "NUL byte in text")
		}
		lines[i] = strings.TrimRight(l, " \t\u3000")
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return lines, nil
}
