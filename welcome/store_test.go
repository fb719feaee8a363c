package welcome_test

import (
	"context"
	"testing"
	"time"

	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/internal/testutil"
	"github.com/tayori-news/tayori/welcome"
)

// TestStore: a list without a template is reported as such; a saved
// template round-trips byte for byte and a second save replaces it, on
// each engine.
func TestStore(t *testing.T) {
	for _, eng := range testutil.Engines() {
		t.Run(string(eng.Name), func(t *testing.T) {
			ctx := context.Background()
			st := store.Welcome(testutil.OpenStore(t, eng))
			if _, ok, err := st.Template(ctx, "monthly"); err != nil || ok {
				t.Fatalf("Template of a list without one: ok %v, %v", ok, err)
			}
			at := time.Date(2026, 12, 7, 9, 30, 0, 123e6, time.UTC)
			tpl := welcome.Template{List: "monthly", Enabled: true, Subject: "ようこそ、{{.List}}へ",
				Body: "ご登録ありがとうございます。\n〜 波ダッシュ ～ 全角チルダ ①\n", UpdatedAt: at, UpdatedBy: "花子"}
			if err := st.SaveTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			got, ok, err := st.Template(ctx, "monthly")
			if err != nil || !ok || got != tpl {
				t.Fatalf("Template = %+v, %v, %v; want %+v", got, ok, err, tpl)
			}
			tpl.Enabled, tpl.Subject, tpl.UpdatedBy = false, "改めて", "太郎"
			if err := st.SaveTemplate(ctx, tpl); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := st.Template(ctx, "monthly"); got != tpl {
				t.Errorf("after a second save: %+v, want %+v", got, tpl)
			}
			if _, ok, _ := st.Template(ctx, "weekly"); ok {
				t.Error("another list got the template")
			}
		})
	}
}
