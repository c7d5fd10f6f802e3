package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// sshConfig is the subset of ssh_config(5) e2c honours: User, Port,
// IdentityFile, ProxyJump and HostName inside Host blocks. Match blocks and
// other keywords are ignored.
type sshConfig struct{ blocks []sshConfigBlock }

type sshConfigBlock struct {
	patterns []string // nil matches every host (options before the first Host)
	never    bool     // a Match block: not supported, never applies
	options  [][2]string
}

func parseSSHConfig(r io.Reader) (*sshConfig, error) {
	c := &sshConfig{blocks: []sshConfigBlock{{}}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val := line, ""
		if i := strings.IndexAny(line, " \t="); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i:])
			val = strings.TrimSpace(strings.TrimPrefix(val, "="))
		}
		key = strings.ToLower(key)
		switch key {
		case "host":
			pats := strings.Fields(val)
			if len(pats) == 0 {
				return nil, fmt.Errorf("ssh config line %d: Host without a pattern", n)
			}
			for i, p := range pats {
				pats[i] = strings.Trim(p, `"`)
			}
			c.blocks = append(c.blocks, sshConfigBlock{patterns: pats})
		case "match":
			c.blocks = append(c.blocks, sshConfigBlock{never: true})
		default:
			b := &c.blocks[len(c.blocks)-1]
			b.options = append(b.options, [2]string{key, unquote(val)})
		}
	}
	return c, sc.Err()
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// values returns the values of key (lower case) for host, in file order:
// the first is the one that applies, as in OpenSSH.
func (c *sshConfig) values(host, key string) []string {
	if c == nil {
		return nil
	}
	var vs []string
	for _, b := range c.blocks {
		if !b.matches(host) {
			continue
		}
		for _, o := range b.options {
			if o[0] == key {
				vs = append(vs, o[1])
			}
		}
	}
	return vs
}

func (c *sshConfig) first(host, key string) string {
	if vs := c.values(host, key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func (b *sshConfigBlock) matches(host string) bool {
	if b.never {
		return false
	}
	if b.patterns == nil {
		return true
	}
	host = strings.ToLower(host)
	ok := false
	for _, p := range b.patterns {
		neg := strings.HasPrefix(p, "!")
		if wildcard(strings.ToLower(strings.TrimPrefix(p, "!")), host) {
			if neg {
				return false
			}
			ok = true
		}
	}
	return ok
}

// wildcard matches s against a pattern of * (any run) and ? (one character).
func wildcard(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(pat[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pat[0] {
				return false
			}
		}
		pat, s = pat[1:], s[1:]
	}
	return s == ""
}

// parseJump parses one ProxyJump hop, [user@]host[:port].
func parseJump(s string) (Endpoint, error) {
	var e Endpoint
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		e.User, s = s[:i], s[i+1:]
	}
	e.Host = s
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return e, fmt.Errorf("ProxyJump %q: %w", s, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			return e, fmt.Errorf("ProxyJump %q: bad port", s)
		}
		e.Host, e.Port = h, port
	}
	if e.Host == "" {
		return e, fmt.Errorf("ProxyJump %q: no host", s)
	}
	return e, nil
}

// target is an Endpoint resolved against the ssh config and the defaults.
type target struct {
	host       string // to dial: HostName from the config, else Endpoint.Host
	port       int
	user       string
	keys       []keyFile
	policy     HostKeyPolicy
	knownHosts string
	jump       *target
}

type keyFile struct {
	shown, path string
	optional    bool // one of OpenSSH's default names, tried only if present
}

func (t *target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

func (t *target) String() string {
	s := t.user + "@" + t.addr()
	if t.jump != nil {
		s += " via " + t.jump.String()
	}
	return s
}

// key identifies the connection in the pool.
func (t *target) key() string {
	var b strings.Builder
	for ; t != nil; t = t.jump {
		fmt.Fprintf(&b, "%s|%s|%s|", t, t.policy, t.knownHosts)
		for _, k := range t.keys {
			b.WriteString(k.path + "|")
		}
		b.WriteString(">")
	}
	return b.String()
}

// resolve fills what e leaves unset from cfg (which may be nil) and the
// defaults. Values set in e win.
func resolve(cfg *sshConfig, e Endpoint, depth int) (*target, error) {
	if e.Host == "" {
		return nil, errors.New("no host")
	}
	if depth > 8 {
		return nil, errors.New("ProxyJump chain too long (a loop in the ssh config?)")
	}
	t := &target{host: e.Host, port: e.Port, user: e.User, policy: e.HostKeys, knownHosts: e.KnownHosts}
	if hn := cfg.first(e.Host, "hostname"); hn != "" {
		t.host = strings.ReplaceAll(hn, "%h", e.Host)
	}
	if t.port == 0 {
		if v := cfg.first(e.Host, "port"); v != "" {
			port, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("ssh config: bad Port %q", v)
			}
			t.port = port
		} else {
			t.port = 22
		}
	}
	if t.user == "" {
		t.user = cfg.first(e.Host, "user")
	}
	if t.user == "" {
		t.user = currentUser()
	}
	for _, k := range e.KeyFiles {
		t.keys = append(t.keys, keyFile{shown: k, path: expandHome(k)})
	}
	for _, k := range cfg.values(e.Host, "identityfile") {
		t.keys = append(t.keys, keyFile{shown: k, path: expandHome(k)})
	}
	if len(t.keys) == 0 {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			k := "~/.ssh/" + n
			t.keys = append(t.keys, keyFile{shown: k, path: expandHome(k), optional: true})
		}
	}
	switch t.policy {
	case "":
		t.policy = Strict
	case Strict, AcceptNew, Off:
	default:
		return nil, fmt.Errorf("unknown host_keys policy %q (want %s, %s or %s)", t.policy, Strict, AcceptNew, Off)
	}
	if t.knownHosts == "" {
		t.knownHosts = "~/.ssh/known_hosts"
	}
	t.knownHosts = expandHome(t.knownHosts)

	jump := e.Jump
	if jump == nil {
		if pj := cfg.first(e.Host, "proxyjump"); pj != "" && pj != "none" {
			// "a,b": a is reached first, b through a, the host through b.
			for _, hop := range strings.Split(pj, ",") {
				j, err := parseJump(strings.TrimSpace(hop))
				if err != nil {
					return nil, err
				}
				if j.Host == e.Host {
					continue // "Host *" with a ProxyJump also matches the bastion
				}
				j.Jump = jump
				jump = &j
			}
		}
	}
	if jump != nil {
		j, err := resolve(cfg, *jump, depth+1)
		if err != nil {
			return nil, fmt.Errorf("jump %s: %w", jump.Host, err)
		}
		t.jump = j
	}
	return t, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// expandHome expands a leading ~/ (and %d, OpenSSH's token for it).
func expandHome(p string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return strings.ReplaceAll(p, "%d", home)
}
