package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/web"
)

// newInitCmd is `tayori init`: the first set-up, and the only command
// that creates the database.
func newInitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the database and its tables (first set-up)",
		Long: `Create the SQLite database named by TAYORI_DB (default
<TAYORI_DATA_DIR>/tayori.db), its directory and every table, and the secret
for links in <TAYORI_DATA_DIR>/secret unless TAYORI_SECRET or
TAYORI_SECRET_FILE sets one.

Every other command needs the database and refuses to run without it, so
that a mistyped TAYORI_DB, a wrong TAYORI_DATA_DIR or a deleted file is an
error instead of a new, empty database. On an existing database, init only
brings its tables up to date.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, path, created, err := a.createDB(ctx)
			if err != nil {
				return err
			}
			if _, err := a.subscriberStore(ctx); err != nil {
				return err
			}
			if _, err := a.ledger(ctx); err != nil {
				return err
			}
			if _, err := web.OpenStore(ctx, db, time.Now); err != nil {
				return err
			}
			if created {
				fmt.Fprintf(a.stdout, "created the database %s\n", path)
			} else {
				fmt.Fprintf(a.stdout, "the database %s exists; its tables are up to date\n", path)
			}
			return nil
		},
	}
}
