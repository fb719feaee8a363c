package testutil

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WebhookReceiver is a webhook endpoint on 127.0.0.1:0 written from the
// Standard Webhooks specification, independently of package webhooks'
// signer: it verifies every request (webhook-id, webhook-timestamp within
// five minutes, webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" under the base64 key after "whsec_"), answers 401
// to a bad one, and answers 503 to the first FailFirst verified requests
// of each message id.
type WebhookReceiver struct {
	URL string

	key       []byte
	failFirst int

	mu       sync.Mutex
	attempts map[string]int
	bodies   map[string][]string
	accepted []string
	bad      int
}

// WebhookRequest is a verified request the receiver accepted.
type WebhookRequest struct {
	ID   string
	Body string
}

// StartWebhookReceiver starts a receiver for secret ("whsec_…"); it is
// closed by tb.Cleanup.
func StartWebhookReceiver(tb testing.TB, secret string, failFirst int) *WebhookReceiver {
	tb.Helper()
	raw, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(raw)
	if !ok || err != nil {
		tb.Fatalf("webhook secret %q is not whsec_<base64>", secret)
	}
	r := &WebhookReceiver{key: key, failFirst: failFirst, attempts: map[string]int{}, bodies: map[string][]string{}}
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *WebhookReceiver) verify(h http.Header, body []byte) bool {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return false
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, r.key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// ServeHTTP verifies and records one request.
func (r *WebhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || !r.verify(req.Header, body) {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.attempts[id]++
	r.bodies[id] = append(r.bodies[id], string(body))
	if r.attempts[id] <= r.failFirst {
		http.Error(w, "エラー: まだ受け取れません", http.StatusServiceUnavailable)
		return
	}
	r.accepted = append(r.accepted, id)
	w.Write([]byte(`{"ok":true}`))
}

// Accepted returns the verified requests answered 200, in order (a
// message delivered twice appears twice), each with its first body.
func (r *WebhookReceiver) Accepted() []WebhookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]WebhookRequest, len(r.accepted))
	for i, id := range r.accepted {
		out[i] = WebhookRequest{ID: id, Body: r.bodies[id][0]}
	}
	return out
}

// Attempts returns how many verified requests came with message id.
func (r *WebhookReceiver) Attempts(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id]
}

// Bodies returns every verified body of message id, in order.
func (r *WebhookReceiver) Bodies(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies[id]...)
}

// BadRequests counts the requests that failed verification.
func (r *WebhookReceiver) BadRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// WaitAccepted waits until n requests were accepted and returns them.
func (r *WebhookReceiver) WaitAccepted(tb testing.TB, n int, timeout time.Duration) []WebhookRequest {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Accepted()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("webhook receiver: %d requests accepted after %v, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
