// Package testutil holds helpers that hand tests real infrastructure instead of
// mocks.
//
// SMTP: StartSMTP runs a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1:0 inside the test process. It records every accepted message
// (envelope and raw bytes exactly as received), counts connections, and can be
// told to misbehave per recipient or at random with a seed: answer 4xx or 5xx
// with an enhanced status code, drop the connection, or answer slowly. It can
// require AUTH PLAIN and offer STARTTLS or implicit TLS with a generated
// self-signed certificate. Connections() counts TCP connections (to prove
// reuse) and DropConnections() closes them all from the server side, as a
// restarting relay would. The server is closed by tb.Cleanup.
//
// Faults of the relay as a whole (smtpserver_faults.go), for the mailer's
// tests and the chaos suite:
//
//   - WithRefusedChunk(ChunkAsCommands or ChunkAsCommandsNoLimit): the
//     server does not read the chunk of a BDAT it refuses (no valid
//     recipient) but takes its lines for commands, answering each out of
//     step; with go-smtp's limit it hangs up after four bad commands,
//     without it the transactions behind are then processed. The default,
//     ChunkDrained, reads and drops the chunk as RFC 3030 asks.
//     UndrainedChunks counts them.
//   - WithIdleTimeout(d, reply421): close a connection idle for d, after
//     "421 4.4.2 Idle timeout" or silently. IdleDrops counts them.
//   - Hang: accept connections but never greet them, and stop answering
//     open ones. Refuse: close the listening socket (connection refused)
//     and drop open connections. Restore undoes either; DownFor(d) is
//     Refuse now and Restore after d.
//
// ListenSMTP runs the same server outside a test, on a given address,
// until Close.
//
//	srv := testutil.StartSMTP(t, testutil.FailRcpt("gone@example.jp",
//		testutil.Reply(550, "5.1.1", "no such user")))
//	// point the sender at srv.URL() and send ...
//	msgs := srv.WaitFor(1, 5*time.Second)
//	testutil.CheckMessage(t, msgs[0].Raw, testutil.MessageWant{...})
//
// CheckMessage is the one copy of the deliverability checklist's message
// checks (items 1–13 and 16, and 14–15 when a DKIM key is given) used by every
// package's tests.
//
// Redis: see redis.go.
package testutil
