package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
)

// SubCheckpointer gives BenchmarkImportFloor the import's own
// checkpointer, so that the floor checkpoints exactly as the import does.
type SubCheckpointer struct{ c *subCheckpointer }

func SubStartCheckpointer(ctx context.Context, db *sql.DB) (SubCheckpointer, error) {
	c, err := subStartCheckpointer(ctx, db, slog.New(slog.DiscardHandler))
	return SubCheckpointer{c}, err
}

func (c SubCheckpointer) Committed()  { c.c.committed() }
func (c SubCheckpointer) Sync() error { return c.c.sync() }
func (c SubCheckpointer) Stop()       { c.c.stop() }

// SubRecipientsQuery is the delivery query, for its plan test.
var SubRecipientsQuery = subRecipientsQuery
