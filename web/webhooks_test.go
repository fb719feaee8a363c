package web_test

import (
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/queue"
	"github.com/tayori-news/tayori/webhooks"
)

// wireWebhooks opens package webhooks on the test's database and Redis,
// makes the subscriber store and the queue emit through it, and runs its
// worker until the test ends: as cmd/tayori wires it.
func (e *env) wireWebhooks(cfg webhooks.Config, q *queue.Deps, logger *slog.Logger) {
	e.t.Helper()
	st := store.Webhooks(e.sdb)
	e.webhooks = webhooks.New(st, e.rdb, cfg, logger)
	e.sinks = append(e.sinks, e.webhooks)
	q.Events = e.webhooks
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.webhooks.Run(e.ctx) }()
	e.t.Cleanup(func() { e.webhooks.Close() })
}

func fastWebhooks() *webhooks.Config {
	return &webhooks.Config{
		RetryDelay:               func(int) time.Duration { return 50 * time.Millisecond },
		DispatchEvery:            50 * time.Millisecond,
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
	}
}

var secretRE = regexp.MustCompile(`<code id="secret">(whsec_[A-Za-z0-9+/=&#;]+)</code>`)

// TestWebhooksReaderJourney: an editor adds an endpoint in the console; a
// reader signs up, confirms, changes their choice and unsubscribes over
// HTTP; the endpoint, refusing the first two attempts of every message,
// gets each event once accepted, signed, with one id per event kept
// across retries; the console's log shows its answers and its replay
// button sends a duplicate with the same id.
func TestWebhooksReaderJourney(t *testing.T) {
	e := newEnv(t, envOpts{worker: true, webhooks: fastWebhooks()})
	c := e.browser()
	csrf := e.login(c)

	// The page is Japanese first, with the English toggle.
	res, body := e.do(c, "GET", "/admin/webhooks", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "Webhook（外部への通知）") || !strings.Contains(body, `id="lang-toggle"`) {
		t.Fatalf("GET /admin/webhooks: %d\n%s", res.StatusCode, body)
	}
	if _, en := e.do(c, "GET", "/admin/webhooks?lang=en", nil); !strings.Contains(en, "Add endpoint") {
		t.Error("the English page lacks its wording")
	}
	// A bad URL is refused with the field named, in Japanese.
	res, body = e.postForm(c, "/admin/webhooks?lang=ja", url.Values{"csrf": {csrf}, "url": {"ftp://example.jp"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "http:// または https:// で始まるURL") {
		t.Fatalf("bad URL: %d\n%s", res.StatusCode, body)
	}

	// The receiver needs the secret, which the page shows after creation:
	// start it behind a stable URL, then learn the secret.
	var recvp atomic.Pointer[testutil.WebhookReceiver]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { recvp.Load().ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	res, _ = e.postForm(c, "/admin/webhooks", url.Values{"csrf": {csrf}, "url": {srv.URL + "/tayori"}, "description": {"会員管理システム"},
		"events": {webhooks.SubscriberCreated, webhooks.SubscriberConfirmed, webhooks.SubscriberPreferencesChanged, webhooks.SubscriberUnsubscribed}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add endpoint: %d", res.StatusCode)
	}
	page := res.Header.Get("Location")
	_, body = e.do(c, "GET", page, nil)
	m := secretRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "会員管理システム") {
		t.Fatalf("the endpoint's page shows no secret:\n%s", body)
	}
	recv := testutil.StartWebhookReceiver(t, html.UnescapeString(m[1]), 2)
	recvp.Store(recv)

	// The reader's journey, over HTTP.
	pub := e.browser()
	if res, _ := e.postForm(pub, "/subscribe", signupForm("hanako@example.jp")); res.StatusCode >= 400 {
		t.Fatalf("subscribe: %d", res.StatusCode)
	}
	tok := e.confirmToken("hanako@example.jp", true)
	if res, _ := e.postForm(pub, "/confirm/"+tok, url.Values{"lang": {"ja"}}); res.StatusCode >= 400 {
		t.Fatalf("confirm: %d", res.StatusCode)
	}
	sub := e.subscriber("hanako@example.jp")
	ptok, err := e.subs.PreferencesToken(sub.PublicID, "")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.postForm(pub, "/p/"+ptok, url.Values{"action": {"save"}, "region": {"us"}, "topic": {"policy"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save preferences: %d", res.StatusCode)
	}
	utok, err := e.subs.UnsubscribeToken(sub.PublicID, "")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.do(pub, "POST", "/u/"+utok, strings.NewReader("List-Unsubscribe=One-Click"),
		"Content-Type", "application/x-www-form-urlencoded"); res.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe: %d", res.StatusCode)
	}

	want := []string{webhooks.SubscriberCreated, webhooks.SubscriberConfirmed, webhooks.SubscriberPreferencesChanged, webhooks.SubscriberUnsubscribed}
	got := recv.WaitAccepted(t, len(want), 30*time.Second)
	time.Sleep(200 * time.Millisecond) // room for a wrong extra delivery to show
	got = recv.Accepted()
	if len(got) != len(want) {
		t.Fatalf("%d events accepted, want %d", len(got), len(want))
	}
	if bad := recv.BadRequests(); bad != 0 {
		t.Errorf("%d requests failed signature verification", bad)
	}
	types := map[string]string{}
	stamps := map[string]time.Time{}
	for _, a := range got {
		if _, dup := types[a.ID]; dup {
			t.Errorf("id %s accepted twice", a.ID)
		}
		if n := recv.Attempts(a.ID); n != 3 {
			t.Errorf("id %s: %d attempts, want 3", a.ID, n)
		}
		var ev struct {
			Type      string    `json:"type"`
			Timestamp time.Time `json:"timestamp"`
			Data      struct {
				Subscriber struct {
					PublicID string `json:"public_id"`
					Email    string `json:"email"`
					Name     string `json:"name"`
					Status   string `json:"status"`
				} `json:"subscriber"`
				PreviousStatus string `json:"previous_status"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(a.Body), &ev); err != nil {
			t.Fatal(err)
		}
		types[a.ID] = ev.Type
		// subscriber.created comes at the signup, before the reader
		// confirms: pending; subscriber.confirmed after, active.
		status := map[string][2]string{webhooks.SubscriberCreated: {"pending", ""}, webhooks.SubscriberConfirmed: {"active", "pending"},
			webhooks.SubscriberPreferencesChanged: {"active", ""}, webhooks.SubscriberUnsubscribed: {"unsubscribed", "active"}}[ev.Type]
		if ev.Data.Subscriber.Status != status[0] || ev.Data.PreviousStatus != status[1] {
			t.Errorf("%s: status %q, previous %q; want %q, %q", ev.Type, ev.Data.Subscriber.Status, ev.Data.PreviousStatus, status[0], status[1])
		}
		stamps[ev.Type] = ev.Timestamp
		if s := ev.Data.Subscriber; s.PublicID != sub.PublicID || s.Email != "hanako@example.jp" || s.Name != "山田 太郎" {
			t.Errorf("%s: subscriber %+v", ev.Type, s)
		}
		if strings.Contains(a.Body, `"id":`) {
			t.Errorf("%s: the body carries an internal id: %s", ev.Type, a.Body)
		}
	}
	for _, w := range want {
		found := false
		for _, typ := range types {
			found = found || typ == w
		}
		if !found {
			t.Errorf("no %s event (got %v)", w, types)
		}
	}
	if c, f := stamps[webhooks.SubscriberCreated], stamps[webhooks.SubscriberConfirmed]; c.IsZero() || c.After(f) {
		t.Errorf("subscriber.created at %v, subscriber.confirmed at %v: want created first, at the signup", c, f)
	}

	// The delivery log shows the endpoint's answers; replay sends a duplicate.
	// The worker records the 200 just after the endpoint answered it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = e.do(c, "GET", page, nil)
		if strings.Count(body, "受信済み") == len(want) || time.Now().After(deadline) {
			break
		}
	}
	for _, s := range []string{"受信済み", "503", "エラー: まだ受け取れません", "200", got[0].ID, "もう一度送る"} {
		if !strings.Contains(body, s) {
			t.Errorf("the delivery log lacks %q", s)
		}
	}
	rows := regexp.MustCompile(`(?s)<tr id="delivery-\d+">.*?<code class="small"[^>]*>(msg_[0-9a-f]+)</code>.*?action="(/admin/webhooks/\d+/deliveries/\d+/replay)"`).FindAllStringSubmatch(body, -1)
	if len(rows) != len(want) {
		t.Fatalf("%d rows with a replay button, want %d", len(rows), len(want))
	}
	// Replay the oldest event (the last row: newest first).
	replayed := rows[len(rows)-1][1]
	res, _ = e.postForm(c, rows[len(rows)-1][2], url.Values{"csrf": {csrf}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("replay: %d", res.StatusCode)
	}
	again := recv.WaitAccepted(t, len(want)+1, 20*time.Second)
	if last := again[len(again)-1]; last.ID != replayed || types[replayed] != webhooks.SubscriberCreated {
		t.Errorf("the replay came as %s (%s), want %s (%s)", last.ID, types[last.ID], replayed, types[replayed])
	}
}

// TestWebhooksAPI: endpoints are managed with an API token; the secret is
// shown once, bad input is a 400 naming the fields, and the delivery log
// and replay answer.
func TestWebhooksAPI(t *testing.T) {
	e := newEnv(t, envOpts{webhooks: fastWebhooks()})
	tok := e.apiToken()
	var ae apiErr
	if res := e.api(tok, "POST", "/api/v1/webhooks", `{"url":"mailto:x@example.jp","events":["subscriber.nope"]}`, &ae); res.StatusCode != 400 ||
		!strings.Contains(ae.Error.Message, "url:") || !strings.Contains(ae.Error.Message, "events:") {
		t.Fatalf("bad endpoint: %d %+v", res.StatusCode, ae)
	}
	if res := e.api("", "GET", "/api/v1/webhooks", "", nil); res.StatusCode != 401 {
		t.Errorf("without a token: %d", res.StatusCode)
	}
	var ep webhooks.Endpoint
	if res := e.api(tok, "POST", "/api/v1/webhooks", `{"url":"https://crm.example.jp/hook","events":["send.finished"]}`, &ep); res.StatusCode != 201 ||
		!strings.HasPrefix(ep.Secret, "whsec_") || ep.ID == 0 {
		t.Fatalf("add: %d %+v", res.StatusCode, ep)
	}
	var list struct {
		Webhooks []webhooks.Endpoint `json:"webhooks"`
	}
	if res := e.api(tok, "GET", "/api/v1/webhooks", "", &list); res.StatusCode != 200 || len(list.Webhooks) != 1 ||
		list.Webhooks[0].Secret != "" || list.Webhooks[0].Events[0] != "send.finished" {
		t.Fatalf("list: %d %+v", res.StatusCode, list)
	}
	var ds struct {
		Deliveries []webhooks.Delivery `json:"deliveries"`
	}
	path := "/api/v1/webhooks/" + itoa(ep.ID)
	if res := e.api(tok, "GET", path+"/deliveries", "", &ds); res.StatusCode != 200 || ds.Deliveries == nil {
		t.Errorf("deliveries: %d %+v", res.StatusCode, ds)
	}
	if res := e.api(tok, "POST", path+"/deliveries/999/replay", "", &ae); res.StatusCode != 404 {
		t.Errorf("replay of an unknown delivery: %d", res.StatusCode)
	}
	if res := e.api(tok, "DELETE", path, "", nil); res.StatusCode != 204 {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if res := e.api(tok, "GET", path, "", &ae); res.StatusCode != 404 {
		t.Errorf("deleted endpoint: %d", res.StatusCode)
	}
}
