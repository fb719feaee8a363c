// Package mailer turns a message into bytes and sends bytes over SMTP. It
// knows nothing of newsletters.
//
// # Building
//
// A Message is one copy for one recipient. A Builder writes it as RFC 5322
// bytes in go-mail's (github.com/wneessen/go-mail) format: multipart/alternative with
// text/plain first and text/html last, UTF-8, base64, CRLF line ends, header
// lines folded to at most 78 octets, Japanese Subject and display names as
// RFC 2047 B-encoded words of whole characters, exactly one of each required
// header, a Date from the injected clock at build (send) time, and a
// Message-ID of 128 random bits on the sender's domain. List headers follow
// RFC 2369, 2919 and 8058 (List-Unsubscribe with an https one-click URL and
// List-Unsubscribe-Post: List-Unsubscribe=One-Click). Any header value holding
// CR, LF or another control character is refused with a *ValidationError
// naming the field.
//
// go-mail's Msg.WriteTo (BuilderOptions.GoMailWriter) is the reference
// writer; the default direct writer appends byte-identical output into one
// buffer about four times faster (tests and a fuzz target compare the two).
//
//	b, _ := mailer.NewBuilder(mailer.BuilderOptions{DKIM: signer})
//	built, err := b.Build(&mailer.Message{
//		From:           mailer.Address{Name: "AI政策動向", Email: "newsletter@news.example.go.jp"},
//		To:             mailer.Address{Email: "taro@example.jp"},
//		Subject:        "【2026年2月号】AI政策動向",
//		ListID:         "ai-policy-monthly.news.example.go.jp",
//		UnsubscribeURL: "https://news.example.go.jp/u/TOKEN",
//		FeedbackID:     "2026-02:monthly:aipolicy:jpaipol01",
//		Text:           text, HTML: html,
//	})
//
// # Many copies of one body
//
// A bulk send builds the same body for thousands of readers, each with a
// few personal values (a greeting, two links). A Layout holds a body
// part's fixed text, validated and in canonical form once; a Message's
// TextBody and HTMLBody pair a Layout with one copy's values. The Builder
// then encodes only the values and the base64 lines that straddle them,
// and copies the rest from lines it encoded once per line alignment (kept
// within a process-wide budget). The bytes are identical to building the
// same text through Text and HTML (tests and a fuzz target compare them);
// for the November sample this cut the worker's CPU per copy by a third.
//
// # DKIM
//
// A DKIMSigner (RSA or Ed25519 key from a PEM file) signs the finished bytes
// with github.com/emersion/go-msgauth/dkim, relaxed/relaxed, covering
// DKIMHeaderKeys (From oversigned, both List-Unsubscribe headers included).
// go-mail's own signer is not used: it folds a long h= tag inside a header
// name and breaks exactly when the unsubscribe headers are signed. The signed
// bytes are sent unchanged.
//
// # Sending
//
// ParseSMTPURL reads TAYORI_SMTP_URL (smtp:// with STARTTLS required unless
// tls= says otherwise, or smtps://). A Pool keeps connections (go-mail's
// smtp.Client from DialToSMTPClientWithContext) for reuse: each sending
// goroutine holds one Conn and sends many messages on it, one recipient per
// transaction, with no NOOP or RSET on the happy path; MAIL, RCPT and DATA
// are pipelined (RFC 2920) when the relay offers it. With CHUNKING (RFC 3030)
// as well, Conn.Start goes further: it gathers PipelineWindow whole
// transactions (RSET, MAIL, RCPT, "BDAT n LAST" and the message) and writes
// them at once; with two such windows out it reads the older one's replies
// and hands each to its callback in order. A bulk sender then pays a share
// of a write and of a read per message rather than a round trip. A Conn
// re-dials after a connection failure. PoolOptions.Limiter and
// PoolOptions.Slots let the caller plug in a global rate limit and
// connection cap.
//
// # Outcomes
//
// Conn.Send returns the relay's Reply ("250 2.0.0 Ok: queued as X") for an
// accepted message. Errors are classified with IsTemporary (4xx, network,
// cancelled: retry), IsPermanent (5xx: do not retry), IsBadMailbox (5.1.x, or
// 550/551/553 at RCPT without an enhanced code: mark the address bounced) and
// IsPolicy (5.7.x: pause the send and tell a person; never mark the address
// bounced).
package mailer
