package redisurl_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tayori-news/tayori/internal/redisurl"
)

func TestParseAcceptsBothForms(t *testing.T) {
	cases := []struct {
		url       string
		sentinel  bool
		addrs     []string
		master    string
		db        int
		tls       bool
		password  string
		sentPass  string
		describes string
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}, describes: "127.0.0.1:6379 (db 0)"},
		{url: "redis://localhost", addrs: []string{"localhost:6379"}},
		{url: "redis://:s3cret@redis.internal:6380/3", addrs: []string{"redis.internal:6380"}, db: 3, password: "s3cret"},
		{url: "rediss://u:p%40ss@redis.example.jp:6380/1?dial_timeout=2s", addrs: []string{"redis.example.jp:6380"}, db: 1, tls: true, password: "p@ss"},
		{url: "redis+sentinel://host1:26379,host2:26379/mymaster/0", sentinel: true,
			addrs: []string{"host1:26379", "host2:26379"}, master: "mymaster",
			describes: `master "mymaster" via Sentinel host1:26379,host2:26379 (db 0)`},
		{url: "redis+sentinel://s1,s2:26380,[::1]/tayori", sentinel: true,
			addrs: []string{"s1:26379", "s2:26380", "[::1]:26379"}, master: "tayori"},
		{url: "redis+sentinel://:pw@10.0.0.1:26379/mymaster/5/", sentinel: true,
			addrs: []string{"10.0.0.1:26379"}, master: "mymaster", db: 5, password: "pw"},
		{url: "rediss+sentinel://:pw@s1.example.jp:26379,s2.example.jp:26379/my-master.1/2?sentinel_password=sp%26x&dial_timeout=3s",
			sentinel: true, addrs: []string{"s1.example.jp:26379", "s2.example.jp:26379"}, master: "my-master.1", db: 2,
			tls: true, password: "pw", sentPass: "sp&x"},
		{url: "REDIS+SENTINEL://h/m", sentinel: true, addrs: []string{"h:26379"}, master: "m"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			o, err := redisurl.Parse(c.url)
			if err != nil {
				t.Fatal(err)
			}
			if o.Sentinel() != c.sentinel || !slices.Equal(o.Addrs(), c.addrs) || o.MasterName() != c.master ||
				o.DB() != c.db || o.TLS() != c.tls || o.Password() != c.password || o.SentinelPassword() != c.sentPass {
				t.Errorf("got sentinel=%v addrs=%v master=%q db=%d tls=%v password=%q sentinel password=%q",
					o.Sentinel(), o.Addrs(), o.MasterName(), o.DB(), o.TLS(), o.Password(), o.SentinelPassword())
			}
			if c.describes != "" && o.String() != c.describes {
				t.Errorf("String() = %q, want %q", o.String(), c.describes)
			}
			if c.password != "" && strings.Contains(o.String(), c.password) {
				t.Errorf("String() %q shows the password", o.String())
			}
			c := o.NewClient("test", 20)
			defer c.Close()
		})
	}
}

func TestParseRefusesWithAReason(t *testing.T) {
	cases := map[string]string{
		"localhost:6379":                             "no scheme",
		"http://127.0.0.1:6379":                      `unknown scheme "http"`,
		"redis://":                                   "no host",
		"redis://127.0.0.1:6379/42":                  `database "42": want a number 0–15`,
		"redis://127.0.0.1:6379/x":                   `database "x"`,
		"redis://127.0.0.1:99999":                    "port",
		"redis://127.0.0.1:6379/0?nonsense=1":        "unexpected option: nonsense",
		"redis+sentinel://h1:26379,h2:26379":         "no master name",
		"redis+sentinel://h1:26379/":                 "no master name",
		"redis+sentinel:///mymaster/0":               "no Sentinel host:port",
		"redis+sentinel://h1,,h2/m":                  "empty Sentinel address",
		"redis+sentinel://h1:port/m":                 `port "port"`,
		"redis+sentinel://h1:0/m":                    `port "0"`,
		"redis+sentinel://::1:26379/m":               "IPv6 address in brackets",
		"redis+sentinel://[::1/m":                    "unclosed '['",
		"redis+sentinel://h/my%20master/0":           "master name",
		"redis+sentinel://h/m/16":                    `database "16"`,
		"redis+sentinel://h/m/0/extra":               "want /master or /master/db",
		"redis+sentinel://h/m?master_name=other":     "option master_name",
		"redis+sentinel://h/m?password=x":            "option password",
		"redis+sentinel://h/m?dial_timeout=soon":     "dial_timeout",
		"redis+sentinel://h/m?route_by_latency=true": "option route_by_latency",
		"redis+sentinel://h/m?replica_only=true":     "option replica_only",
		"redis+sentinel://h/m#frag":                  "fragment",
	}
	for url, want := range cases {
		t.Run(url, func(t *testing.T) {
			_, err := redisurl.Parse(url)
			var pe *redisurl.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *redisurl.Error", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("err = %q, want it to say %q", err, want)
			}
			if !strings.Contains(err.Error(), "redis+sentinel://[:password@]host:port") {
				t.Errorf("err = %q does not say what is expected", err)
			}
		})
	}
}

func TestRedactHidesEveryPassword(t *testing.T) {
	cases := map[string]string{
		"redis://:hunter2@127.0.0.1:6379/0": "redis://:xxxxx@127.0.0.1:6379/0",
		"redis://user:hunter2@h:6379/0":     "redis://user:xxxxx@h:6379/0",
		"redis://127.0.0.1:6379/0":          "redis://127.0.0.1:6379/0",
		"redis://user@127.0.0.1:6379/0":     "redis://user@127.0.0.1:6379/0",
		"redis+sentinel://:hunter2@h1:26379,h2:26379/mymaster/0?sentinel_password=sentpw&dial_timeout=2s": "redis+sentinel://:xxxxx@h1:26379,h2:26379/mymaster/0?sentinel_password=xxxxx&dial_timeout=2s",
		"rediss+sentinel://h1/m?sentinel%5Fpassword=sentpw":                                               "rediss+sentinel://h1/m?sentinel%5Fpassword=xxxxx",
		// Malformed: still no password in what is shown.
		"redis://:hun/ter2@127.0.0.1:6379/0": "redis://:xxxxx@127.0.0.1:6379/0",
		"redis://:hun?ter2@h:6379":           "redis://:xxxxx@h:6379",
		"redis://:hunter2@h:bad":             "redis://:xxxxx@h:bad",
		"redis+sentinel://:hunter2@h1,,/m":   "redis+sentinel://:xxxxx@h1,,/m",
		":hunter2@h:6379":                    ":xxxxx@h:6379",
	}
	for in, want := range cases {
		if got := redisurl.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if _, err := redisurl.Parse(in); err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error shows the password: %v", in, err)
		}
	}
}

// FuzzParse checks that Parse never panics, that an accepted URL keeps its
// meaning through Redact (same servers, master and database, passwords
// replaced), and that no error repeats a password of a URL that parses
// once a stray character is added.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://:pw@h:6379/15",
		"rediss://u:p@h/1?dial_timeout=1s",
		"redis+sentinel://h1:26379,h2:26379/mymaster/0",
		"redis+sentinel://:pw@[::1]:26379,h/m/3?sentinel_password=x",
		"rediss+sentinel://u:p%2Fw@h/m?skip_verify=true",
		"redis+sentinel://h//",
		"redis+sentinel://@/",
		"redis://[::1]:6379",
		"redis://:@:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := redisurl.Parse(s)
		if err != nil {
			return
		}
		o.NewClient("fuzz", 1).Close() // must not panic
		r := redisurl.Redact(s)
		o2, err := redisurl.Parse(r)
		if err != nil {
			t.Fatalf("Parse(Redact(%q)) = %v", s, err)
		}
		if o2.Sentinel() != o.Sentinel() || !slices.Equal(o2.Addrs(), o.Addrs()) || o2.MasterName() != o.MasterName() ||
			o2.DB() != o.DB() || o2.TLS() != o.TLS() {
			t.Fatalf("Redact changed the meaning of %q: %q", s, r)
		}
		if o.Password() != "" && o2.Password() != "xxxxx" {
			t.Fatalf("Redact(%q) = %q keeps password %q", s, r, o2.Password())
		}
		if o.SentinelPassword() != "" && o2.SentinelPassword() != "xxxxx" {
			t.Fatalf("Redact(%q) = %q keeps Sentinel password %q", s, r, o2.SentinelPassword())
		}
	})
}
