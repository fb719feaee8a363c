package feedback_test

import (
	"fmt"
	"os"
	"time"

	"github.com/tayori-news/tayori/feedback"
	"github.com/tayori-news/tayori/subscribers/token"
)

// The sender writes a token into each copy's envelope sender and
// Message-ID; a bounce sent back to that address names the copy again.
func ExampleTagger() {
	ring, _ := token.NewKeyring(time.Now, token.Key{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")})
	tg, _ := feedback.NewTagger(ring, feedback.TaggerConfig{Domain: "news.example.go.jp"})

	ref := feedback.Ref{SendID: 12, SubscriberID: 3456}
	envelopeFrom := tg.ReturnPath(ref) // MAIL FROM of the copy
	messageID := tg.MessageID(ref)     // Message-ID, without <>
	fmt.Println(len(envelopeFrom), envelopeFrom[:2], envelopeFrom[len(envelopeFrom)-26:])

	back, _ := tg.RefFromAddress(envelopeFrom)
	fromID, _ := tg.RefFromMessageID("<" + messageID + ">")
	fmt.Println(back, fromID)
	// Output:
	// 55 b+ @bounce.news.example.go.jp
	// {12 3456} {12 3456}
}

// Parse reads a bounce; its recipients come classified.
func ExampleParse() {
	f, _ := os.Open("testdata/outlook-5.1.10.eml")
	defer f.Close()
	rep, err := feedback.Parse(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := rep.Recipients[0]
	fmt.Println(rep.Type, r.Action, r.Status, r.Class)
	// Output:
	// delivery-status failed 5.1.10 hard
}

// Decide is the send gate: 3 complaints in 1,000 copies is 0.3%.
func ExampleDecide() {
	now := time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC)
	v := feedback.Decide(feedback.Figures{Since: now.AddDate(0, 0, -7), Until: now, Sent: 1000, Complaints: 3},
		feedback.Thresholds{Warn: feedback.DefaultWarnRate, Block: feedback.DefaultBlockRate})
	fmt.Println(v.Block, v.Reason)
	// Output:
	// true complaint rate 0.30% (3 complaints / 1000 copies sent in the last 7 days) is at or above the 0.30% limit
}
