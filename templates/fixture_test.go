package templates_test

import (
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// handIssue is a small issue written by hand from the November 2025 sample
// (testdata/aisi-monthly-2025-11.txt): seven sections over four regions and
// three kinds, items with one and several links, an item without body, a
// URL with the "®=" artefact and an editor's custom topic.
func handIssue() *compose.Issue {
	return &compose.Issue{
		Newsletter: "AI政策動向マンスリー情報",
		Slug:       "2025-11-hand",
		Title:      "AI政策動向マンスリー情報 2025年11月号",
		Preheader:  "総務省AIセキュリティ分科会、米国Genesis Mission、EUのDigital Omnibus on AIほか",
		Intro: []string{
			"AIセーフティに関する内容を中心に、国内外の主なAI政策動向をお届けします。",
			"なお、情報収集の都合上、項目ごとに掲載対象期間が異なる場合がございます。",
		},
		Period: "2025年11月1日~11月30日",
		Sections: []compose.Section{
			{
				Heading: "日本AISIの活動(11月1日~11月30日)", Title: "日本AISIの活動", Period: "11月1日~11月30日",
				Region: audience.JP, Kind: audience.Activities,
				Items: []compose.Item{
					{
						Dates:    compose.Dates{Text: "2025/11/12", Days: []time.Time{day(2025, 11, 12)}},
						Headline: "日本産学フォーラム 国際シンポジウム2025にて、所長の村上が登壇",
						Body:     []string{"2025年11月12日、日本産学フォーラムが主催する国際シンポジウム2025「全世代のための未来社会のデザイン」のパネルディスカッションにおいて、所長の村上が登壇した。"},
						Links:    []string{"https://www.linkedin.com/posts/japan-aisi_last-week-at-the-businessuniversity-forum-activity-7396345625077870592-NdHo"},
						Region:   audience.JP, Topics: []audience.Topic{audience.Activities},
					},
					{
						Dates:    compose.Dates{Text: "2025/11/18", Days: []time.Time{day(2025, 11, 18)}},
						Headline: "「AISIロボティクスSWG」紹介動画を公開",
						Body:     []string{"2025年11月18日、YouTubeにおいて、AISIの分野別事業実証ワーキンググループの1つであるロボティクスSWGについての紹介動画を公開した。"},
						Links:    []string{"https://www.youtube.com/watch?v=pKGVWA8F3p8"},
						Region:   audience.JP, Topics: []audience.Topic{audience.Activities, "robotics"},
					},
				},
			},
			{
				Heading: "国内AI政策動向(11月1日~11月30日)", Title: "国内AI政策動向", Period: "11月1日~11月30日",
				Region: audience.JP, Kind: audience.Policy,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/04、21", Days: []time.Time{day(2025, 11, 4), day(2025, 11, 21)}},
					Headline: "総務省、AIセキュリティ分科会の第4回、第5回会合を開催",
					Body:     []string{"総務省はAIセキュリティ分科会の第4回、第5回会合を開催した。両会合で企業によるセキュリティ対策が紹介されるとともに、第5回会合では、「AIセキュリティ分科会取りまとめ 骨子・論点整理(案)」が示された。本案では、分科会で策定するガイドラインの位置づけや対象とする脅威、対策例などが示されている。"},
					Links: []string{
						"https://www.soumu.go.jp/main_sosiki/kenkyu/cybersecurity_taskforce/02cyber01_04000001_00330.html",
						"https://www.soumu.go.jp/main_sosiki/kenkyu/cybersecurity_taskforce/02cyber01_04000001_00332.html",
					},
					Region: audience.JP, Topics: []audience.Topic{audience.Policy},
				}},
			},
			{
				Group: "海外主要国のAI政策動向", Heading: "【米国】(11月1日~11月30日)", Title: "【米国】", Period: "11月1日~11月30日",
				Note: "※日時は現地時間", Region: audience.US, Kind: audience.Policy,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/24", Days: []time.Time{day(2025, 11, 24)}},
					Headline: "連邦政府、大統領令「Genesis Missionの始動」を発行",
					Body:     []string{"連邦政府は2025年11月24日、米国の科学技術競争力強化のため、AIを活用した科学研究を国家規模で推進することを宣言した大統領令「Genesis Missionの始動」を発行した。"},
					Links: []string{
						"https://www.whitehouse.gov/presidential-actions/2025/11/launching-the-genesis-mission/",
						"https://www.energy.gov/articles/energy-department-launches-genesis-mission-transform-american-science-and-innovation",
					},
					Region: audience.US, Topics: []audience.Topic{audience.Policy},
				}},
			},
			{
				Group: "海外主要国のAI政策動向", Heading: "【欧州】(11月1日~11月30日)", Title: "【欧州】", Period: "11月1日~11月30日",
				Note: "※日時は現地時間", Region: audience.EU, Kind: audience.Policy,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/19", Days: []time.Time{day(2025, 11, 19)}},
					Headline: "欧州委員会、Digital Omnibus on AIを提案",
					Body:     []string{"欧州委員会は2025年11月19日、Digital Omnibus、Digital Omnibus on AI、データ統合戦略及び欧州デジタルウォレットの4施策をデジタルパッケージとして提案した。"},
					Links:    []string{"https://ec.europa.eu/commission/presscorner/detail/en/ip_25_2718"},
					Region:   audience.EU, Topics: []audience.Topic{audience.Policy},
				}},
			},
			{
				Group: "海外主要国のAI政策動向", Heading: "【アジア(中国、韓国、インド、シンガポール)】(11月1日~11月30日)",
				Title: "【アジア(中国、韓国、インド、シンガポール)】", Period: "11月1日~11月30日",
				Note: "※日時は現地時間", Region: audience.Asia, Kind: audience.Policy,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/05", Days: []time.Time{day(2025, 11, 5)}},
					Headline: "インドの電子・情報技術省(MeitY)、「India AI Governance Guidelines」を発表",
					Body:     []string{"インドの電子・情報技術省(MeitY)は2025年11月5日、IndiaAI Missionの一環として、安全で包括的かつ責任あるAI導入をあらゆる分野で確保するための包括的なフレームワーク「India AI Governance Guidelines」を発表した。"},
					Links:    []string{"https://www.pib.gov.in/PressReleasePage.aspx?PRID=2186639®=3&lang=2"},
					Region:   audience.Asia, Topics: []audience.Topic{audience.Policy},
				}},
			},
			{
				Heading: "国内の主要なAI関連レポート等(11月1日~11月30日)", Title: "国内の主要なAI関連レポート等", Period: "11月1日~11月30日",
				Region: audience.JP, Kind: audience.Reports,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/25", Days: []time.Time{day(2025, 11, 25)}},
					Headline: "科学技術・学術政策研究所、「人工知能分野における国・地域別の発表概況(2025)-国際会議及びOpenAlexに基づく分析-」を公表",
					Links:    []string{"https://www.nistep.go.jp/wp/wp-content/uploads/NISTEP-STIH11-4-00411.pdf"},
					Region:   audience.JP, Topics: []audience.Topic{audience.Reports},
				}},
			},
			{
				Heading: "海外の主要なAI関連レポート等(11月1日~11月30日) ※日時は現地時間", Title: "海外の主要なAI関連レポート等", Period: "11月1日~11月30日",
				Note: "※日時は現地時間", Region: audience.Intl, Kind: audience.Reports,
				Items: []compose.Item{{
					Dates:    compose.Dates{Text: "2025/11/25", Days: []time.Time{day(2025, 11, 25)}},
					Headline: "英国政府、「International AI Safety Report」に技術的なセーフガードとリスクマネジメントに関するアップデートを実施",
					Links:    []string{"https://internationalaisafetyreport.org/publication/second-key-update-technical-safeguards-and-risk-management"},
					Region:   audience.EU, Topics: []audience.Topic{audience.Reports},
				}},
			},
		},
	}
}
