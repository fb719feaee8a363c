package mailer_test

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/smtpsink"
	"github.com/tayori-news/tayori/mailer"
)

// Speed targets (2 shared cores; the delivery path builds one message per
// recipient at thousands per second within ~70 core-µs per message in all):
//
//	BenchmarkBuild/5KB/direct    ≤ 15 µs/op, ≤ 40 allocs/op (go-mail writer: ~45 µs, reference only)
//	BenchmarkBuild/40KB/direct   ≤ 80 µs/op
//	BenchmarkBuildDKIM/ed25519   ≤ 40 µs/op more than unsigned
//	BenchmarkBuildDKIM/rsa2048   ~1–2 ms/op: RSA signing dominates; use Ed25519 or several cores for bulk
//	BenchmarkSendOneConn/pipelined-bdat ≥ 5,000 msg/s for 5 KB messages to the in-process sink
//	                                    (sequential MAIL/RCPT/DATA: roughly half)

// benchMessage returns a Japanese message whose text+HTML bodies total about
// size bytes.
func benchMessage(size int) *mailer.Message {
	para := "AIセーフティに関する内容を中心に、国内外の主なAI政策動向をお届けします。詳細は https://aisi.example.go.jp/news/2026-01-20 をご覧ください。\n"
	text := strings.Repeat(para, max(1, size*45/100/len(para)))
	html := strings.Repeat("<p>"+strings.TrimSuffix(para, "\n")+"</p>\n", max(1, size*55/100/(len(para)+8)))
	return &mailer.Message{
		From:              mailer.Address{Name: fromName, Email: fromEmail},
		To:                mailer.Address{Email: "taro.yamada@example.jp"},
		Subject:           subject,
		ListID:            listID,
		ListName:          fromName,
		UnsubscribeURL:    "https://news.example.go.jp/u/v1.Qk9SZWNpcGllbnQ.c2lnbmF0dXJl",
		UnsubscribeMailto: "mailto:unsubscribe+v1.Qk9SZWNpcGllbnQ@news.example.go.jp",
		AnnounceOnly:      true,
		FeedbackID:        feedbackID,
		Text:              text,
		HTML:              html,
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"5KB", 5 << 10}, {"40KB", 40 << 10}} {
		for _, w := range []struct {
			name   string
			gomail bool
		}{{"direct", false}, {"gomail", true}} {
			b.Run(size.name+"/"+w.name, func(b *testing.B) {
				bl := newBuilder(b, mailer.BuilderOptions{GoMailWriter: w.gomail})
				m := benchMessage(size.n)
				b.SetBytes(int64(len(m.Text) + len(m.HTML)))
				b.ReportAllocs()
				var out int
				for b.Loop() {
					built, err := bl.Build(m)
					if err != nil {
						b.Fatal(err)
					}
					out = len(built.Raw)
				}
				b.ReportMetric(float64(out), "raw-bytes")
			})
		}
	}
}

func BenchmarkBuildDKIM(b *testing.B) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"ed25519", ed}, {"rsa2048", testRSAKey(b)}} {
		b.Run(k.name, func(b *testing.B) {
			signer, err := mailer.NewDKIMSignerWithKey("example.go.jp", "nl2026", k.key)
			if err != nil {
				b.Fatal(err)
			}
			bl := newBuilder(b, mailer.BuilderOptions{DKIM: signer})
			m := benchMessage(5 << 10)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bl.Build(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSendOneConn sends b.N pre-built 5 KB messages over one connection
// to the in-process counting sink (internal/smtpsink) and reports msg/s.
func BenchmarkSendOneConn(b *testing.B) {
	for _, mode := range []string{"started-bdat", "pipelined-bdat", "pipelined-data", "sequential-data"} {
		opts, ok := transferModes[mode]
		if !ok {
			opts = transferModes["pipelined-bdat"]
		}
		b.Run(mode, func(b *testing.B) { benchSendOneConn(b, opts, mode == "started-bdat") })
	}
}

// benchSendOneConn sends with Conn.Send, or with Conn.Start (several
// messages per round trip) when started is set.
func benchSendOneConn(b *testing.B, opts mailer.PoolOptions, started bool) {
	sink := smtpsink.New(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	pool := newPool(b, "smtp://"+ln.Addr().String()+"?tls=none", opts)
	bl := newBuilder(b, mailer.BuilderOptions{})
	built, err := bl.Build(benchMessage(5 << 10))
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pool.Get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Put(conn)
	b.SetBytes(int64(len(built.Raw)))
	b.ReportAllocs()
	var sendErr error
	for b.Loop() {
		if started {
			conn.StartBuilt(ctx, envFrom, "taro.yamada@example.jp", built, func(_ mailer.Reply, err error) { sendErr = cmp.Or(sendErr, err) })
		} else if _, err := conn.Send(ctx, envFrom, "taro.yamada@example.jp", built.Raw); err != nil {
			b.Fatal(err)
		}
	}
	conn.Wait(ctx)
	if sendErr != nil {
		b.Fatal(sendErr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if st := sink.Stats(); st.Connections != 1 {
		b.Errorf("%d connections, want 1", st.Connections)
	}
}
