package feedback_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/subscribers"
)

func TestDecide(t *testing.T) {
	th := feedback.Thresholds{Warn: feedback.DefaultWarnRate, Block: feedback.DefaultBlockRate}
	week := feedback.Figures{Since: testNow.Add(-7 * 24 * time.Hour), Until: testNow}
	fig := func(sent, complaints, authReports, authReplies int64) feedback.Figures {
		f := week
		f.Sent, f.Complaints, f.AuthReports, f.AuthReplies = sent, complaints, authReports, authReplies
		return f
	}
	cases := []struct {
		name        string
		f           feedback.Figures
		block, warn bool
		reason      []string
	}{
		{"quiet", fig(10000, 0, 0, 0), false, false, nil},
		{"nothing at all", fig(0, 0, 0, 0), false, false, nil},
		{"under the warning level", fig(10000, 9, 0, 0), false, false, nil},
		{"exactly 0.1% warns", fig(1000, 1, 0, 0), false, true, []string{"complaint rate 0.10%", "1 complaint / 1000 copies", "last 7 days", "0.10% warning level"}},
		{"0.29% warns", fig(10000, 29, 0, 0), false, true, []string{"0.29%"}},
		{"exactly 0.3% blocks", fig(1000, 3, 0, 0), true, false, []string{"complaint rate 0.30%", "3 complaints / 1000 copies", "0.30% limit"}},
		{"0.4% blocks", fig(1000, 4, 0, 0), true, false, []string{"0.40%"}},
		{"one auth refusal report blocks", fig(100000, 0, 1, 0), true, false, []string{"1 authentication refusal", "1 in bounce reports", "SPF, DKIM and DMARC"}},
		{"relay auth refusals block", fig(100000, 0, 0, 2), true, false, []string{"2 authentication refusals", "2 from the relay"}},
		{"both block, both named", fig(1000, 5, 1, 1), true, false, []string{"2 authentication refusals", "0.50%"}},
		{"auth blocks, rate warns", fig(1000, 1, 1, 0), true, false, []string{"authentication", "warning level"}},
		{"complaints but nothing sent", fig(0, 2, 0, 0), false, true, []string{"2 complaints", "no copy sent"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := feedback.Decide(c.f, th)
			if v.Block != c.block || v.Warn != c.warn {
				t.Fatalf("Decide = %+v; want block %v, warn %v", v, c.block, c.warn)
			}
			if !v.Block && !v.Warn && v.Reason != "" {
				t.Errorf("a quiet verdict with a reason: %q", v.Reason)
			}
			for _, want := range c.reason {
				if !strings.Contains(v.Reason, want) {
					t.Errorf("reason %q lacks %q", v.Reason, want)
				}
			}
		})
	}
}

// volume is the queue's figures, in memory.
type volume struct {
	sent    int64
	replies []string
}

func (v volume) SentBetween(context.Context, time.Time, time.Time) (int64, error) { return v.sent, nil }
func (v volume) FailedReplies(context.Context, time.Time, time.Time) ([]string, error) {
	return v.replies, nil
}

// TestGateReadsTheWindow: complaints from the store's events in the
// trailing 7 days (not older), copies and refusals from the queue; reports
// that matched no copy are counted apart and decide nothing.
func TestGateReadsTheWindow(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, 0)
	ev := func(key string, age time.Duration, kind string, auth bool) subscribers.FeedbackEvent {
		return subscribers.FeedbackEvent{ReportKey: key, ReceivedAt: testNow.Add(-age), Kind: kind, Auth: auth, Status: "5.7.26", Domain: "gmail.com", MatchedBy: "return-path"}
	}
	forged := func(key, kind string, auth bool) subscribers.FeedbackEvent {
		e := ev(key, time.Minute, kind, auth)
		e.MatchedBy, e.Status, e.Domain = "", "5.7.27", "forged.example"
		return e
	}
	if _, err := store.RecordFeedback(ctx, []subscribers.FeedbackEvent{
		ev("c1", time.Hour, "complaint", false),
		ev("c2", 6*24*time.Hour, "complaint", false),
		ev("c3", 8*24*time.Hour, "complaint", false), // outside the window
		ev("h1", time.Hour, "hard", false),
		forged("f1", "complaint", false), forged("f2", "complaint", false), forged("f3", "complaint", false),
		forged("f4", "policy", true),
	}); err != nil {
		t.Fatal(err)
	}
	vol := &volume{sent: 1000, replies: []string{"451 4.3.0 try later", "550 5.7.1 spam"}}
	g, err := feedback.NewGate(feedback.GateConfig{Events: store, Volume: vol, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	v, f, err := g.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Complaints != 2 || f.Sent != 1000 || f.AuthReports != 0 || f.AuthReplies != 0 || f.Unmatched != 4 || !v.Warn || v.Block {
		t.Fatalf("figures %+v, verdict %+v; want 2 complaints in 1000 (4 unmatched reports apart), a warning", f, v)
	}
	vol.replies = append(vol.replies, "550 5.7.515 Access denied, sending domain [NEWS.EXAMPLE.GO.JP] does not meet the required authentication level.")
	if v, f, _ = g.Check(ctx); !v.Block || f.AuthReplies != 1 || !strings.Contains(v.Reason, "5.7.515") {
		t.Errorf("a relay's 5.7.515: %+v, %+v", v, f)
	}
	vol.replies = nil
	if _, err := store.RecordFeedback(ctx, []subscribers.FeedbackEvent{ev("a1", time.Minute, "policy", true)}); err != nil {
		t.Fatal(err)
	}
	if v, f, _ = g.Check(ctx); !v.Block || f.AuthReports != 1 || !strings.Contains(v.Reason, "gmail.com 5.7.26") || strings.Contains(v.Reason, "forged") {
		t.Errorf("a 5.7.26 report: %+v, %+v", v, f)
	}
}
