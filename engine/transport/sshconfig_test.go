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
		{"? wildcard and %h", Endpoint{Host: "node-01"},
			target{host: "node-01.internal", port: 2200, user: "fallback", keys: []keyFile{key("~/.ssh/lab key"), shared}}},
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
