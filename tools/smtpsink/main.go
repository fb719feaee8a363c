// Command smtpsink runs an SMTP server that accepts and discards every
// message, counting messages, bytes and the first and last acceptance times,
// with the counts as JSON over HTTP. It is the common target for throughput
// benchmarks:
//
//	go run ./tools/smtpsink -addr 127.0.0.1:2525 -stats 127.0.0.1:2526
//	curl -s 127.0.0.1:2526/stats          # {"messages":…,"per_second":…}
//	curl -s -X POST 127.0.0.1:2526/reset
//
// It stops on SIGINT or SIGTERM and prints the final stats to stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tayori-news/tayori/internal/smtpsink"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "smtpsink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("smtpsink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:2525", "SMTP listen address")
	statsAddr := fs.String("stats", "127.0.0.1:2526", "HTTP stats listen address (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sink := smtpsink.New(logger)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	var hs *http.Server
	if *statsAddr != "" {
		hl, err := net.Listen("tcp", *statsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen %s: %w", *statsAddr, err)
		}
		hs = &http.Server{Handler: sink.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("stats server", "err", err)
			}
		}()
		logger.Info("smtpsink stats", "addr", hl.Addr().String())
	}
	logger.Info("smtpsink listening", "addr", ln.Addr().String())
	err = sink.Serve(ctx, ln)
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(sink.Stats())
	return err
}
