package templates_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/templates"
)

// A delivery worker selects each reader's items, renders each distinct
// variant once (the Renderer caches it), and fills in the reader's name and
// links, reusing its buffers from message to message.
func ExampleRenderer() {
	r, err := templates.New(templates.Config{
		SenderName:    "AI政策動向マンスリー編集部",
		PostalAddress: "〒100-0013 東京都千代田区霞が関1-1-1",
		Contact:       "https://news.example.go.jp/contact",
		WebURL:        "https://news.example.go.jp/issues/{slug}",
	})
	if err != nil {
		log.Fatal(err)
	}
	issue := handIssue()
	readers := []struct {
		name  string
		prefs audience.Prefs
	}{
		{"山田 太郎", audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: audience.StandardTopics}},
		{"佐藤 花子", audience.Prefs{Regions: []audience.Region{audience.EU, audience.US}, Topics: []audience.Topic{audience.Reports}}},
		{"", audience.Prefs{Regions: []audience.Region{audience.Intl}, Topics: audience.StandardTopics}},
	}
	var html, text []byte
	for i, rd := range readers {
		sel, err := templates.Select(issue, rd.prefs)
		if errors.Is(err, templates.ErrNothingToSend) {
			fmt.Printf("reader %d: nothing to send\n", i)
			continue
		}
		v, err := r.Render(issue, sel)
		if err != nil {
			log.Fatal(err)
		}
		p := templates.Personal{
			Name:           rd.name,
			UnsubscribeURL: fmt.Sprintf("https://news.example.go.jp/u/%d", i),
			PreferencesURL: fmt.Sprintf("https://news.example.go.jp/p/%d", i),
		}
		if err := p.Check(); err != nil {
			log.Fatal(err)
		}
		html = v.AppendHTML(html[:0], p)
		text = v.AppendText(text[:0], p)
		fmt.Printf("reader %d: variant %s, %d sections, %d items\n", i, v.Key, v.Sections, v.Items)
	}
	// Output:
	// reader 0: variant 8:09, 2 sections, 2 items
	// reader 1: variant 8:01, 1 sections, 1 items
	// reader 2: nothing to send
}
