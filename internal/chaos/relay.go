package chaos

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tayori-news/tayori/internal/testutil"
)

// relay is the fault relay: the in-process test SMTP server
// (internal/testutil) on loopback with the run's faults. Its record of
// accepted messages (envelope, time, connection and client address, in
// order) is the truth the run's figures are counted against; on top of it
// the relay remembers which readers it answered 5xx and counts its other
// refusals.
type relay struct {
	srv  *testutil.SMTPServer
	seed uint64
	perm float64

	mu      sync.Mutex
	rng     *rand.Rand
	refused map[string]time.Time // address → first 5xx answer

	rcpt4xx, chunk4xx, rcpt5xx atomic.Int64
}

// acceptText is the relay's 250 text; the ledger keeps it as the copy's
// reply, which names the accepted message by its sequence number.
const acceptText = "chaos queued as %d"

func startRelay(cfg Config) (*relay, error) {
	r := &relay{seed: cfg.Seed, perm: cfg.Permanent, refused: map[string]time.Time{},
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	opts := []testutil.SMTPOption{
		testutil.WithoutBodies(),
		testutil.WithAcceptText(acceptText),
		testutil.WithRefusedChunk(cfg.RefusedChunk),
		testutil.FailFunc(func(rcpt string, _ int) *testutil.Fault {
			if !r.refuses(rcpt) {
				return nil
			}
			r.rcpt5xx.Add(1)
			r.mu.Lock()
			if _, ok := r.refused[strings.ToLower(rcpt)]; !ok {
				r.refused[strings.ToLower(rcpt)] = time.Now()
			}
			r.mu.Unlock()
			f := testutil.Reply(550, "5.1.1", "no such user (chaos)")
			return &f
		}),
		testutil.FailFunc(func(_ string, attempt int) *testutil.Fault {
			if attempt > cfg.TransientMaxAttempt {
				return nil
			}
			r.mu.Lock()
			x := r.rng.Float64()
			r.mu.Unlock()
			switch {
			case x < cfg.Transient:
				r.rcpt4xx.Add(1)
				f := testutil.Reply(451, "4.3.0", "try again later (chaos)")
				return &f
			case x < cfg.Transient+cfg.ChunkTransient:
				r.chunk4xx.Add(1)
				return &testutil.Fault{Code: 451, Enhanced: "4.3.0", Text: "chunk refused, try again later (chaos)", AtData: true}
			}
			return nil
		}),
	}
	if cfg.IdleTimeout > 0 {
		opts = append(opts, testutil.WithIdleTimeout(cfg.IdleTimeout, true))
	}
	srv, err := testutil.ListenSMTP("127.0.0.1:0", opts...)
	if err != nil {
		return nil, fmt.Errorf("fault relay: %w", err)
	}
	r.srv = srv
	return r, nil
}

// refuses reports whether the relay refuses addr for good: a fixed share
// of the addresses, chosen by a seeded hash, so that the same readers are
// refused on every attempt and in every run with the same seed.
func (r *relay) refuses(addr string) bool {
	if r.perm <= 0 {
		return false
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", r.seed, strings.ToLower(addr))
	return float64(h.Sum64()%1_000_000)/1_000_000 < r.perm
}

// answered5xx returns the addresses the relay has answered 5xx, with the
// first time.
func (r *relay) answered5xx() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.refused))
	for k, v := range r.refused {
		out[k] = v
	}
	return out
}

func (r *relay) close() { _ = r.srv.Close() }
