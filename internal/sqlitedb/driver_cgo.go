//go:build sqlite_cgo

package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Engine names the SQLite engine this binary links.
const Engine = "github.com/mattn/go-sqlite3 (C, cgo)"

const cgoDriver = "tayori_sqlite3"

func init() {
	sql.Register(cgoDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			for _, p := range pragmas {
				if _, err := c.Exec("PRAGMA "+p, nil); err != nil {
					return fmt.Errorf("PRAGMA %s: %w", p, err)
				}
			}
			return nil
		},
	})
}

func openDB(path string) (*sql.DB, error) {
	return sql.Open(cgoDriver, "file:"+path+"?_txlock=immediate")
}

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrBusy
}

func isFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

func isUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}
