package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/compose"
)

// newComposeCmd is the "compose" group: import, check and show issues
// here; preview in compose_preview.go.
func newComposeCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "compose", Short: "Compose, check, preview and show issues"}
	c.AddCommand(newComposeImportCmd(a), newComposeCheckCmd(a), newComposeShowCmd(a))
	c.AddCommand(newComposePreviewCmd(a))
	return c
}

// noConfig lets a command run without loading the configuration: the
// editor's tools work on any machine.
func noConfig(*cobra.Command, []string) error { return nil }

// readSource reads FILE, or standard input for "-".
func (a *app) readSource(path string) (name string, data []byte, err error) {
	if path == "-" {
		data, err = compose.ReadLimited(a.stdin, "<stdin>")
		return "<stdin>", data, err
	}
	f, err := os.Open(path)
	if err != nil {
		return path, nil, err
	}
	defer f.Close()
	data, err = compose.ReadLimited(f, path)
	return path, data, err
}

func newComposeImportCmd(a *app) *cobra.Command {
	var out string
	var opt compose.ImportOptions
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Convert a plain-text issue into the editor's Markdown format",
		Long: `Import reads an issue in the plain-text monthly layout (or "-" for standard
input) and writes it in the editor's Markdown format (docs/issue-format.md),
to standard output or to the file given with -o. Every item, body line and
URL is kept. The slug and title are derived from the items' dates unless
given as flags.`,
		Args:              cobra.ExactArgs(1),
		PersistentPreRunE: noConfig,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, data, err := a.readSource(args[0])
			if err != nil {
				return err
			}
			var is *compose.Issue
			if compose.IsMarkdown(data) {
				is, err = compose.ParseMarkdown(name, data)
				if err == nil {
					applyImportOptions(is, opt)
				}
			} else {
				is, err = compose.ImportText(name, data, opt)
			}
			if err != nil {
				return reportParseError(a.stderr, err)
			}
			var buf bytes.Buffer
			if err := compose.WriteMarkdown(&buf, is); err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(buf.Bytes())
			} else {
				err = writeFileAtomic(out, buf.Bytes())
			}
			if err != nil {
				return err
			}
			items, links := 0, 0
			for _, s := range is.Sections {
				items += len(s.Items)
				for _, it := range s.Items {
					links += len(it.Links)
				}
			}
			ps := compose.Check(is)
			nerr := 0
			for _, p := range ps {
				if p.Severity == compose.SeverityError {
					nerr++
				}
			}
			fmt.Fprintf(a.stderr, "imported %s: %d sections, %d items, %d links; check finds %d errors, %d warnings\n",
				name, len(is.Sections), items, links, nerr, len(ps)-nerr)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&out, "output", "o", "", "write the Markdown to this file instead of standard output")
	f.StringVar(&opt.Newsletter, "newsletter", "", "newsletter name (default: read from the text)")
	f.StringVar(&opt.Slug, "slug", "", "issue slug such as 2025-11 (default: the month of most items)")
	f.StringVar(&opt.Title, "title", "", "issue title (default: newsletter name and month)")
	f.StringVar(&opt.Preheader, "preheader", "", "inbox preview text")
	return c
}

// applyImportOptions overrides a Markdown issue's front matter with flags.
func applyImportOptions(is *compose.Issue, opt compose.ImportOptions) {
	for _, kv := range []struct {
		dst *string
		v   string
	}{{&is.Newsletter, opt.Newsletter}, {&is.Slug, opt.Slug}, {&is.Title, opt.Title}, {&is.Preheader, opt.Preheader}} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
}

func newComposeCheckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Lint issues: dates, URLs, duplicates, empty sections, regions",
		Long: `Check reads issues in either format ("-" for standard input) and prints
every problem as "file:line: severity: message". It exits with status 1
when there is an error in any file; warnings alone exit 0.`,
		Args:              cobra.MinimumNArgs(1),
		PersistentPreRunE: noConfig,
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				ok, err := a.checkOne(path)
				if err != nil {
					return err
				}
				failed = failed || !ok
			}
			if failed {
				return errSilent
			}
			return nil
		},
	}
}

// checkOne lints one file, printing its problems; ok is false when the
// file does not parse or has errors.
func (a *app) checkOne(path string) (ok bool, err error) {
	name, data, err := a.readSource(path)
	if err != nil {
		return false, err
	}
	is, err := compose.Parse(name, data)
	if err != nil {
		if err := reportParseError(a.stdout, err); !errors.Is(err, errSilent) {
			return false, err
		}
		return false, nil
	}
	ps := compose.Check(is)
	nerr := 0
	for _, p := range ps {
		fmt.Fprintln(a.stdout, p.String())
		if p.Severity == compose.SeverityError {
			nerr++
		}
	}
	fmt.Fprintf(a.stderr, "%s: %d errors, %d warnings\n", name, nerr, len(ps)-nerr)
	return nerr == 0, nil
}

func newComposeShowCmd(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:               "show FILE",
		Short:             "Print the structured issue (either format), as an outline or --json",
		Args:              cobra.ExactArgs(1),
		PersistentPreRunE: noConfig,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, data, err := a.readSource(args[0])
			if err != nil {
				return err
			}
			is, err := compose.Parse(name, data)
			if err != nil {
				return reportParseError(a.stderr, err)
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(is)
			}
			return writeOutline(a.stdout, is)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: sections[] with heading, region, kind and items[]")
	return c
}

// writeOutline prints the issue as an indented outline with each item's
// region and topics.
func writeOutline(w io.Writer, is *compose.Issue) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) — %s\n", is.Title, is.Slug, is.Newsletter)
	for _, s := range is.Sections {
		fmt.Fprintf(&b, "\n%s  [%s/%s]\n", s.Heading, s.Region, s.Kind)
		for _, it := range s.Items {
			topics := make([]string, len(it.Topics))
			for i, t := range it.Topics {
				topics[i] = string(t)
			}
			fmt.Fprintf(&b, "  (%s) %s  [%s: %s] %d links\n", it.Dates.Text, it.Headline, it.Region, strings.Join(topics, ","), len(it.Links))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// reportParseError prints each problem of a parse error as
// "file:line: error: message" and returns errSilent; other errors are
// returned as they are.
func reportParseError(w io.Writer, err error) error {
	var list compose.Errors
	var one *compose.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = compose.Errors{one}
	default:
		return err
	}
	for _, e := range list {
		if e.Line > 0 {
			fmt.Fprintf(w, "%s:%d: error: %s\n", e.File, e.Line, e.Msg)
		} else {
			fmt.Fprintf(w, "%s: error: %s\n", e.File, e.Msg)
		}
	}
	return errSilent
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so that a failed write never leaves half a file. It makes
// path's directory when it is missing (as `mkdir -p`), and every error
// names path, never the hidden temporary file.
func writeFileAtomic(path string, data []byte) error {
	fail := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary file's name means nothing to the user
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot write %s: cannot create its directory: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
