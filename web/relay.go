package web

import (
	"context"
	"time"

	"github.com/tayori-news/tayori/queue"
)

// relayView is the relay's trouble as the send page shows it: when it
// began, what went wrong in Japanese and in English; never the relay's
// address or a developer's error text.
type relayView struct {
	Since time.Time
	JA    string
	EN    string
}

// relayKindJA says what went wrong, by queue.RelayState.Kind.
var relayKindJA = map[string]string{
	"refused": "接続を拒否されています",
	"timeout": "応答がありません",
	"closed":  "接続を切られました",
	"reply":   "受け付けを一時的に断られています",
	"dns":     "サーバー名が見つかりません",
	"tls":     "暗号化（TLS）の接続に失敗しました",
}

var relayKindEN = map[string]string{
	"refused": "connection refused",
	"timeout": "no answer",
	"closed":  "connection closed by the relay",
	"reply":   "temporarily refused by the relay",
	"dns":     "relay host not found",
	"tls":     "TLS handshake failed",
}

// relayTrouble returns the view of the relay's state when it is down and
// the send is still going; nil otherwise (or when it cannot be read: the
// page works without it).
func (s *server) relayTrouble(ctx context.Context, snd *queue.Send) *relayView {
	if s.deps.Relay == nil || snd.State.Final() {
		return nil
	}
	st, err := s.deps.Relay(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "read the relay's state", "err", err)
		return nil
	}
	if !st.Down {
		return nil
	}
	v := &relayView{Since: st.Since, JA: relayKindJA[st.Kind], EN: relayKindEN[st.Kind]}
	if v.JA == "" {
		v.JA, v.EN = "接続できません", "unreachable"
	}
	return v
}
