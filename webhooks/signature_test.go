package webhooks_test

import (
	"errors"
	"testing"

	"github.com/tayori-news/tayori/webhooks"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestSignKnownVector checks Sign against the example of the Standard
// Webhooks specification's reference libraries.
func TestSignKnownVector(t *testing.T) {
	got, err := webhooks.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if _, err := webhooks.Sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, nil); !errors.Is(err, webhooks.ErrBadSecret) {
		t.Errorf("secret without whsec_: err = %v", err)
	}
}
