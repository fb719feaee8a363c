package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/web"
)

// TestWorkerTrimsAuditLog: `tayori worker` trims the console's audit log
// to TAYORI_AUDIT_DAYS when it starts (and daily after), on both engines:
// an entry recorded 31 days ago by a clock set back goes, one of 29 days
// ago and one of now stay.
func TestWorkerTrimsAuditLog(t *testing.T) {
	smtp := testutil.StartSMTP(t)
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn := eng.URL(t)
			db, err := store.Create(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := store.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			daysAgo := func(n int) func() time.Time {
				return func() time.Time { return time.Now().Add(-time.Duration(n) * 24 * time.Hour) }
			}
			for _, e := range []struct {
				ago    int
				action string
			}{{31, "export"}, {29, "send"}, {0, "signin"}} {
				st := web.NewStore(store.Web(db), daysAgo(e.ago))
				if err := st.Audit(ctx, web.AuditEntry{Editor: "花子", Action: e.action}); err != nil {
					t.Fatal(err)
				}
			}
			base := sendTestEnv(t, smtp)
			getenv := func(k string) string {
				switch k {
				case "TAYORI_DB":
					return dsn
				case "TAYORI_AUDIT_DAYS":
					return "30"
				case "TAYORI_METRICS_ADDR":
					return "127.0.0.1:0" // its listener says when the worker runs
				}
				return base(k)
			}
			_, _, _, stop := startApp(t, getenv, 1, "worker")
			left := func() []string {
				var out []string
				for e, err := range web.NewStore(store.Web(db), nil).AllAudit(ctx) {
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, e.Action)
				}
				return out
			}
			want := []string{"signin", "send"}
			for deadline := time.Now().Add(20 * time.Second); !slices.Equal(left(), want) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if got := left(); !slices.Equal(got, want) {
				t.Errorf("audit log after the worker started with TAYORI_AUDIT_DAYS=30: %v, want %v", got, want)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
