package testutil

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestSentinelSwitchOverSurvivesAStall stalls the Sentinel for 2.5 s
// (SIGSTOP, as a process starved of CPU or blocked in an fsync) just
// after an operator's switch-over was asked of it: it enters TILT mode,
// in which it does not act. With Sentinel's default TILT period (30 s)
// the switch-over then took over 30 s (TestSendSurvivesRedisFailover's
// switch-over failed so about once in four full runs); it must complete
// well before that.
func TestSentinelSwitchOverSurvivesAStall(t *testing.T) {
	rs := StartRedisSentinel(t)
	ctx := context.Background()
	old, err := rs.Failover(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rs.mu.Lock()
	p := rs.procs[rs.sentinel]
	rs.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	now, err := rs.WaitPrimaryChange(ctx, old, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switched over from %s to %s %v after the stall", old, now, time.Since(start).Round(time.Millisecond))
}
