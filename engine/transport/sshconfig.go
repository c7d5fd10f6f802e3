package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// sshConfig is an ssh_config(5) file as github.com/kevinburke/ssh_config
// reads it (quoting, "key=value", comments, Include, Match host and Match
// all; a block of another Match applies to no host), with the files it
// includes. e2c takes User, Port, IdentityFile,
// ProxyJump and HostName from it, and matches hosts itself, as OpenSSH
// does: the library's ? matches zero or one character, OpenSSH's exactly
// one; OpenSSH compares names without regard to case and unquotes patterns.
type sshConfig struct {
	hosts    []*ssh_config.Host
	included map[*ssh_config.Include][]*sshConfig // in the order of the Include's words, then of names
}

// skipUnreadMatches turns the Match lines that e2c cannot evaluate (a
// criterion other than host and all, such as exec or user, which the
// library refuses, or two criteria on one line, which it would read as
// host patterns) into a Host line that matches no host: their blocks
// apply to no connection of e2c's, as the reader before the library did,
// rather than the whole file being refused or read otherwise than ssh.
func skipUnreadMatches(text []byte) []byte {
	lines := bytes.SplitAfter(text, []byte("\n"))
	for i, l := range lines {
		f := strings.Fields(strings.ToLower(strings.Replace(string(l), "=", " ", 1)))
		if len(f) == 0 || f[0] != "match" {
			continue
		}
		readable := len(f) == 2 && f[1] == "all" ||
			len(f) > 2 && f[1] == "host" && !slices.ContainsFunc(f[2:], func(w string) bool { return slices.Contains(matchCriteria, w) })
		if !readable {
			lines[i] = []byte("Host !*\n")
		}
	}
	return bytes.Join(lines, nil)
}

// The criteria a Match line can name, in ssh_config(5).
var matchCriteria = []string{"all", "canonical", "final", "exec", "localnetwork", "host", "originalhost", "tagged", "command", "user", "localuser", "version", "sessiontype"}

// parseSSHConfig reads an ssh config. The library reads the files it
// includes too, and so stops an Include loop (at five levels); e2c reads
// them again to match their hosts itself.
func parseSSHConfig(r io.Reader) (*sshConfig, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	cfg, err := ssh_config.Decode(bytes.NewReader(skipUnreadMatches(text)))
	if err != nil {
		return nil, err
	}
	c := &sshConfig{hosts: cfg.Hosts, included: map[*ssh_config.Include][]*sshConfig{}}
	for _, h := range cfg.Hosts {
		line, _, _ := strings.Cut(strings.TrimSpace(h.String()), "\n")
		line = strings.TrimSpace(line)
		if len(h.Patterns) == 0 {
			return nil, fmt.Errorf("%q: Host without a pattern", line)
		}
		for _, n := range h.Nodes {
			if inc, ok := n.(*ssh_config.Include); ok {
				if c.included[inc], err = include(inc); err != nil {
					return nil, err
				}
			}
		}
	}
	return c, nil
}

// include reads the files an Include names: absolute, from the home
// directory (~/), or relative to ~/.ssh, each a glob whose names are
// taken in order; a glob that matches nothing is no error.
func include(inc *ssh_config.Include) ([]*sshConfig, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(inc.String()), " #")
	words := strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "Include")), "=")
	var out []*sshConfig
	for _, w := range strings.Fields(words) {
		pat := expandHome(w)
		if !filepath.IsAbs(pat) {
			pat = expandHome(filepath.Join("~/.ssh", w))
		}
		names, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("Include %s: %w", w, err)
		}
		for _, name := range names {
			f, err := os.Open(name)
			if err != nil {
				return nil, err
			}
			c, err := parseSSHConfig(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// values returns the values of key for host, in file order, the files an
// Include names in its place: the first is the one that applies, as in
// OpenSSH.
func (c *sshConfig) values(host, key string) []string {
	if c == nil {
		return nil
	}
	host = strings.ToLower(host)
	var vs []string
	for _, h := range c.hosts {
		if !matches(h, host) {
			continue
		}
		for _, n := range h.Nodes {
			switch n := n.(type) {
			case *ssh_config.KV:
				if strings.EqualFold(n.Key, key) {
					vs = append(vs, n.Value)
				}
			case *ssh_config.Include:
				for _, inc := range c.included[n] {
					vs = append(vs, inc.values(host, key)...)
				}
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

// matches tells whether a Host (or Match host) line applies to host, in
// lower case: a pattern matches and no negated one does.
func matches(h *ssh_config.Host, host string) bool {
	ok := false
	for _, p := range h.Patterns {
		// The library splits patterns at spaces only, and keeps quotes.
		for _, p := range strings.Fields(p.String()) {
			p = strings.ToLower(strings.Trim(p, `"`))
			neg := strings.HasPrefix(p, "!")
			if wildcard(strings.TrimPrefix(p, "!"), host) {
				if neg {
					return false
				}
				ok = true
			}
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
