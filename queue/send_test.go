package queue_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/compose"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/mailer"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/templates"
)

// wantedHeadlines splits the issue's headlines into those a reader with p
// receives and those they must not.
func wantedHeadlines(is *compose.Issue, p audience.Prefs) (in, out []string) {
	for _, s := range is.Sections {
		for _, it := range s.Items {
			r, ts := it.Region, it.Topics
			if r == "" {
				r = s.Region
			}
			if len(ts) == 0 {
				ts = []audience.Topic{s.Kind}
			}
			if p.Wants(r, ts) {
				in = append(in, it.Headline)
			} else {
				out = append(out, it.Headline)
			}
		}
	}
	return in, out
}

func TestSendEachReaderGetsOnlyTheirSections(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		readers := map[string]audience.Prefs{
			"jp@example.jp":     prefs("jp", "activities,policy,reports"),
			"us@example.jp":     prefs("us", "policy"),
			"euasia@example.jp": prefs("eu,asia,intl", "policy,reports"),
		}
		names := map[string]string{"jp@example.jp": "山田 太郎", "us@example.jp": "", "euasia@example.jp": "髙橋 﨑子"}
		for addr, p := range readers {
			e.addReader(addr, names[addr], p)
		}
		// Nothing in this issue is for a reader of US reports only.
		e.addReader("nothing@example.jp", "", prefs("us", "reports"))

		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if c := done.Counts; c.Planned != 3 || c.Sent != 3 || c.FailedPerm+c.FailedTemp != 0 {
			t.Errorf("counts %+v, want 3 planned and sent", c)
		}
		if got := e.smtp.MessagesTo("nothing@example.jp"); len(got) != 0 {
			t.Errorf("reader with nothing to read got %d messages", len(got))
		}
		ids := map[string]bool{}
		var feedback string
		for addr, p := range readers {
			msgs := e.smtp.MessagesTo(addr)
			if len(msgs) != 1 {
				t.Fatalf("%s got %d messages, want 1", addr, len(msgs))
			}
			m := checkMessage(t, msgs[0].Raw, is.Title)
			if to, _ := m.h.AddressList("To"); len(to) != 1 || to[0].Address != addr {
				t.Errorf("To %q, want %s", m.h.Get("To"), addr)
			}
			ids[m.h.Get("Message-Id")] = true
			if feedback == "" {
				feedback = m.h.Get("Feedback-Id")
			} else if m.h.Get("Feedback-Id") != feedback {
				t.Errorf("Feedback-ID differs between readers: %q, %q", feedback, m.h.Get("Feedback-Id"))
			}
			in, out := wantedHeadlines(is, p)
			if len(in) == 0 {
				t.Fatalf("fixture: %s wants nothing", addr)
			}
			for _, hl := range in {
				if !strings.Contains(m.html, hl) {
					t.Errorf("%s: HTML lacks wanted item %q", addr, hl)
				}
			}
			for _, hl := range out {
				if strings.Contains(m.html, hl) || strings.Contains(m.text, hl) {
					t.Errorf("%s: got unwanted item %q", addr, hl)
				}
			}
			// The unsubscribe link in the header is the reader's and is in both bodies.
			u := angleURIs.FindStringSubmatch(m.h.Get("List-Unsubscribe"))[1]
			if !strings.HasPrefix(u, testBaseURL+"/u/") || !strings.Contains(m.html, u) || !strings.Contains(m.text, u) {
				t.Errorf("%s: unsubscribe URL %q not in both bodies", addr, u)
			}
			if strings.Contains(u, addr) {
				t.Errorf("unsubscribe URL holds the address")
			}
			if names[addr] != "" && !strings.Contains(m.text, names[addr]) {
				t.Errorf("%s: text lacks the reader's name %q", addr, names[addr])
			}
		}
		if len(ids) != 3 {
			t.Errorf("Message-IDs not unique: %v", ids)
		}
	})
}

func TestSendTemporaryFailureThenSuccessSendsOnce(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, smtp: []testutilOpt{failTimes("slow@example.jp", 1, 451, "4.3.0")}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		e.addReader("slow@example.jp", "", audience.All())
		e.addReader("fine@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 2 {
			t.Errorf("counts %+v, want 2 sent", done.Counts)
		}
		if n := len(e.smtp.MessagesTo("slow@example.jp")); n != 1 {
			t.Errorf("slow reader got %d messages, want 1", n)
		}
		if n := len(e.smtp.MessagesTo("fine@example.jp")); n != 1 {
			t.Errorf("fine reader got %d messages, want 1", n)
		}
		if n := e.smtp.Attempts("slow@example.jp"); n != 2 {
			t.Errorf("slow reader: %d RCPT attempts, want 2", n)
		}
		d := e.delivery(snd.ID, "slow@example.jp")
		if d.status != "sent" || d.attempts != 2 || !strings.HasPrefix(d.reply, "250") {
			t.Errorf("delivery %+v, want sent after 2 attempts with the 250 reply", d)
		}
	})
}

func TestSendBadMailboxIsRecordedAndBounced(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, smtp: []testutilOpt{failAlways("gone@example.jp", 550, "5.1.1")}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		gone := e.addReader("gone@example.jp", "", audience.All())
		e.addReader("fine@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 1 || done.Counts.FailedPerm != 1 {
			t.Errorf("counts %+v, want 1 sent, 1 failed permanently", done.Counts)
		}
		time.Sleep(300 * time.Millisecond) // a wrongful retry would come within RetryBase
		if n := e.smtp.Attempts("gone@example.jp"); n != 1 {
			t.Errorf("bad mailbox tried %d times, want 1", n)
		}
		d := e.delivery(snd.ID, "gone@example.jp")
		if d.status != "failed" || !d.permanent || !strings.Contains(d.reply, "5.1.1") {
			t.Errorf("delivery %+v, want failed permanently with the 5.1.1 reply", d)
		}
		s, err := e.store.Get(e.ctx, gone.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != subscribers.Bounced {
			t.Errorf("subscriber status %s, want bounced", s.Status)
		}
	})
}

func TestSendPolicyRefusalPausesSend(t *testing.T) {
	forEngines(t, func(t *testing.T, eng testutil.Engine) {
		e := newEnv(t, envOpts{engine: eng, smtp: []testutilOpt{failAlways("strict@example.jp", 550, "5.7.26")}})
		is := loadIssue(t, "aisi-monthly-2025-11.txt")
		strict := e.addReader("strict@example.jp", "", audience.All()) // lowest id: first in its batch
		e.addReader("fine1@example.jp", "", audience.All())
		e.addReader("fine2@example.jp", "", audience.All())
		snd, err := e.svc.Create(e.ctx, queue.NewSend{Issue: is, List: testList})
		if err != nil {
			t.Fatal(err)
		}
		paused := e.waitState(snd.ID, queue.Paused, 20*time.Second)
		if !strings.Contains(paused.PauseReason, "5.7.26") {
			t.Errorf("pause reason %q does not carry the relay's reply", paused.PauseReason)
		}
		// Copies written before the refusal was read (several per round trip)
		// may go out; nothing is written after it.
		inFlight := len(e.smtp.Messages())
		if inFlight > mailer.MaxInFlight {
			t.Errorf("%d messages went out with the refused one, more than the %d a connection has in flight", inFlight, mailer.MaxInFlight)
		}
		time.Sleep(500 * time.Millisecond)
		if n := len(e.smtp.Messages()); n != inFlight {
			t.Errorf("%d messages went out after the policy refusal paused the send", n-inFlight)
		}
		if n := e.smtp.Attempts("strict@example.jp"); n != 1 {
			t.Errorf("refused recipient tried %d times, want 1", n)
		}
		s, err := e.store.Get(e.ctx, strict.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != subscribers.Active {
			t.Errorf("subscriber status %s after a policy refusal, want active", s.Status)
		}
		d := e.delivery(snd.ID, "strict@example.jp")
		if d.status != "failed" || !d.permanent {
			t.Errorf("delivery %+v, want failed permanently", d)
		}
		// The editor fixes the cause and resumes: the others get their copy.
		if err := e.svc.Resume(e.ctx, snd.ID); err != nil {
			t.Fatal(err)
		}
		done := e.waitState(snd.ID, queue.Done, 20*time.Second)
		if done.Counts.Sent != 2 || done.Counts.FailedPerm != 1 {
			t.Errorf("counts %+v, want 2 sent, 1 failed", done.Counts)
		}
		if err := e.svc.Resume(e.ctx, snd.ID); !errors.Is(err, queue.ErrState) {
			t.Errorf("resume of a done send: %v, want ErrState", err)
		}
		for _, rcpt := range []string{"fine1@example.jp", "fine2@example.jp"} {
			if n := len(e.smtp.MessagesTo(rcpt)); n != 1 {
				t.Errorf("%s got %d copies, want 1", rcpt, n)
			}
		}
	})
}

var _ = templates.ErrNothingToSend
