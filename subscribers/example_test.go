package subscribers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tayori-news/tayori/audience"
	"github.com/tayori-news/tayori/internal/store"
	"github.com/tayori-news/tayori/subscribers"
	"github.com/tayori-news/tayori/subscribers/token"
)

// A web signup, its confirmation, and a send to the readers who want
// European policy news.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tayori-example")
	defer os.RemoveAll(dir)
	// TAYORI_DB: sqlite:PATH or postgres://user:pass@host:5432/db
	db, err := store.Create(ctx, "sqlite:"+filepath.Join(dir, "tayori.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := store.Migrate(ctx, db); err != nil { // `tayori init` does this
		panic(err)
	}
	ring, err := token.NewKeyring(time.Now, token.Key{ID: "2026a", Secret: []byte("a secret of at least sixteen bytes")})
	if err != nil {
		panic(err)
	}
	subs, err := subscribers.Open(ctx, store.Subscribers(db), subscribers.Options{Keyring: ring})
	if err != nil {
		panic(err)
	}

	eu := audience.Prefs{Regions: []audience.Region{audience.EU}, Topics: []audience.Topic{audience.Policy}}
	sub, _ := subs.Add(ctx, subscribers.NewSubscriber{Email: "Reader@Example.EU", Prefs: &eu, Method: subscribers.DoubleOptIn})
	fmt.Println(sub.Email, sub.Status)

	tok, _ := subs.ConfirmToken(ctx, sub.ID, "monthly") // goes into the confirmation mail
	sub, _ = subs.Confirm(ctx, tok, subscribers.Consent{FormVersion: "signup-v1", Text: "Monthly AI policy news."})
	fmt.Println(sub.Status)

	for r, err := range subs.Recipients(ctx, subscribers.RecipientQuery{List: "monthly", Filter: &eu}) {
		if err != nil {
			panic(err)
		}
		fmt.Println("send to", r.Email, r.Prefs.Key())
	}
	// Output:
	// Reader@example.eu pending
	// active
	// send to Reader@example.eu eu|policy
}
