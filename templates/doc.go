// Package templates renders a [compose.Issue] into the HTML and plain-text
// parts of a newsletter email, one variant per distinct set of items that
// readers receive, and fills each reader's personal parts into a rendered
// variant cheaply.
//
// Sending an issue to many readers takes three steps:
//
//	sel, err := templates.Select(issue, reader.Prefs) // cheap, no rendering
//	if errors.Is(err, templates.ErrNothingToSend) {
//		// the reader wants none of this items: send nothing
//	}
//	v, err := renderer.Render(issue, sel) // cached by issue slug, content and sel.Key()
//	html, text, err := v.Personalize(templates.Personal{
//		Name:           reader.Name,
//		UnsubscribeURL: unsubscribeURL,
//		PreferencesURL: preferencesURL,
//	})
//
// Select decides which items a reader's [audience.Prefs] want; readers whose
// preferences differ but select the same items share a [Selection.Key] and
// therefore one rendered [Variant]. Rendering goes through hermes v2 with the
// package's own newsletter theme (Japanese, table layout, inline CSS, the
// footer that Japan's 特定電子メール法 Art. 4 requires); the plain-text part
// is written by this package, not by hermes's html2text, so that no spaces
// are inserted into Japanese sentences and lines stay short.
//
// A rendered variant holds its HTML and text split at placeholder markers;
// [Variant.AppendHTML], [Variant.AppendText] and [Variant.Personalize] join
// the segments with one reader's name and links in time proportional to the
// size of the message.
//
// All editor-supplied text is escaped by html/template; only the theme's own
// markup is raw HTML. Links are shown twice in the HTML part: as an anchor
// with descriptive text ("www.soumu.go.jp のページ") whose href html/template
// normalises (non-ASCII bytes percent-encoded, so "®" becomes "%c2%ae"),
// and as the URL exactly as written. Only http and https links become
// anchors.
//
// The text part ends lines in "\n"; the mailer turns them into CRLF. It is
// wrapped at 72 columns (a full-width character counts two) on character
// boundaries with Japanese line-breaking rules (禁則), never inside a URL or
// a Latin word, and without inserting spaces.
package templates
