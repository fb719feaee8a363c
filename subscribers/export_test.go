package subscribers

import (
	"context"
	"database/sql"
	"log/slog"
)

// Checkpointer gives BenchmarkImportFloor the import's own checkpointer,
// so that the floor checkpoints exactly as the import does.
type Checkpointer struct{ c *checkpointer }

func StartCheckpointer(ctx context.Context, db *sql.DB) (Checkpointer, error) {
	c, err := startCheckpointer(ctx, db, slog.New(slog.DiscardHandler))
	return Checkpointer{c}, err
}

func (c Checkpointer) Committed()  { c.c.committed() }
func (c Checkpointer) Sync() error { return c.c.sync() }
func (c Checkpointer) Stop()       { c.c.stop() }
