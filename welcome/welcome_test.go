package welcome_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/welcome"
)

func vars() welcome.Vars {
	return welcome.Vars{Name: "山田 花子", SenderName: "AIセーフティ・インスティテュート", ArchiveURL: "https://n.example.jp/archive",
		IssueTitle: "11月号 <速報>", IssueURL: "https://n.example.jp/issues/2025-11?a=1&b=2",
		PreferencesURL: "https://n.example.jp/p/T", UnsubscribeURL: "https://n.example.jp/u/T"}
}

func TestRenderDefault(t *testing.T) {
	m, err := welcome.Render(welcome.Default("monthly"), vars())
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "AIセーフティ・インスティテュート ニュースレターへようこそ" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, s := range []string{"山田 花子 様\n", "最新号「11月号 <速報>」", "https://n.example.jp/issues/2025-11?a=1&b=2\n", "配信停止: https://n.example.jp/u/T\n"} {
		if !strings.Contains(m.Text, s) {
			t.Errorf("text lacks %q:\n%s", s, m.Text)
		}
	}
	// The HTML part escapes the text and links the URLs.
	for _, s := range []string{"11月号 &lt;速報&gt;", `<a href="https://n.example.jp/issues/2025-11?a=1&amp;b=2">`} {
		if !strings.Contains(m.HTML, s) {
			t.Errorf("html lacks %q:\n%s", s, m.HTML)
		}
	}
	// No name, no issue yet: the other branches.
	v := vars()
	v.Name, v.IssueURL, v.IssueTitle = "", "", ""
	m, err = welcome.Render(welcome.Default("monthly"), v)
	if err != nil || strings.HasPrefix(m.Text, " 様") || !strings.Contains(m.Text, "最初の号は、発行しだいお届けします。") {
		t.Errorf("without name or issue: %v\n%s", err, m.Text)
	}
}

func TestRenderRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		t     welcome.Template
		field string
	}{
		"ErrNoUnsubscribe":  {welcome.Template{Subject: "x", Body: "{{.PreferencesURL}}"}, "body"},
		"ErrNoPreferences":  {welcome.Template{Subject: "x", Body: "{{.UnsubscribeURL}}"}, "body"},
		"ErrSyntax":         {welcome.Template{Subject: "{{.Name", Body: "{{.UnsubscribeURL}} {{.PreferencesURL}}"}, "subject"},
		"ErrUnknownField":   {welcome.Template{Subject: "x", Body: "{{.Email}} {{.UnsubscribeURL}} {{.PreferencesURL}}"}, "body"},
		"ErrMultilineTitle": {welcome.Template{Subject: "a\nb", Body: "{{.UnsubscribeURL}} {{.PreferencesURL}}"}, "subject"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := welcome.Render(tc.t, vars())
			var te *welcome.TemplateError
			if !errors.As(err, &te) || !errors.Is(err, welcome.ErrInvalid) || te.Problems[tc.field] == "" {
				t.Fatalf("err = %v, want a problem with %s", err, tc.field)
			}
		})
	}
}
