package mailer_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tayori-news/tayori/mailer"
)

func ExampleBuilder_Build() {
	b, err := mailer.NewBuilder(mailer.BuilderOptions{
		// Fixed for the example; leave nil in production.
		Now:       func() time.Time { return time.Date(2026, 2, 3, 9, 0, 0, 0, time.FixedZone("JST", 9*3600)) },
		MessageID: func(domain string) string { return "example@" + domain },
		Boundary:  func() string { return "b" },
	})
	if err != nil {
		panic(err)
	}
	built, err := b.Build(&mailer.Message{
		From:           mailer.Address{Name: "AI政策動向", Email: "newsletter@news.example.go.jp"},
		To:             mailer.Address{Email: "taro@example.jp"},
		Subject:        "【2026年2月号】AI政策動向",
		ListID:         "ai-policy-monthly.news.example.go.jp",
		UnsubscribeURL: "https://news.example.go.jp/u/TOKEN",
		FeedbackID:     "2026-02:monthly:aipolicy:jpaipol01",
		Text:           "本文\n",
		HTML:           "<p>本文</p>\n",
	})
	if err != nil {
		panic(err)
	}
	header, _, _ := strings.Cut(string(built.Raw), "\r\n\r\n")
	fmt.Println(strings.ReplaceAll(header, "\r\n", "\n"))
	// Output:
	// Auto-Submitted: auto-generated
	// Date: Tue, 03 Feb 2026 09:00:00 +0900
	// Feedback-ID: 2026-02:monthly:aipolicy:jpaipol01
	// From: =?UTF-8?B?QUnmlL/nrZbli5XlkJE=?= <newsletter@news.example.go.jp>
	// List-Id: <ai-policy-monthly.news.example.go.jp>
	// List-Unsubscribe: <https://news.example.go.jp/u/TOKEN>
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click
	// MIME-Version: 1.0
	// Message-ID: <example@news.example.go.jp>
	// Subject: =?UTF-8?B?44CQMjAyNuW5tDLmnIjlj7fjgJFBSeaUv+etluWLleWQkQ==?=
	// To: <taro@example.jp>
	// Content-Type: multipart/alternative;
	//  boundary=b
}

// A sending goroutine holds one connection and sends many messages on it.
func ExamplePool() {
	cfg, err := mailer.ParseSMTPURL("smtp://127.0.0.1:1?tls=none")
	if err != nil {
		panic(err)
	}
	pool, err := mailer.NewPool(cfg, mailer.PoolOptions{})
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	ctx := context.Background()
	_, err = pool.Send(ctx, "bounce@bounce.example.jp", "taro@example.jp", []byte("Subject: x\r\n\r\nx\r\n"))
	// Nothing listens on port 1: a connection error, worth retrying later.
	fmt.Println(mailer.IsTemporary(err), mailer.IsPermanent(err))
	// Output:
	// true false
}
