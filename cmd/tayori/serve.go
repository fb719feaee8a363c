package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/tayori-news/tayori/web"
)

// newServeCmd is `tayori serve`: the web server alone (subscribe, confirm,
// preferences, one-click unsubscribe, archive, console, API). Confirmation
// mails and sends are queued in Redis for `tayori worker` (or `tayori run`).
func newServeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the web server (subscribe, preferences, unsubscribe, archive, console, API)",
		Long: `Run the web server on TAYORI_HTTP_ADDR until SIGINT or SIGTERM.

Public pages: /subscribe, /confirm/TOKEN, /p/TOKEN (preferences),
/u/TOKEN (RFC 8058 one-click unsubscribe), /archive (with an Atom feed).
Editors sign in at /admin (create one with ` + "`tayori editors add NAME`" + `);
automation uses /api/v1 with a token from ` + "`tayori editors token NAME`" + `.
Mail is queued for a worker: run ` + "`tayori worker`" + ` as well, or ` + "`tayori run`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// Every service `tayori serve` starts.
			services, err := buildServices(ctx,
				a.watchStoreService,
				a.webService,
			)
			if err != nil {
				return stoppedWhileStarting(ctx, err)
			}
			return runAll(ctx, a, a.withMetrics(services))
		},
	}
}

// webService is the web server (webServer) listening until ctx ends.
func (a *app) webService(ctx context.Context) (runService, error) {
	srv, err := a.webServer(ctx)
	if err != nil {
		return runService{}, err
	}
	return runService{name: "web", run: func(ctx context.Context) error { return a.serveWeb(ctx, srv) }}, nil
}

// webServer wires the web handler to the subscriber store, the queue, the
// renderer, the send gate and Redis, and returns an http.Server for
// TAYORI_HTTP_ADDR with conservative timeouts. Both `serve` and `run` call
// it.
func (a *app) webServer(ctx context.Context) (*http.Server, error) {
	db, err := a.openStore(ctx)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := a.subscriberStore(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := a.deliveryService(ctx)
	if err != nil {
		return nil, err
	}
	tcfg := a.templatesConfig()
	renderer, err := a.renderer()
	if err != nil {
		return nil, err
	}
	gate, err := a.sendGate(ctx)
	if err != nil {
		return nil, err
	}
	hooks, err := a.webhookService(ctx)
	if err != nil {
		return nil, err
	}
	wel, err := a.welcomeService(ctx) // welcome.go
	if err != nil {
		return nil, err
	}
	rh, err := a.rhythmRunner(ctx) // rhythm.go
	if err != nil {
		return nil, err
	}
	counter, err := a.clickCounter(ctx) // clicks.go
	if err != nil {
		return nil, err
	}
	ws, err := a.webStore(ctx) // wiring.go
	if err != nil {
		return nil, err
	}
	h, err := web.NewServer(a.logger, web.Config{
		BaseURL:           a.cfg.BaseURL,
		SenderName:        tcfg.SenderName,
		PostalAddress:     tcfg.PostalAddress,
		Contact:           tcfg.Contact,
		TrustForwardedFor: a.cfg.TrustProxy,
		SignupPerIP:       a.cfg.SignupPerIP,
		SignupWindow:      a.cfg.SignupWindow,
		ConfirmPerAddress: a.cfg.ConfirmPerAddress,
		ConfirmWindow:     a.cfg.ConfirmWindow,
		LoginPerIP:        a.cfg.LoginPerIP,
		LoginPerAccount:   a.cfg.LoginPerAccount,
		LoginWindow:       a.cfg.LoginWindow,
		LoginLock:         a.cfg.LoginLock,
		LoginLockMax:      a.cfg.LoginLockMax,
		SessionTTL:        a.cfg.SessionTTL,
		Location:          a.location(),
		MetricsToken:      a.cfg.MetricsToken,
	}, web.Deps{
		Subscribers:    subs,
		Store:          ws,
		Sends:          svc,
		Renderer:       renderer,
		Failures:       svc.Failures,
		Deliveries:     svc.DeliveryHistory,
		Relay:          svc.RelayState,
		Gate:           gate,
		Webhooks:       hooks,
		Welcome:        wel,
		Rhythm:         rh,
		Clicks:         counter,
		Lists:          subs,
		Redis:          rdb,
		Metrics:        a.processMetrics(),
		MetricsHandler: a.processMetrics().Handler(),
		Tasks:          asynq.NewInspectorFromRedisClient(rdb),
		Ping: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := db.SQL.PingContext(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return &http.Server{
		Addr:              a.cfg.HTTPAddr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}, nil
}

// serveWeb listens on srv.Addr, prints the URL it listens on (so that a
// port of 0 can be used), serves until ctx ends and then shuts down
// gracefully within TAYORI_SHUTDOWN_TIMEOUT.
func (a *app) serveWeb(ctx context.Context, srv *http.Server) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("TAYORI_HTTP_ADDR: %w", err)
	}
	fmt.Fprintf(a.stdout, "tayori: web server listening on http://%s (public URL %s)\n", ln.Addr(), a.cfg.BaseURL)
	a.logger.Info("web server listening", "addr", ln.Addr().String(), "base_url", a.cfg.BaseURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("web server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
