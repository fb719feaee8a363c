package main

import (
	"database/sql"
	"io"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/tayori-news/tayori/internal/config"
)

// app carries what every command needs: the effective configuration, the
// logger and the standard streams. Resources (database, Redis) are opened
// on demand by the commands that need them, through the methods in
// resources.go, and closed when run returns.
type app struct {
	cfg    config.Config
	logger *slog.Logger
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	db      *sql.DB
	rdb     redis.UniversalClient
	closers []func() error
}
