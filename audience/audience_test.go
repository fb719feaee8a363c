package audience_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/audience"
)

func TestWants(t *testing.T) {
	euPolicy := audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: []audience.Topic{audience.Policy}}
	cases := []struct {
		name   string
		prefs  audience.Prefs
		region audience.Region
		topics []audience.Topic
		want   bool
	}{
		{"region and topic match", euPolicy, audience.EU, []audience.Topic{audience.Policy}, true},
		{"region mismatch", euPolicy, audience.US, []audience.Topic{audience.Policy}, false},
		{"topic mismatch", euPolicy, audience.EU, []audience.Topic{audience.Reports}, false},
		{"one of several topics", euPolicy, audience.EU, []audience.Topic{audience.Reports, audience.Policy}, true},
		{"custom tag", audience.Prefs{Regions: audience.Regions, Topics: []audience.Topic{"robotics"}}, audience.JP, []audience.Topic{audience.Activities, "robotics"}, true},
		{"item without topics", audience.All(), audience.JP, nil, false},
		{"nothing chosen", audience.Prefs{}, audience.JP, []audience.Topic{audience.Policy}, false},
		{"all", audience.All(), audience.Intl, []audience.Topic{audience.Reports}, true},
	}
	for _, c := range cases {
		if got := c.prefs.Wants(c.region, c.topics); got != c.want {
			t.Errorf("%s: Wants = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseAndKey(t *testing.T) {
	rs, err := audience.ParseRegions(" US, jp ,us,")
	if err != nil || !slices.Equal(rs, []audience.Region{audience.JP, audience.US}) {
		t.Fatalf("ParseRegions = %v, %v", rs, err)
	}
	if _, err := audience.ParseRegions("jp,mars,venus"); !errors.Is(err, audience.ErrInvalid) {
		t.Fatalf("unknown regions: err = %v", err)
	}
	ts, err := audience.ParseTopics("robotics,policy,Activities")
	if err != nil || !slices.Equal(ts, []audience.Topic{audience.Activities, audience.Policy, "robotics"}) {
		t.Fatalf("ParseTopics = %v, %v", ts, err)
	}
	for _, bad := range []string{"", "has space", "UPPER!", "x\r\ny", "a-very-long-topic-name-that-goes-on-and-on"} {
		if _, err := audience.ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
	a := audience.Prefs{Regions: []audience.Region{audience.US, audience.JP}, Topics: []audience.Topic{audience.Reports, audience.Policy}}
	b := audience.Prefs{Regions: []audience.Region{audience.JP, audience.US, audience.JP}, Topics: []audience.Topic{audience.Policy, audience.Reports}}
	if a.Key() != b.Key() || a.Key() != "jp,us|policy,reports" {
		t.Fatalf("Key: %q vs %q", a.Key(), b.Key())
	}
}

// FuzzParseTopics: no panic; whatever parses is normalised and re-parses to itself.
func FuzzParseTopics(f *testing.F) {
	for _, s := range []string{"policy", "jp,us", "robotics, policy", ",,", "ＰＯＬＩＣＹ", "a\x00b", "policy,policy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := audience.ParseTopics(s)
		if err != nil {
			return
		}
		p := audience.Prefs{Topics: ts}
		again, err := audience.ParseTopics(p.Key()[1:])
		if err != nil || !slices.Equal(again, ts) {
			t.Fatalf("round trip %q: %v -> %v (%v)", s, ts, again, err)
		}
	})
}

// Key (AppendKey) lists the normalised regions and topics.
func FuzzKeyMatchesNormalized(f *testing.F) {
	f.Add("jp,us,jp", "policy,zeta,activities,alpha,zeta")
	f.Add("", "")
	f.Add("intl,asia,eu", "reports")
	f.Fuzz(func(t *testing.T, regions, topics string) {
		var p audience.Prefs
		for _, r := range strings.Split(regions, ",") {
			p.Regions = append(p.Regions, audience.Region(r))
		}
		for _, tp := range strings.Split(topics, ",") {
			p.Topics = append(p.Topics, audience.Topic(tp))
		}
		var want strings.Builder
		for i, r := range audience.NormalizeRegions(p.Regions) {
			if i > 0 {
				want.WriteByte(',')
			}
			want.WriteString(string(r))
		}
		want.WriteByte('|')
		for i, tp := range audience.NormalizeTopics(p.Topics) {
			if i > 0 {
				want.WriteByte(',')
			}
			want.WriteString(string(tp))
		}
		if got := p.Key(); got != want.String() {
			t.Fatalf("Key() = %q, want %q", got, want.String())
		}
	})
}
