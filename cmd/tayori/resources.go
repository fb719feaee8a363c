package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/internal/config"
	"github.com/tayori-news/tayori/internal/logging"
	"github.com/tayori-news/tayori/internal/redisurl"
	"github.com/tayori-news/tayori/internal/sqlitedb"
	"github.com/tayori-news/tayori/internal/store"
)

// addGlobalFlags declares the flags every command accepts.
func addGlobalFlags(root *cobra.Command) {
	root.PersistentFlags().String("config", "", "YAML configuration file (overrides TAYORI_CONFIG)")
	root.PersistentFlags().String("log-level", "", "debug, info, warn or error (overrides TAYORI_LOG_LEVEL)")
}

// setup loads and validates the configuration, builds the logger and
// makes sure the secret for links exists (generating it on first use),
// once, before any command runs.
func (a *app) setup(cmd *cobra.Command) error {
	if err := a.loadConfig(cmd); err != nil {
		return err
	}
	return a.cfg.EnsureSecret()
}

// loadConfig loads and validates the configuration and builds the logger,
// once, and writes nothing: `tayori config` runs only this.
func (a *app) loadConfig(cmd *cobra.Command) error {
	if a.logger != nil {
		return nil
	}
	file, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(a.getenv, file)
	if err != nil {
		return err
	}
	if lv, _ := cmd.Flags().GetString("log-level"); lv != "" {
		cfg.LogLevel = lv
	}
	a.cfg = cfg
	a.logger = logging.NewIn(a.stderr, cfg.LogLevel, cfg.LogFormat, a.location())
	return nil
}

// openStore opens the database TAYORI_DB names once (SQLite or
// PostgreSQL) and brings its schema up to date (store.Migrate); it is
// closed when run returns. A SQLite database must exist: only `tayori
// init` creates it (createDB), so that a mistyped TAYORI_DB or a deleted
// file is an error, not a new empty database.
func (a *app) openStore(ctx context.Context) (*store.DB, error) {
	if a.store != nil {
		return a.store, nil
	}
	db, err := store.Open(ctx, a.cfg.DB)
	if errors.Is(err, sqlitedb.ErrNoDatabase) {
		return nil, fmt.Errorf("%w: create it with `tayori init` (TAYORI_DB is %s), or point TAYORI_DB or TAYORI_DATA_DIR at your database", err, a.cfg.DB)
	}
	if err != nil {
		return nil, fmt.Errorf("TAYORI_DB: %w", err)
	}
	if err := store.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, migrateError(err)
	}
	return db, a.keepDB(db)
}

// migrateError names TAYORI_DB in store.Migrate's error, and says what to
// do about a schema from a newer tayori (store.ErrNewerSchema).
func migrateError(err error) error {
	if errors.Is(err, store.ErrNewerSchema) {
		return fmt.Errorf("TAYORI_DB: %w; this tayori (version %s) is older than the one that last migrated the database: run the newer binary, or restore a backup", err, version)
	}
	return fmt.Errorf("TAYORI_DB: %w", err)
}

// openDB is openStore's *sql.DB, for the packages that take one.
func (a *app) openDB(ctx context.Context) (*sql.DB, error) {
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	return db.SQL, nil
}

// createDB opens the database, creating a SQLite file (and its
// directory) if need be, and applies the schema: for `tayori init` only.
// created says whether a SQLite file was new.
func (a *app) createDB(ctx context.Context) (db *sql.DB, path string, created bool, err error) {
	if a.store != nil {
		return a.store.SQL, a.store.Display, false, nil
	}
	engine, target, err := store.Parse(a.cfg.DB)
	if err != nil {
		return nil, "", false, fmt.Errorf("TAYORI_DB: %w", err)
	}
	path = store.Redact(target)
	var statErr error
	if engine == store.SQLite {
		path = target
		_, statErr = os.Stat(path)
	}
	sdb, err := store.Create(ctx, a.cfg.DB)
	if err != nil {
		return nil, "", false, fmt.Errorf("TAYORI_DB: %w", err)
	}
	if err := store.Migrate(ctx, sdb); err != nil {
		sdb.Close()
		return nil, "", false, migrateError(err)
	}
	return sdb.SQL, path, errors.Is(statErr, fs.ErrNotExist), a.keepDB(sdb)
}

// keepDB makes db the process's database, closed when run returns, and
// starts watching its file if it is SQLite (see watchStore).
func (a *app) keepDB(db *store.DB) error {
	a.store = db
	a.db = db.SQL
	a.closers = append(a.closers, db.Close)
	if db.Engine != store.SQLite {
		return nil
	}
	w, err := sqlitedb.WatchFile(db.Path)
	if err != nil {
		return err
	}
	a.dbWatch = w
	return nil
}

// watchStoreService opens the database and watches it (watchStore). The
// long-running commands build it first, so that the watch can halt the
// worker's deliveries.
func (a *app) watchStoreService(ctx context.Context) (runService, error) {
	if _, err := a.openStore(ctx); err != nil {
		return runService{}, err
	}
	return runService{name: "store", run: a.watchStore}, nil
}

// storeCheckEvery is how often a long-running command checks that its
// database file is still the one it opened.
const storeCheckEvery = 500 * time.Millisecond

// watchStore is a service of the long-running commands (worker, serve,
// run): it fails, stopping the others, as soon as the database file they
// opened is deleted or replaced under them. They would otherwise go on
// sending and recording outcomes into a file nobody will read again (a
// deleted file lives on, unseen, while it is open). The database must be
// open before it starts.
func (a *app) watchStore(ctx context.Context) error {
	if a.store != nil && a.store.Engine != store.SQLite {
		<-ctx.Done() // a server's database: no file to watch
		return nil
	}
	if a.dbWatch == nil {
		return errors.New("store watch: the database is not open")
	}
	t := time.NewTicker(storeCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := a.dbWatch.Check(); err != nil {
			if a.delivery != nil {
				a.delivery.Halt(err) // now: a graceful shutdown lets running batches finish
			}
			a.logger.Error("the database file changed under the running process; stopping so that nothing more is sent",
				"path", a.dbWatch.Path(), "err", err)
			return fmt.Errorf("%w while tayori ran: stopped, so that nothing more is sent or recorded into a file "+
				"nobody will read; restore the file (or run `tayori init` for a new, empty one) and start again", err)
		}
	}
}

// redisClient connects to TAYORI_REDIS_URL once and checks that Redis
// answers. The one client is shared by Asynq (client, server, inspector),
// the rate limiter and connection cap, and the web limits. With the
// Sentinel form (redis+sentinel://…) it is a failover client that asks the
// Sentinels for the primary and follows it when they fail it over.
func (a *app) redisClient(ctx context.Context) (redis.UniversalClient, error) {
	if a.rdb != nil {
		return a.rdb, nil
	}
	opt, err := redisurl.Parse(a.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("TAYORI_REDIS_URL: %w", err)
	}
	redis.SetLogger(redisLogger{a.logger})
	c := opt.NewClient(redisClientName(), a.cfg.Concurrency+10)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis at %s does not answer (%w); start one with `make redis` or set TAYORI_REDIS_URL", opt, err)
	}
	a.rdb = c
	a.closers = append(a.closers, c.Close)
	return c, nil
}

// redisClients numbers the clients a process makes (one per command run;
// tests run several in one process).
var redisClients atomic.Int64

// redisClientName names a client's connections in CLIENT LIST:
// tayori-HOST-PID-N.
func redisClientName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return '_'
		}
		return r
	}, host)
	return fmt.Sprintf("tayori-%s-%d-%d", host, os.Getpid(), redisClients.Add(1))
}

// redisLogger hands go-redis's messages (for example the Sentinel's
// "new master" on a failover) to the process's logger.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.InfoContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "redis")
}

// close releases what the commands opened, newest first.
func (a *app) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
