package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// openDB opens the SQLite database once; it is closed when run returns.
// Each package's store applies its own migrations when it opens.
func (a *app) openDB(ctx context.Context) (*sql.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	path, err := sqlitedb.PathFromURL(a.cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("TAYORI_DB: %w", err)
	}
	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	a.db = db
	a.closers = append(a.closers, db.Close)
	return db, nil
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
