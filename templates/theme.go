package templates

import (
	"strings"

	"github.com/matcornic/hermes/v2"
)

// renderHTML renders the HTML part of v with hermes and the newsletter
// theme. It is the only function that calls hermes, so that moving to
// hermes v1.3.0 or the go-hermes fork touches this file only.
func renderHTML(v *view, cfg *Config) (string, error) {
	// Each render has its own, fully populated hermes value: hermes fills
	// defaults into its receiver, which would race if it were shared, and
	// every English default is replaced even though the theme shows none.
	h := hermes.Hermes{
		Theme:         theme(func() *view { return v }),
		TextDirection: hermes.TDLeftToRight,
		Product: hermes.Product{
			Name:        cfg.SenderName,
			Link:        v.WebURL,
			Logo:        "",
			Copyright:   "© " + cfg.SenderName,
			TroubleText: "リンクが開けない場合は、URLをブラウザに貼り付けてください。",
		},
		DisableCSSInlining: true, // the theme's styles are inline already
	}
	return h.GenerateHTML(hermes.Email{Body: hermes.Body{
		Title:     v.Title,
		Greeting:  v.Name,
		Signature: cfg.SenderName,
		Intros:    []string{},
		Outros:    []string{},
	}})
}

// theme is the newsletter theme for hermes. Each render makes its own theme
// value returning the variant to render, which the template reads as
// .Hermes.Theme.V; nothing is shared between renders.
//
// It is a function type, not a struct, on purpose: hermes v2.1.0 merges its
// defaults into the Hermes value with mergo v0.3.6, which walks into a
// non-nil Theme and indexes the fields of the default theme (a struct with
// none) by the fields of ours, and panics if ours is a struct with fields.
type theme func() *view

var _ hermes.Theme = theme(nil)

// V returns the view to render; the template calls it.
func (t theme) V() *view { return t() }

// Name implements hermes.Theme.
func (theme) Name() string { return "tayori-newsletter" }

// HTMLTemplate implements hermes.Theme.
func (theme) HTMLTemplate() string { return htmlTemplate }

// PlainTextTemplate implements hermes.Theme. Tayori writes the text part
// itself (see text.go), because hermes passes it through html2text, which
// inserts spaces into Japanese sentences; this template exists only to
// satisfy the interface and carries no English.
func (theme) PlainTextTemplate() string { return `{{with .Hermes.Theme.V}}{{.Title}}{{end}}` }

// Styles, inlined into the template below. Single quotes only: they sit in
// double-quoted style attributes.
const (
	fontStack = `'Hiragino Kaku Gothic ProN','Hiragino Sans','Yu Gothic UI','Yu Gothic',Meiryo,'Noto Sans CJK JP','Noto Sans JP',sans-serif`
	colorBg   = `#f2f4f7`
	colorCard = `#ffffff`
	colorText = `#1f2328`
	colorMute = `#57606a`
	colorLink = `#0a58ca`
	colorRule = `#d8dee4`
	colorBand = `#0f3d6e`
)

// The HTML template. html/template escapes every value taken from the view
// (editor text and configuration); the literal markup here is the only raw
// HTML. Layout tables carry role="presentation"; the card is at most 600px
// wide; styles are inline, with a <style> block only for dark mode and
// small screens.
var htmlTemplate = strings.NewReplacer(
	"$FONT", fontStack,
	"$BG", colorBg,
	"$CARD", colorCard,
	"$TEXT", colorText,
	"$MUTE", colorMute,
	"$LINK", colorLink,
	"$RULE", colorRule,
	"$BAND", colorBand,
).Replace(`{{with .Hermes.Theme.V}}<!doctype html>
<html lang="ja" dir="ltr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no">
<title>{{.Title}}</title>
<style>
:root{color-scheme:light dark;supported-color-schemes:light dark}
@media (prefers-color-scheme:dark){
.t-bg{background-color:#0d1117 !important}
.t-card{background-color:#161b22 !important}
.t-fg{color:#e6edf3 !important}
.t-mute{color:#9da7b3 !important}
.t-link{color:#79c0ff !important}
.t-rule{border-color:#30363d !important}
}
@media only screen and (max-width:620px){.t-pad{padding-left:16px !important;padding-right:16px !important}}
</style>
</head>
<body class="t-bg" style="margin:0;padding:0;background-color:$BG;-webkit-text-size-adjust:100%;">
<div style="display:none;max-height:0;max-width:0;overflow:hidden;opacity:0;mso-hide:all;font-size:1px;line-height:1px;">{{.Preheader}}{{safe "&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;&#8199;&#847;"}}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" class="t-bg" style="width:100%;background-color:$BG;">
<tr><td align="center" style="padding:24px 8px;">
{{safe "<!--[if mso]><table role=\"presentation\" width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" align=\"center\"><tr><td><![endif]-->"}}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" class="t-card" style="width:100%;max-width:600px;margin:0 auto;background-color:$CARD;border-collapse:collapse;font-family:$FONT;color:$TEXT;">
<tr><td class="t-pad" style="padding:28px 32px 20px;border-top:6px solid $BAND;">
{{if .Newsletter}}<p class="t-mute" style="margin:0 0 6px;font-size:13px;line-height:1.6;color:$MUTE;">{{.Newsletter}}</p>
{{end}}<h1 class="t-fg" style="margin:0;font-size:24px;line-height:1.45;font-weight:bold;color:$TEXT;">{{.Title}}</h1>
{{if .Period}}<p class="t-mute" style="margin:8px 0 0;font-size:13px;line-height:1.6;color:$MUTE;">対象期間：{{.Period}}</p>
{{end}}{{if .WebURL}}<p style="margin:8px 0 0;font-size:13px;line-height:1.6;"><a class="t-link" href="{{.WebURL}}" style="color:$LINK;text-decoration:underline;">この号をブラウザで読む</a></p>
{{end}}</td></tr>
<tr><td class="t-pad t-fg" style="padding:0 32px 8px;font-size:15px;line-height:1.8;color:$TEXT;">
<p style="margin:0 0 12px;">{{.Name}}</p>
{{range .Intro}}<p style="margin:0 0 12px;">{{.}}</p>
{{end}}{{if .OnlyNothing}}<p id="only-nothing" style="margin:0 0 12px;">{{.NothingText}}{{if .WebURL}}<br><a class="t-link" href="{{.WebURL}}" style="color:$LINK;text-decoration:underline;">ほかの地域・分野を含む号の全体を読む</a>{{end}}</p>
{{end}}</td></tr>
{{range .Sections}}<tr><td class="t-pad" style="padding:20px 32px 4px;">
{{if .Group}}<p class="t-mute" style="margin:0 0 4px;font-size:13px;line-height:1.6;font-weight:bold;color:$MUTE;">{{.Group}}</p>
{{end}}<h2 class="t-fg t-rule" style="margin:0;padding:0 0 6px;font-size:19px;line-height:1.5;font-weight:bold;color:$TEXT;border-bottom:2px solid $BAND;">{{.Title}}</h2>
<p class="t-mute" style="margin:6px 0 0;font-size:13px;line-height:1.6;color:$MUTE;">地域：{{.Region}}{{if .Period}}　期間：{{.Period}}{{end}}{{if .Note}}　{{.Note}}{{end}}</p>
{{if .Nothing}}<p class="t-fg" style="margin:10px 0 0;font-size:15px;line-height:1.8;color:$TEXT;">{{.Nothing}}</p>
{{end}}</td></tr>
{{range .Items}}<tr><td class="t-pad t-fg" style="padding:14px 32px 6px;font-size:15px;line-height:1.8;color:$TEXT;">
{{if .Date}}<p class="t-mute" style="margin:0;font-size:13px;line-height:1.6;color:$MUTE;">{{.Date}}</p>
{{end}}<h3 class="t-fg" style="margin:2px 0 6px;font-size:16px;line-height:1.6;font-weight:bold;color:$TEXT;">{{.Headline}}</h3>
{{range .Body}}<p style="margin:0 0 8px;">{{.}}</p>
{{end}}{{range .Links}}<p style="margin:0 0 6px;font-size:14px;line-height:1.6;">{{if .Label}}▸ <a class="t-link" href="{{.Href}}" style="color:$LINK;text-decoration:underline;">{{.Label}}</a><br>{{end}}<span class="t-mute" style="font-size:12px;color:$MUTE;word-break:break-all;">{{.URL}}</span></p>
{{end}}</td></tr>
{{end}}{{end}}{{if .Closing}}<tr><td class="t-pad t-fg" style="padding:20px 32px 8px;font-size:15px;line-height:1.8;color:$TEXT;">
{{range .Closing}}<p style="margin:0 0 12px;">{{.}}</p>
{{end}}</td></tr>
{{end}}<tr><td class="t-pad t-mute t-rule" id="tayori-footer" style="padding:20px 32px 28px;border-top:1px solid $RULE;font-size:13px;line-height:1.7;color:$MUTE;">
<p style="margin:16px 0 8px;">配信停止：今後このメールの受信を希望されない場合は、次のリンクから配信を停止する（受信を拒否する）ことができます。<a class="t-link" href="{{.UnsubscribeURL}}" style="color:$LINK;text-decoration:underline;">配信停止の手続きへ進む</a></p>
<p style="margin:0 0 8px;">受け取る地域・分野の変更：<a class="t-link" href="{{.PreferencesURL}}" style="color:$LINK;text-decoration:underline;">配信設定を変更する</a></p>
<p style="margin:0;">発行者：{{.Sender}}<br>所在地：{{.PostalAddress}}<br>お問い合わせ：{{if .ContactURL}}<a class="t-link" href="{{.ContactURL}}" style="color:$LINK;text-decoration:underline;">{{.Contact}}</a>{{else}}{{.Contact}}{{end}}</p>
</td></tr>
</table>
{{safe "<!--[if mso]></td></tr></table><![endif]-->"}}
</td></tr>
</table>
</body>
</html>
{{end}}`)
