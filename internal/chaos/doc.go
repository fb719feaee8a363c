// Package chaos is the chaos suite of issue 18: it runs the real tayori
// binary (one `tayori serve`, two `tayori worker`), a private redis-server
// with AOF on a spare loopback port and the fault relay (the in-process
// SMTP server of internal/testutil, on loopback), with the data directory
// on a size-limited tmpfs it mounts, sends the November sample to
// thousands of readers and meanwhile plays faults on a timeline: SIGKILLs
// of a worker, a Redis restart with its data, a Redis replaced by an
// empty one, the relay down, one-click unsubscribes of readers not yet
// sent, a full data disk, and the relay's error mix (4xx and 5xx on RCPT,
// refused chunks read as commands so that answers come out of step, idle
// connections closed with 421).
//
// Its figures are counted from the relay's own record of the messages it
// accepted (each with the connection and client port it came on) and from
// the store's ledger: readers expected, copies accepted exactly once,
// lost, duplicated, copies in flight at each kill, permanent failures
// recorded against the relay's 5xx answers, copies after an unsubscribe
// and time to finish.
//
// Copies in flight at a kill: just before the SIGKILL the run reads, from
// /proc/PID/fd and /proc/PID/net/tcp, the local ports of the worker's
// connections to the relay. The relay records each accepted message's
// client address and answers "250 2.0.0 chaos queued as N", N being the
// message's sequence number, which the ledger keeps as the copy's reply.
// A copy is in flight at the kill when the relay accepted it on one of
// those ports (within InFlightWindow before the kill, or as the relay
// read what the dead worker had already written) and the ledger never
// recorded it, that is no reader's recorded reply names its N: the
// worker died between the relay's answer and its record. Those copies,
// and those the relay accepted on the connections it dropped when it went
// down, are the duplicates a re-run may rightly make; any other extra copy
// is a defect.
//
// Run runs a scenario (Full for `make chaos`, Short for the test in
// `make test`); tools/chaos is its command line. It cleans up after
// itself (processes, the mount, Redis) on failure and on Ctrl-C too.
package chaos
