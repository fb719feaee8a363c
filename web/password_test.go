package web

import (
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	fast := argonParams{memKiB: 64, time: 1, threads: 1}
	h, err := hashPassword("パスワード correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !checkPassword(h, "パスワード correct horse") {
		t.Fatal("the right password is refused")
	}
	h2, _ := hashPassword("パスワード correct horse", fast)
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for name, bad := range map[string]string{
		"wrong password": "",
		"bcrypt string":  "$2a$10$abcdefghijklmnopqrstuu",
		"huge memory":    strings.Replace(h, "m=64,", "m=4194304,", 1),
		"zero threads":   strings.Replace(h, "p=1$", "p=0$", 1),
		"truncated":      h[:len(h)-10] + "$",
		"not base64":     h[:len(h)-4] + "!!!!",
	} {
		hash, pw := bad, "パスワード correct horse"
		if name == "wrong password" {
			hash, pw = h, "パスワード correct hors"
		}
		if checkPassword(hash, pw) {
			t.Errorf("%s: accepted", name)
		}
	}
}
