package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newInitCmd is `tayori init`: the first set-up, and the only command
// that creates the database.
func newInitCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the database and its tables (first set-up)",
		Long: `Create the database named by TAYORI_DB and every table, and the secret
for links in <TAYORI_DATA_DIR>/secret unless TAYORI_SECRET or
TAYORI_SECRET_FILE sets one. With SQLite (the default,
sqlite:<TAYORI_DATA_DIR>/tayori.db) init creates the file and its
directory; with PostgreSQL (postgres://user:pass@host:5432/db) the
database must exist (createdb) and init creates the tables in it.

Every other command needs the database and refuses to run without it, so
that a mistyped TAYORI_DB, a wrong TAYORI_DATA_DIR or a deleted file is an
error instead of a new, empty database. On an existing database, init only
brings its tables up to date.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, path, created, err := a.createDB(ctx)
			if err != nil {
				return err
			}
			if _, err := a.subscriberStore(ctx); err != nil {
				return err
			}
			if _, err := a.ledger(ctx); err != nil {
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
