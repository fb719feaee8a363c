package main

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/templates"
)

// newComposePreviewCmd renders one reader's variant of an issue to
// preview.html and preview.txt, with example unsubscribe and preferences
// links under the configured base URL.
func newComposePreviewCmd(a *app) *cobra.Command {
	var regions, topics, out, name string
	c := &cobra.Command{
		Use:   "preview FILE",
		Short: "Render a reader's variant of an issue to preview.html and preview.txt",
		Long: `Render the copy of an issue that a reader with the given regions and topics
would receive, and write it to DIR/preview.html and DIR/preview.txt.

FILE is an issue in the editor's Markdown format or the plain-text monthly
layout. Without --regions or --topics the reader wants every region and every
standard topic (the full issue). The sender's name comes from TAYORI_FROM, the
postal address and contact from TAYORI_POSTAL_ADDRESS and TAYORI_CONTACT, and
the example unsubscribe and preferences links from TAYORI_BASE_URL.`,
		Example: `  tayori compose preview testdata/aisi-monthly-2025-11.txt --out /tmp/preview
  tayori compose preview issue.md --regions jp,us --topics policy --out /tmp/preview`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefs := audience.All()
			var errs []error
			if regions != "" {
				rs, err := audience.ParseRegions(regions)
				errs = append(errs, err)
				prefs.Regions = rs
			}
			if topics != "" {
				ts, err := audience.ParseTopics(topics)
				errs = append(errs, err)
				prefs.Topics = ts
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			return a.composePreview(args[0], prefs, name, out)
		},
	}
	c.Flags().StringVar(&regions, "regions", "", "comma-separated regions the reader chose (jp,us,eu,asia,intl); default all")
	c.Flags().StringVar(&topics, "topics", "", "comma-separated topics the reader chose (activities,policy,reports or custom tags); default all standard topics")
	c.Flags().StringVar(&name, "name", "", "the reader's name for the greeting (default: 購読者の皆様)")
	c.Flags().StringVarP(&out, "out", "o", "", "directory to write preview.html and preview.txt into (created if missing)")
	_ = c.MarkFlagRequired("out")
	return c
}

func (a *app) composePreview(file string, prefs audience.Prefs, name, outDir string) error {
	issue, err := compose.Load(file)
	if err != nil {
		return err
	}
	r, err := a.renderer()
	if err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	sel, err := templates.Select(issue, prefs)
	if errors.Is(err, templates.ErrNothingToSend) {
		return fmt.Errorf("compose preview: a reader with regions and topics %q receives nothing from %s: %w", prefs.Key(), file, err)
	}
	if err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	v, err := r.Render(issue, sel)
	if err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	html, text, err := v.Personalize(templates.Personal{
		Name:           name,
		UnsubscribeURL: a.cfg.BaseURL + "/unsubscribe?token=preview",
		PreferencesURL: a.cfg.BaseURL + "/preferences?token=preview",
	})
	if err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	htmlPath, textPath := filepath.Join(outDir, "preview.html"), filepath.Join(outDir, "preview.txt")
	if err := os.WriteFile(htmlPath, html, 0o644); err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	if err := os.WriteFile(textPath, text, 0o644); err != nil {
		return fmt.Errorf("compose preview: %w", err)
	}
	fmt.Fprintf(a.stdout, "%s: %d sections, %d items (variant %s)\n%s (%d bytes)\n%s (%d bytes)\n",
		issue.Slug, v.Sections, v.Items, v.Key, htmlPath, len(html), textPath, len(text))
	return nil
}

// templatesConfig builds the renderer's configuration from the effective
// configuration: the sender's name is the display name of From (or its
// address), and the contact falls back to Reply-To or From when
// TAYORI_CONTACT is not set, since an e-mail address for enquiries is
// enough for 特定電子メール法 Art. 4.
func (a *app) templatesConfig() templates.Config {
	sender, contact := a.cfg.From, a.cfg.Contact
	if addr, err := mail.ParseAddress(a.cfg.From); err == nil {
		sender = addr.Name
		if sender == "" {
			sender = addr.Address
		}
		if contact == "" {
			contact = addr.Address
		}
	}
	if a.cfg.Contact == "" && a.cfg.ReplyTo != "" {
		if addr, err := mail.ParseAddress(a.cfg.ReplyTo); err == nil {
			contact = addr.Address
		}
	}
	return templates.Config{
		SenderName:    sender,
		PostalAddress: a.cfg.PostalAddress,
		Contact:       contact,
		WebURL:        a.cfg.BaseURL + "/issues/{slug}",
		Logger:        a.logger,
	}
}
