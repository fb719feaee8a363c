package testutil

import (
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// PGCPU samples the CPU time of PostgreSQL processes on this machine: the
// backends of one database (the benchmark's own connections), and the
// server's background processes (WAL writer, checkpointer, …; shared with
// any other user of the server). It reads /proc for the pids
// pg_stat_activity lists, so the server must run on this machine and be
// sampled often enough (every 25 ms, say) to see short-lived backends.
type PGCPU struct {
	db         *sql.DB
	base, last map[int]time.Duration // per pid: at the start (or first seen), latest
	bg         map[int]bool
}

// NewPGCPU starts sampling the processes of db's database.
func NewPGCPU(db *sql.DB) *PGCPU {
	p := &PGCPU{db: db, base: map[int]time.Duration{}, last: map[int]time.Duration{}, bg: map[int]bool{}}
	p.Sample(true)
	return p
}

// Sample reads the CPU of every process of interest; with first it is
// the baseline (counting starts again from now), later a new backend
// starts from zero.
func (p *PGCPU) Sample(first bool) {
	rows, err := p.db.Query(`SELECT pid, datname IS NULL OR backend_type <> 'client backend' FROM pg_stat_activity
		WHERE datname = current_database() OR backend_type IN ('walwriter','checkpointer','background writer','autovacuum launcher','autovacuum worker')`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		var bg bool
		if rows.Scan(&pid, &bg) != nil {
			continue
		}
		cpu, ok := PidCPU(pid)
		if !ok {
			continue
		}
		if _, seen := p.base[pid]; first || !seen {
			if first || bg {
				p.base[pid] = cpu
			} else {
				p.base[pid] = 0
			}
		}
		p.last[pid], p.bg[pid] = cpu, bg
	}
}

// Used returns the CPU used since the start by backends and background.
func (p *PGCPU) Used() (backends, background time.Duration) {
	for pid, last := range p.last {
		if p.bg[pid] {
			background += last - p.base[pid]
		} else {
			backends += last - p.base[pid]
		}
	}
	return
}

// Poll samples every interval until stop is called, which takes a last
// sample.
func (p *PGCPU) Poll(interval time.Duration) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				p.Sample(false)
				return
			case <-t.C:
				p.Sample(false)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// PidCPU reads a process's user+system CPU time from /proc; ok is false
// if the process is gone.
func PidCPU(pid int) (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100, true // USER_HZ
}
