package subscribers

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/tayori-news/tayori/internal/sqlitedb"
)

// goMigrations are the migrations SQL alone cannot express. They are
// applied in version order with the files in migrations/.
func goMigrations() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(3,
			&goose.GoFunc{RunDB: derivePublicIDsUp},
			&goose.GoFunc{RunDB: derivePublicIDsDown}),
	}
}

// Migration 3: public ids derived from the row id.
//
// Until version 2 every subscriber stored a random public id under a
// UNIQUE index. Random keys land all over that index, so a large import
// dirtied most of its pages in every transaction: at 1,000,000 rows it was
// three quarters of SQLite's time (BenchmarkImportFloor). From version 3
// a new subscriber stores no public id (NULL, outside the partial index);
// it is computed from the id with a block cipher under a key kept in the
// database (publicIDs). Subscribers created before keep their stored id,
// so every link already sent still resolves.
//
// SQLite cannot drop NOT NULL or UNIQUE from a column in place: the table
// is rebuilt, following https://sqlite.org/lang_altertable.html#otheralter.
// The rebuild runs with foreign keys off on one connection, or dropping
// the old table would cascade into memberships, consents, history and
// tags.

// subscribersTable is the CREATE TABLE of subscribers, under name, with
// public_id declared as publicID: "TEXT" from version 3 on, "TEXT NOT
// NULL UNIQUE" before. The rest is 0001_init.sql's.
func subscribersTable(name, publicID string) string {
	return `CREATE TABLE ` + name + ` (
    id          INTEGER PRIMARY KEY,
    public_id   ` + publicID + `,
    email       TEXT,
    email_key   TEXT    UNIQUE,
    name        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    regions     INTEGER NOT NULL,
    topics      INTEGER NOT NULL,
    confirm_seq INTEGER NOT NULL DEFAULT 0,
    legal_hold  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    status_at   TEXT    NOT NULL,
    erased_at   TEXT
)`
}

// subscriberColumns are the columns a rebuild copies.
const subscriberColumns = `id, public_id, email, email_key, name, status, regions, topics, confirm_seq, legal_hold,
    created_at, updated_at, status_at, erased_at`

func derivePublicIDsUp(ctx context.Context, db *sql.DB) error {
	return rebuildSubscribers(ctx, db, true, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS store_keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID`); err != nil {
			return err
		}
		// public_id NULL: derived from id (publicIDs).
		if _, err := tx.ExecContext(ctx, subscribersTable("subscribers_v3", "TEXT")); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscribers_v3 (`+subscriberColumns+`) SELECT `+subscriberColumns+` FROM subscribers`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE subscribers`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE subscribers_v3 RENAME TO subscribers`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE UNIQUE INDEX subscribers_public_id ON subscribers (public_id) WHERE public_id IS NOT NULL`)
		return err
	})
}

// derivePublicIDsDown stores every derived public id, so that links keep
// working under version 2, and restores the NOT NULL UNIQUE column.
func derivePublicIDsDown(ctx context.Context, db *sql.DB) error {
	return rebuildSubscribers(ctx, db, false, func(ctx context.Context, tx *sql.Tx) error {
		pids, err := loadPublicIDKey(ctx, tx)
		if err != nil {
			return err
		}
		if pids.block != nil {
			ids, err := sqlitedb.QueryColumn[int64](ctx, tx, `SELECT id FROM subscribers WHERE public_id IS NULL`)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET public_id = ? WHERE id = ?`, pids.of(id), id); err != nil {
					return err
				}
			}
		}
		for _, q := range []string{
			subscribersTable("subscribers_v2", "TEXT NOT NULL UNIQUE"),
			`INSERT INTO subscribers_v2 (` + subscriberColumns + `) SELECT ` + subscriberColumns + ` FROM subscribers`,
			`DROP TABLE subscribers`,
			`ALTER TABLE subscribers_v2 RENAME TO subscribers`,
			`DROP TABLE IF EXISTS store_keys`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// rebuildSubscribers runs rebuild in an immediate transaction on one
// connection with foreign keys off, checks the foreign keys before
// committing and turns them back on. It does nothing if public_id's NOT
// NULL is already what up wants, which makes the migration safe to run
// twice (two processes migrating a fresh file at once).
func rebuildSubscribers(ctx context.Context, db *sql.DB, up bool, rebuild func(context.Context, *sql.Tx) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() {
		if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
			err = ferr
		}
	}()
	tx, err := conn.BeginTx(ctx, nil) // immediate (the driver's _txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var notNull int
	if err := tx.QueryRowContext(ctx, `SELECT "notnull" FROM pragma_table_info('subscribers') WHERE name = 'public_id'`).Scan(&notNull); err != nil {
		return fmt.Errorf("subscribers.public_id: %w", err)
	}
	if (notNull == 0) == up {
		return nil // done already
	}
	if err := rebuild(ctx, tx); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	bad := rows.Next()
	rows.Close()
	if bad {
		return fmt.Errorf("rebuilding subscribers broke a foreign key")
	}
	return tx.Commit()
}
