package feedback_test

import (
	"testing"

	"github.com/tayori-news/tayori/feedback"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		action, status, diag string
		class                feedback.Class
		auth                 bool
	}{
		// Hard: the address does not work.
		{"failed", "5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", feedback.Hard, false},
		{"failed", "5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound", feedback.Hard, false},
		{"failed", "5.1.2", "smtp; 550 5.1.2 Host unknown", feedback.Hard, false},
		{"failed", "5.1.6", "", feedback.Hard, false},
		{"failed", "5.1.0", "550 5.1.0 Address rejected", feedback.Hard, false},
		{"", "5.1.1", "", feedback.Hard, false}, // Action missing: a failure
		{"failed", "5.0.0", "smtp; 550 User unknown", feedback.Hard, false},
		{"failed", "5.0.0", "smtp; 553 sorry, that domain isn't in my list of allowed rcpthosts", feedback.Hard, false},
		{"failed", "5.0.0", "smtp; 552 1 Requested mail action aborted, mailbox not found", feedback.Hard, false},
		{"failed", "5.0.0", "smtp; 554 delivery error: dd This user doesn't have a yahoo.com account", feedback.Hard, false},
		{"failed", "", "550 5.1.1 <a@b>: Recipient address rejected", feedback.Hard, false},
		{"failed", "5.0.0", "smtp; 550 5.1.1 no such user", feedback.Hard, false}, // generic Status, precise diagnostic
		// Our own address or message: the sender's fault.
		{"failed", "5.1.7", "550 5.1.7 bad sender address syntax", feedback.Policy, false},
		{"failed", "5.1.8", "550 5.1.8 sender domain does not exist", feedback.Policy, false},
		{"failed", "5.2.3", "552 5.2.3 message too large", feedback.Policy, false},
		{"failed", "5.3.4", "552 5.3.4 message size exceeds fixed limit", feedback.Policy, false},
		{"failed", "5.6.0", "554 5.6.0 Message contains invalid header", feedback.Policy, false},
		// Soft: may pass.
		{"failed", "4.4.1", "X-Postfix; connect to mx.example.jp[203.0.113.7]:25: Connection timed out", feedback.Soft, false},
		{"failed", "4.2.2", "452 4.2.2 Mailbox full", feedback.Soft, false},
		{"failed", "4.4.7", "smtp; 421 try again later", feedback.Soft, false},
		{"failed", "5.2.2", "552 5.2.2 The recipient's inbox is out of storage space", feedback.Soft, false},
		{"failed", "5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", feedback.Soft, false},
		{"failed", "5.4.4", "Host or domain name not found", feedback.Soft, false},
		{"failed", "5.3.0", "", feedback.Soft, false},
		{"failed", "5.5.0", "554 5.5.0 transaction failed", feedback.Soft, false},
		{"failed", "5.0.0", "smtp; 554 transaction failed", feedback.Soft, false},
		{"failed", "", "", feedback.Soft, false},
		// Policy and authentication.
		{"failed", "5.7.26", "550-5.7.26 This mail is unauthenticated", feedback.Policy, true},
		{"failed", "5.7.515", "550 5.7.515 Access denied, sending domain does not meet the required authentication level", feedback.Policy, true},
		{"failed", "5.7.27", "550 5.7.27 sender address does not pass SPF", feedback.Policy, true},
		{"failed", "5.7.25", "550 5.7.25 The IP address sending this message does not have a PTR record", feedback.Policy, true},
		{"failed", "5.7.1", "550 5.7.1 Message rejected as spam", feedback.Policy, false},
		{"failed", "5.7.1", "550-5.7.1 Messages missing a valid Message-ID header are not accepted", feedback.Policy, false},
		{"failed", "4.7.0", "421 4.7.0 [TSS04] temporarily deferred due to user complaints", feedback.Policy, false},
		{"failed", "4.7.26", "421 4.7.26 unauthenticated", feedback.Policy, false}, // temporary: not a refusal
		{"failed", "5.0.0", "smtp; 550 Your mail was blocked: policy violation (spam)", feedback.Policy, false},
		{"failed", "", "550 5.7.26 unauthenticated", feedback.Policy, true}, // code from the diagnostic
		// Not failures.
		{"delayed", "4.7.0", "421 4.7.0 try again", feedback.Delayed, false},
		{"Delivered", "2.0.0", "", feedback.Delivered, false},
		{"relayed", "2.0.0", "", feedback.Delivered, false},
		{"expanded", "2.0.0", "", feedback.Delivered, false},
		{"failed", "2.0.0", "", feedback.Delivered, false},
	}
	for _, c := range cases {
		class, auth := feedback.Classify(c.action, c.status, c.diag)
		if class != c.class || auth != c.auth {
			t.Errorf("Classify(%q, %q, %q) = %s, %v; want %s, %v", c.action, c.status, c.diag, class, auth, c.class, c.auth)
		}
	}
}

func TestClassifyFeedback(t *testing.T) {
	cases := map[string]feedback.Class{
		"abuse": feedback.Complaint, "Abuse ": feedback.Complaint, "fraud": feedback.Complaint, "other": feedback.Complaint,
		"virus": feedback.Policy, "auth-failure": feedback.Policy,
		"not-spam": feedback.Unknown, "": feedback.Unknown, "opt-out": feedback.Unknown,
	}
	for in, want := range cases {
		if got := feedback.ClassifyFeedback(in); got != want {
			t.Errorf("ClassifyFeedback(%q) = %s, want %s", in, got, want)
		}
	}
}
