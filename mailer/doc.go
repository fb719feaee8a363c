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
// of a write and of a read per message rather than a round trip.
//
// Replies are paired with commands by position, so each is checked
// against its command (pipeline.go): a reply that cannot belong to it (a
// 5.5.x "bad command" or "bad sequence" to RSET, MAIL or the data, a 3xx,
// data accepted without a recipient) means the session is out of step;
// only the reply to a reader's own RCPT, or to the data of its own
// transaction, settles that reader as refused. Before it pipelines, a
// Pool asks the relay once whether it reads a BDAT chunk it refuses (RFC
// 3030 says it must; some relays take the chunk's lines for commands);
// if not, it sends with DATA. Should such a relay still answer a refused
// chunk's lines, the client skips exactly those stray replies and stays
// in step.
//
// A Conn re-dials when the connection turns out dead (the relay closed it
// while idle, with "421" or silently: EOF or a reset before the first
// reply) or out of step, and writes again, at once, the messages that
// cannot have been accepted, without the caller seeing an error. A
// connection lost after the relay began answering leaves the outstanding
// messages' fates unknown: they fail with a *ConnError (temporary), and a
// retry can duplicate at most those. PoolOptions.Limiter and
// PoolOptions.Slots let the caller plug in a global rate limit and
// connection cap.
//
// # Timeouts and the circuit breaker
//
// Every wait is bounded (PoolOptions, each with its default): the connect
// (DialTimeout, 10s), the greeting with EHLO, STARTTLS and AUTH
// (GreetingTimeout, 30s), each reply to a command (CommandTimeout, 30s),
// and the reply to a message's data, a write, and in a pipeline each
// transaction's replies (DataTimeout, 2 minutes). A circuit breaker per
// Pool opens after BreakerThreshold (3) connection-level failures in a
// row with no message answered in between: for BreakerCooldown (10s)
// dials fail at once with an *UnavailableError; then one probe dial goes
// through, and its success closes the breaker. OnRelayState reports the
// changes ("unreachable since 12:03: connection refused"; back).
//
// # Outcomes
//
// Conn.Send returns the relay's Reply ("250 2.0.0 Ok: queued as X") for an
// accepted message. Errors are classified with IsTemporary (4xx, network,
// cancelled: retry), IsPermanent (5xx: do not retry), IsBadMailbox (5.1.x, or
// 550/551/553 at RCPT without an enhanced code: mark the address bounced) and
// IsPolicy (5.7.x: pause the send and tell a person; never mark the address
// bounced). errors.Is(err, ErrRelayUnavailable) says the relay could not be
// reached at all (a failed dial, a 4xx at connection time, the open
// breaker): nothing was sent, and it is no fault of the recipient's.
package mailer
