package feedback_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tayori-news/tayori/feedback"
)

// FuzzParse: the parser never panics; it fails with one of its sentinels
// or returns a typed report with a key, every recipient classified; and
// it is deterministic. Seeds: every fixture and bad input in testdata/,
// plus small hand-made damage.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	bad, _ := filepath.Glob("testdata/bad/*.eml")
	for _, file := range append(files, bad...) {
		f.Add(readFile(f, file))
	}
	f.Add([]byte("Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b\nStatus: 5.1.1\n--b--\n"))
	f.Add([]byte("Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"))                   // a boundary reused inside
	f.Add([]byte("Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--b--")) // no original
	f.Add([]byte("Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!!"))
	f.Add([]byte{})
	classes := map[feedback.Class]bool{}
	for _, c := range feedback.Classes {
		classes[c] = true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := feedback.Parse(bytes.NewReader(b))
		if err != nil {
			if rep != nil || !(errors.Is(err, feedback.ErrMalformed) || errors.Is(err, feedback.ErrNotReport) || errors.Is(err, feedback.ErrTooLarge)) {
				t.Fatalf("Parse: %v, %v", rep, err)
			}
			return
		}
		if rep.Key == "" || (rep.Type != feedback.DeliveryStatus && rep.Type != feedback.FeedbackReport) {
			t.Fatalf("report without key or type: %+v", rep)
		}
		if rep.Type == feedback.DeliveryStatus && len(rep.Recipients) == 0 {
			t.Fatal("a DSN with no recipient")
		}
		for _, r := range rep.Recipients {
			if !classes[r.Class] {
				t.Fatalf("recipient class %q", r.Class)
			}
		}
		if rep.ARF != nil && !classes[rep.ARF.Class] {
			t.Fatalf("ARF class %q", rep.ARF.Class)
		}
		again, err := feedback.Parse(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		j1, _ := json.Marshal(rep)
		j2, _ := json.Marshal(again)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("not deterministic:\n%s\n%s", j1, j2)
		}
	})
}
