package preflight

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolverFromFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("search example.jp\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := resolverFromFile(conf, 0)
	if err != nil || !slices.Equal(r.Servers(), []string{"192.0.2.53:53", "[2001:db8::53]:53"}) || r.timeout != DefaultDNSTimeout {
		t.Errorf("resolverFromFile = %v, %v", r, err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.jp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolverFromFile(empty, 0); err == nil {
		t.Error("no nameserver: no error")
	}
	if _, err := resolverFromFile(filepath.Join(dir, "missing"), 0); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}
