// Package smtpsink is an SMTP server that accepts every message, discards it
// and counts it: messages, bytes, connections, and the times of the first
// and last acceptance. It is the common target for throughput benchmarks, so
// that any sender (Tayori or another newsletter server) is measured against
// the same sink. Stats are served as JSON by Handler (GET /stats, POST
// /reset).
//
//	go run ./tools/smtpsink -addr 127.0.0.1:2525 -stats 127.0.0.1:2526
//	curl -s 127.0.0.1:2526/stats
package smtpsink
