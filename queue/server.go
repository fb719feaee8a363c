package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// ServerConfig configures the Asynq server that delivers sends.
type ServerConfig struct {
	// Concurrency is the number of tasks run at once. Default 8.
	Concurrency int
	// ShutdownTimeout is how long shutdown waits for tasks in flight before
	// requeueing them; keep it above the slowest SMTP send. Default 30s.
	ShutdownTimeout time.Duration
	// TaskCheckInterval is how often an idle worker looks for new tasks
	// (asynq sleeps between a half and one and a half times it). Default
	// 200ms: a send's first batch waits for it, and asynq's own default of
	// 1s put up to 1.5 s between `tayori send` and the first copy; an idle
	// worker then asks Redis about 5 times a second.
	// DelayedTaskCheckInterval is asynq's polling of scheduled and retried
	// tasks (default 5s). Tests shorten both.
	TaskCheckInterval        time.Duration
	DelayedTaskCheckInterval time.Duration
}

// Server runs the queue's task handlers on an Asynq server that shares
// the Service's Redis client.
type Server struct {
	svc *Service
	srv *asynq.Server
	mux *asynq.ServeMux
}

// NewServer returns a Server for s. The transactional queue has strict
// priority over the newsletter queue.
func (s *Service) NewServer(cfg ServerConfig) *Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = 200 * time.Millisecond
	}
	log := s.log.With("component", "asynq")
	srv := asynq.NewServerFromRedisClient(s.rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{QueueTransactional: 10, QueueNewsletter: 1},
		StrictPriority:           true,
		RetryDelayFunc:           s.retryDelay,
		IsFailure:                isFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		Logger:                   NewAsynqLogger(log),
		LogLevel:                 asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if errors.Is(err, errPaused) || errors.Is(err, errRelayDown) {
				return // waiting, not failing (the relay's state is reported on its own)
			}
			id, _ := asynq.GetTaskID(ctx)
			n, _ := asynq.GetRetryCount(ctx)
			log.WarnContext(ctx, "task failed", "type", t.Type(), "task_id", id, "attempt", n, "err", err)
		}),
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSendPlan, s.handlePlan)
	mux.HandleFunc(TypeSendBatch, s.handleBatch)
	mux.HandleFunc(TypeMessageSend, s.handleMessageTask) // listmail.go
	mux.HandleFunc(TypeSendMonthly, s.handleMonthly)
	return &Server{svc: s, srv: srv, mux: mux}
}

// Run serves tasks until ctx ends, then shuts down gracefully: it stops
// taking tasks, waits up to ShutdownTimeout for those in flight, and
// requeues the rest (their claimed rows are taken over by the re-run).
// Meanwhile it re-enqueues the batches of dead workers (see the lease
// watchdog in lease.go) and re-creates tasks Redis lost (reconcile.go).
func (srv *Server) Run(ctx context.Context) error {
	if err := srv.srv.Start(srv.mux); err != nil {
		return fmt.Errorf("queue: start worker: %w", err)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.svc.runWatchdog(wctx) }()
	go func() { defer wg.Done(); srv.svc.runReconciler(wctx) }()
	<-ctx.Done()
	stop()
	wg.Wait()
	srv.srv.Stop()
	srv.srv.Shutdown()
	return nil
}

// asynqLogger adapts slog to asynq's Logger.
type asynqLogger struct{ l *slog.Logger }

// NewAsynqLogger returns an asynq.Logger writing to l.
func NewAsynqLogger(l *slog.Logger) asynq.Logger { return asynqLogger{l} }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
