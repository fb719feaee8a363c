package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tayori-news/tayori/internal/metrics"
)

// processMetrics returns the process's metrics, made once: one registry,
// handed to the queue, the mailer's pool, the web server and the metrics
// listener.
func (a *app) processMetrics() *metrics.Metrics {
	if a.mx == nil {
		a.mx = metrics.New(a.logger)
	}
	return a.mx
}

// withMetrics adds the metrics listener (TAYORI_METRICS_ADDR) to a
// long-running command's services, when one is configured.
func (a *app) withMetrics(services []runService) []runService {
	if a.cfg.MetricsAddr == "" {
		return services
	}
	return append(services, runService{name: "metrics", run: a.serveMetrics})
}

// serveMetrics serves /metrics (and nothing else) on TAYORI_METRICS_ADDR
// until ctx ends. It prints the address it listens on, so that a port of
// 0 can be used.
func (a *app) serveMetrics(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("TAYORI_METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.processMetrics().Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	fmt.Fprintf(a.stdout, "tayori: metrics listening on http://%s/metrics\n", ln.Addr())
	a.logger.Info("metrics listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
