// Package bind fits Tayori's concrete parts to the small interfaces that
// package queue declares: the subscribers store as a queue.Directory (and
// queue.Tokens, which *subscribers.Store satisfies as is), the templates
// renderer as a queue.Renderer, a mailer Builder plus Pool as a
// queue.Sender with Classify for its errors, and the queue's ledger to
// package feedback (History, Volume, SendGate) and the send gate back to
// the queue (Gate).
//
// queue itself imports none of them; cmd/tayori and the queue's tests use
// this package to wire the real types:
//
//	svc, err := queue.New(ctx, store.Ledger(db), rdb, cfg, queue.Deps{
//		Directory: bind.Directory{Store: store},
//		Tokens:    store,
//		Renderer:  bind.Renderer{R: renderer},
//		Sender:    &bind.Sender{Builder: b, Pool: pool},
//		Classify:  bind.Classify,
//	}, logger)
package bind
