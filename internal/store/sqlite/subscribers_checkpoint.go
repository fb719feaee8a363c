package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
)

// subCheckpointer copies an import's WAL into the database file on a
// connection of its own, while the import's connection writes the next
// batch. A commit that checkpoints itself (SQLite's default, every 1000
// pages) does that copying, and the fsync after it, on the writer's time;
// for the writer of a bulk import that is a quarter of SQLite's work
// (BenchmarkImportFloor: 160,000 rows/s with the C engine, 200,000 with
// the copying on the other core).
//
// A passive checkpoint cannot restart the WAL while the writer keeps
// appending to it: the file is reused from its start only by a write
// transaction that begins after a checkpoint has copied every frame. So
// every subSyncEvery batches the import waits for a checkpoint of all it
// has committed, and the WAL stays within about that many batches
// instead of growing by the whole file.
type subCheckpointer struct {
	req     chan chan error // nil: checkpoint when free; else: checkpoint now and reply
	done    chan struct{}
	batches int // committed since the last sync
}

// subSyncEvery is the number of batches between waits for a full checkpoint.
// 4 batches of 20,000 readers are about 50 MB of WAL (SQLite's own
// checkpoints let it reach 4 MB; the import used to allow 64 MB).
const subSyncEvery = 4

func subStartCheckpointer(ctx context.Context, db *sql.DB, log *slog.Logger) (*subCheckpointer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint connection: %w", err)
	}
	c := &subCheckpointer{req: make(chan chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer conn.Close()
		for reply := range c.req {
			// The WAL's frames, and how many are in the database file. A
			// reader holding an older snapshot (a worker, the web server)
			// can leave some behind; the WAL is then only longer.
			var busy, frames, copied int64
			err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
			if err == nil && copied < frames && reply != nil {
				log.DebugContext(ctx, "import: checkpoint left frames for a reader", "frames", frames, "copied", copied)
			}
			if err != nil {
				log.DebugContext(ctx, "import: checkpoint", "err", err)
			}
			if reply != nil {
				reply <- err
			}
		}
	}()
	return c, nil
}

// committed tells the subCheckpointer that a batch committed: it starts a
// checkpoint if none is running, and every subSyncEvery batches it waits for
// one that copies everything.
func (c *subCheckpointer) committed() {
	c.batches++
	if c.batches >= subSyncEvery {
		c.sync() // a failure only leaves the WAL longer: it is logged
		return
	}
	select {
	case c.req <- nil:
	default: // one is queued already
	}
}

// sync checkpoints everything committed so far and waits for it. Its
// error (the database's, or ctx's) is worth a log line, not failing an
// import whose rows have committed.
func (c *subCheckpointer) sync() error {
	c.batches = 0
	reply := make(chan error, 1)
	c.req <- reply
	return <-reply
}

// stop ends the subCheckpointer and waits for it.
func (c *subCheckpointer) stop() {
	close(c.req)
	<-c.done
}
