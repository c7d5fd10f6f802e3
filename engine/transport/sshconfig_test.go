package transport

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sampleSSHConfig = `
# Options before any Host apply to every host, and win (first value wins).
ServerAliveInterval 30

Host bastion
    HostName access.example.org
    User alice
    IdentityFile ~/.ssh/bastion_key

Host *.g5k !nancy.g5k
    ProxyJump bastion
    User=root
    Port 2222

Host node-?? "lab-*"
    HostName %h.internal
    IdentityFile "~/.ssh/lab key"
    Port 2200

Match host node-01
    User never

Host *
    User fallback
    Port 22
    IdentityFile ~/.ssh/id_shared
    ProxyJump none
`

func TestSSHConfig(t *testing.T) {
	cfg, err := parseSSHConfig(strings.NewReader(sampleSSHConfig))
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	key := func(shown string) keyFile {
		return keyFile{shown: shown, path: filepath.Join(home, strings.TrimPrefix(shown, "~/"))}
	}
	shared := key("~/.ssh/id_shared")
	bastion := &target{host: "access.example.org", port: 22, user: "alice",
		keys: []keyFile{key("~/.ssh/bastion_key"), shared}}

	tests := []struct {
		name string
		ep   Endpoint
		want target
	}{
		{"through the bastion", Endpoint{Host: "gros-1.g5k"},
			target{host: "gros-1.g5k", port: 2222, user: "root", keys: []keyFile{shared}, jump: bastion}},
		{"negated pattern", Endpoint{Host: "nancy.g5k"},
			target{host: "nancy.g5k", port: 22, user: "fallback", keys: []keyFile{shared}}},
		{"? wildcard, %h and Match host", Endpoint{Host: "node-01"},
			target{host: "node-01.internal", port: 2200, user: "never", keys: []keyFile{key("~/.ssh/lab key"), shared}}},
		{"? is exactly one character", Endpoint{Host: "node-1"},
			target{host: "node-1", port: 22, user: "fallback", keys: []keyFile{shared}}},
		{"names match regardless of case", Endpoint{Host: "Gros-1.G5K"},
			target{host: "Gros-1.G5K", port: 2222, user: "root", keys: []keyFile{shared}, jump: bastion}},
		{"quoted pattern", Endpoint{Host: "lab-x"},
			target{host: "lab-x.internal", port: 2200, user: "fallback", keys: []keyFile{key("~/.ssh/lab key"), shared}}},
		{"? is one character", Endpoint{Host: "node-100"},
			target{host: "node-100", port: 22, user: "fallback", keys: []keyFile{shared}}},
		{"endpoint values win", Endpoint{Host: "gros-1.g5k", User: "bob", Port: 22, KeyFiles: []string{"/k"},
			Jump: &Endpoint{Host: "other", User: "carol"}},
			target{host: "gros-1.g5k", port: 22, user: "bob", keys: []keyFile{{shown: "/k", path: "/k"}, shared},
				jump: &target{host: "other", port: 22, user: "carol", keys: []keyFile{shared}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolve(cfg, tt.ep, 0)
			if err != nil {
				t.Fatal(err)
			}
			setDefaults(&tt.want)
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %s %+v\nwant %s %+v", got, *got, &tt.want, tt.want)
			}
		})
	}
}

// setDefaults fills the host key fields every test target shares.
func setDefaults(t *target) {
	for ; t != nil; t = t.jump {
		t.policy, t.knownHosts = Strict, expandHome("~/.ssh/known_hosts")
	}
}

func TestSSHConfigProxyJumpChain(t *testing.T) {
	cfg, err := parseSSHConfig(strings.NewReader("Host inner\n  ProxyJump me@outer:2022,mid\nHost *\n  ProxyJump gw\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := resolve(cfg, Endpoint{Host: "inner", User: "u"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// inner is reached through mid, mid through outer (the hops given);
	// outer, having none given, takes gw from "Host *"; gw's own ProxyJump
	// (itself) is ignored.
	var chain []string
	for j := got; j != nil; j = j.jump {
		chain = append(chain, j.host)
	}
	if want := []string{"inner", "mid", "outer", "gw"}; !reflect.DeepEqual(chain, want) {
		t.Errorf("chain %v, want %v", chain, want)
	}
	if got.jump.jump.user != "me" || got.jump.jump.port != 2022 {
		t.Errorf("outer hop: %s", got.jump.jump)
	}
}

func TestWildcard(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*.g5k", "a.g5k", true},
		{"*.g5k", "a.g5k.org", false},
		{"node-??", "node-01", true},
		{"node-??", "node-1", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"10.0.0.?", "10.0.0.7", true},
	}
	for _, tt := range tests {
		if got := wildcard(tt.pat, tt.s); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v", tt.pat, tt.s, got)
		}
	}
}

// writeFile writes a file under dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSSHConfigInclude: an Include is read in its place, relative to
// ~/.ssh, from the home (~/) or absolute, each word a glob whose files come
// in name order; inside a Host block it applies to that block's hosts only.
func TestSSHConfigInclude(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	other := t.TempDir()
	writeFile(t, home, ".ssh/lab.conf", "Host lab-*\n  User labuser\n")
	writeFile(t, home, "conf/home.conf", "Host home-*\n  User homeuser\n")
	abs := writeFile(t, other, "abs.conf", "Host abs-*\n  User absuser\n")
	writeFile(t, other, "d/10-b.conf", "Host glob-*\n  Port 1010\n  IdentityFile ~/b\n")
	writeFile(t, other, "d/20-a.conf", "Host glob-*\n  Port 2020\n  IdentityFile ~/a\n")
	writeFile(t, other, "d/30-skip.txt", "Host glob-*\n  Port 3030\n")
	writeFile(t, other, "block.conf", "User inblock\n")
	cfg, err := parseSSHConfig(strings.NewReader("Include lab.conf ~/conf/home.conf " + abs + "\n" +
		"Include " + filepath.Join(other, "d", "*.conf") + " " + filepath.Join(other, "none", "*.conf") + "\n" +
		"Host blocked-*\n  Include " + filepath.Join(other, "block.conf") + "\n" +
		"Host *\n  User fallback\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, key string
		want            []string
	}{
		{"relative to ~/.ssh", "lab-1", "user", []string{"labuser", "fallback"}},
		{"from the home", "home-1", "user", []string{"homeuser", "fallback"}},
		{"absolute", "abs-1", "user", []string{"absuser", "fallback"}},
		{"a glob, in name order", "glob-1", "port", []string{"1010", "2020"}},
		{"a glob, every value", "glob-1", "identityfile", []string{"~/b", "~/a"}},
		{"inside a Host block", "blocked-1", "user", []string{"inblock", "fallback"}},
		{"not for other hosts", "free", "user", []string{"fallback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cfg.values(tc.host, tc.key); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s of %s: %q, want %q", tc.key, tc.host, got, tc.want)
			}
		})
	}
}

func TestSSHConfigIncludeLoop(t *testing.T) {
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop.conf")
	writeFile(t, dir, "loop.conf", "Include "+loop+"\n")
	_, err := parseSSHConfig(strings.NewReader("Include " + loop + "\n"))
	if err == nil || !strings.Contains(err.Error(), "max recurse depth exceeded") {
		t.Errorf("an Include of itself: %v, want an error", err)
	}
}

// TestSSHConfigMatch: the library reads Match host and Match all; every
// other criterion (exec, user, originalhost...) is refused with its line
// and column rather than ignored, and so is a second criterion on a line,
// which the library would read as host patterns.
func TestSSHConfigMatch(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"Match host applies", "Match host a*\n  User m\nHost *\n  User f\n", "m"},
		{"Match host with a negation", "Match host a* !ab\n  User m\nHost *\n  User f\n", "f"},
		{"Match all applies", "Host b\n  User b\nMatch all\n  User m\n", "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseSSHConfig(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.first("ab", "user"); got != tc.want {
				t.Errorf("User of ab: %q, want %q", got, tc.want)
			}
		})
	}
	// The Match lines e2c cannot evaluate: their blocks apply to no host,
	// the rest of the file still does.
	for _, tc := range []struct{ name, text string }{
		{"Match exec", "Host a*\n  User a\nMatch exec \"true\"\n  User m\n"},
		{"Match user", "Match user bob\n  User m\nHost a*\n  User a\n"},
		{"Match originalhost", "Match originalhost ab\n  User m\nHost *\n  User a\n"},
		{"Match host with a second criterion", "Match host ab user bob\n  User m\nHost *\n  User a\n"},
		{"Match= with a criterion", "Match=exec true\n  User m\nHost *\n  User a\n"},
	} {
		t.Run(tc.name+" applies to no host", func(t *testing.T) {
			cfg, err := parseSSHConfig(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.first("ab", "user"); got != "a" {
				t.Errorf("User of ab: %q, want a", got)
			}
		})
	}
}

func TestSSHConfigHostWithoutPattern(t *testing.T) {
	_, err := parseSSHConfig(strings.NewReader("Host a\n  User a\nHost\n  User m\n"))
	if err == nil || err.Error() != `"Host": Host without a pattern` {
		t.Errorf("got %v, want an error naming the Host line", err)
	}
}
