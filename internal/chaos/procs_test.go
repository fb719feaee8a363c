package chaos

import (
	"net"
	"os"
	"testing"
)

// relayPorts finds this process's own connection to a listener from
// /proc, as it finds a worker's connections to the relay before a kill.
func TestRelayPortsFindsTheProcessConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	var want []int
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want = append(want, c.LocalAddr().(*net.TCPAddr).Port)
	}
	got, err := relayPorts(os.Getpid(), port)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[want[0]] || !got[want[1]] {
		t.Errorf("relayPorts = %v, want the client ports %v", got, want)
	}
	if other, _ := relayPorts(os.Getpid(), port+1); len(other) != 0 {
		t.Errorf("relayPorts for another port = %v, want none", other)
	}
}

func TestHexAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		port int
		ok   bool
	}{
		{"0100007F:9C40", 40000, true},
		{"00000000000000000000000001000000:0019", 25, true},
		{"0100007F", 0, false},
		{"0100007F:XYZ", 0, false},
	} {
		_, port, ok := hexAddr(tc.in)
		if port != tc.port || ok != tc.ok {
			t.Errorf("hexAddr(%q) = %d, %v; want %d, %v", tc.in, port, ok, tc.port, tc.ok)
		}
	}
}
