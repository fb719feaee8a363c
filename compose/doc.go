// Package compose holds the issue model of a newsletter (Issue, Section,
// Item), the editor's Markdown format, the importer for the plain-text
// monthly layouts, and the lint that checks an issue before it is sent.
//
// An issue is read with Load or Parse, which accept either format:
//
//	is, err := compose.Load("issues/2025-11.md")
//	if err != nil {
//		// err is an Errors: every problem, each "file:line: message".
//	}
//	for _, p := range compose.Check(is) {
//		fmt.Println(p) // "file:line: error: URL contains "®": …"
//	}
//
// The editor's format (docs/issue-format.md) is Markdown with YAML front
// matter: "## " section headings and "### " items, each heading ending in
// an optional attribute block such as {region=us kind=policy}. ParseMarkdown
// reads it and WriteMarkdown writes it; ImportText reads the plain-text
// monthly. Importing, writing and parsing again gives the same Issue.
//
// Regions and topics come from package audience. An item's region is its
// section's, except in an international section (region intl), where it is
// inferred from names in the headline (DefaultRegionRules and the issue's
// RegionRules) unless the editor sets it.
//
// Parsers never panic on bad input: invalid UTF-8 (ErrInvalidUTF8), input
// over MaxInputSize (ErrTooLarge) and format errors (ErrSyntax) are
// reported as Errors, all problems at once.
package compose
