package compose_test

import (
	"fmt"
	"os"

	"github.com/tayori-news/tayori/compose"
)

func ExampleParse() {
	text := "AI政策動向マンスリー情報\n" +
		"海外の主要なAI関連レポート等(11月1日~11月30日) ※日時は現地時間\n" +
		"  1. (2025/11/25)英国政府、報告書を更新\n" +
		"    https://internationalaisafetyreport.org/\n"
	is, err := compose.Parse("2025-11.txt", []byte(text))
	if err != nil {
		fmt.Println(err)
		return
	}
	it := is.Sections[0].Items[0]
	fmt.Println(is.Slug, is.Title)
	fmt.Println(is.Sections[0].Title, is.Sections[0].Region, is.Sections[0].Kind)
	fmt.Println(it.Headline, it.Region, it.Topics)
	// Output:
	// 2025-11 AI政策動向マンスリー情報 2025年11月号
	// 海外の主要なAI関連レポート等 intl reports
	// 英国政府、報告書を更新 eu [reports]
}

func ExampleWriteMarkdown() {
	is, _ := compose.Parse("x.txt", []byte("便り\n【米国】(11月1日~11月30日)\n(2025/11/24)大統領令を発行\nhttps://www.whitehouse.gov/ -\n"))
	compose.WriteMarkdown(os.Stdout, is)
	// Output:
	// ---
	// newsletter: 便り
	// slug: 2025-11
	// title: 便り 2025年11月号
	// period: 11月1日~11月30日
	// # region_rules:        # regions of items in intl sections, by a name in the headline
	// #   - {match: 台湾, region: asia}
	// ---
	//
	// ## 【米国】(11月1日~11月30日) {region=us kind=policy}
	//
	// ### (2025/11/24) 大統領令を発行
	//
	// - https://www.whitehouse.gov/
}

func ExampleCheck() {
	is, _ := compose.Parse("x.txt", []byte("便り\n【米国】\n(2025/11/24)見出し\nhttps://www.pib.gov.in/PressReleasePage.aspx?PRID=1®=3\n"))
	for _, p := range compose.Check(is) {
		fmt.Println(p)
	}
	// Output:
	// x.txt:4: error: URL contains "®": its "&reg=" parameter was read as the HTML entity &reg; (®); write https://www.pib.gov.in/PressReleasePage.aspx?PRID=1&reg=3
}
