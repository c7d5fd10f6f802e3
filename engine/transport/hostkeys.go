package transport

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyPolicy says how SSH host keys are checked.
type HostKeyPolicy string

const (
	Strict    HostKeyPolicy = "strict"     // the key must already be in KnownHosts (default: ~/.ssh/known_hosts)
	AcceptNew HostKeyPolicy = "accept-new" // unknown hosts are added to KnownHosts (a per-experiment file); a CHANGED key is always an error showing both fingerprints
	Off       HostKeyPolicy = "off"        // no check; the caller warns the user
)

// knownHostsMu serialises reading and appending known_hosts files, so that
// parallel dials never read a half-written line or add a host twice. It
// guards knownHostsRead.
var knownHostsMu sync.Mutex

// knownHostsRead holds each known hosts file as last parsed, with what
// Stat said of it just before: N hosts checked against one file parse it
// once, not 2N times (each parse reads all N lines), and a file changed
// since, by e2c or anyone, is parsed again.
var knownHostsRead = map[string]parsedHosts{}

type parsedHosts struct {
	stat os.FileInfo
	cb   ssh.HostKeyCallback
}

// same tells whether a and b describe the same version of one file.
func same(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// hostKeys checks the key of one host, named name ("host:port", the name
// dialled, not the address reached: behind a bastion that is meaningless).
type hostKeys struct {
	policy HostKeyPolicy
	file   string
	name   string
	err    error // the last rejection, kept whole for the caller's message
}

// load reads the known hosts file, unless it is as last read; a missing
// file knows no host. The caller holds knownHostsMu.
func (h *hostKeys) load() (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(h.file)
	if errors.Is(err, os.ErrNotExist) {
		delete(knownHostsRead, h.file)
		return func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }, nil
	}
	if err != nil {
		return nil, err
	}
	if p, ok := knownHostsRead[h.file]; ok && same(p.stat, fi) {
		return p.cb, nil
	}
	cb, err := knownhosts.New(h.file)
	if err != nil {
		return nil, err
	}
	knownHostsRead[h.file] = parsedHosts{fi, cb}
	return cb, nil
}

// placeholder is a key no host has; checking it lists the keys recorded.
var placeholder, _ = ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

// algorithms returns the host key algorithms to offer: those of the keys
// already recorded for the host, so that a server preferring another type
// does not fail against a known key (golang/go#29286). nil means any.
func (h *hostKeys) algorithms() ([]string, error) {
	if h.policy == Off {
		return nil, nil
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	cb, err := h.load()
	if err != nil {
		return nil, fmt.Errorf("known hosts %s: %w", h.file, err)
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(h.name, dummyAddr, placeholder), &ke) {
		return nil, nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		t := k.Key.Type()
		if seen[t] {
			continue
		}
		seen[t] = true
		if t == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		algos = append(algos, t)
	}
	return algos, nil
}

var dummyAddr = &net.TCPAddr{IP: net.IPv4zero}

// callback is the ssh.HostKeyCallback. It ignores the remote address.
func (h *hostKeys) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	if h.policy == Off {
		return nil
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	cb, err := h.load()
	if err != nil {
		return h.fail(fmt.Errorf("known hosts %s: %w", h.file, err))
	}
	err = cb(h.name, dummyAddr, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return h.fail(fmt.Errorf("host key %s is revoked in %s:%d", ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line))
	case !errors.As(err, &ke):
		return h.fail(err)
	case len(ke.Want) > 0:
		known := make([]string, len(ke.Want))
		for i, w := range ke.Want {
			known[i] = ssh.FingerprintSHA256(w.Key)
		}
		w := ke.Want[0]
		return h.fail(fmt.Errorf("host key mismatch: known %s, offered %s (the host was reinstalled? remove its line from %s, line %d)",
			strings.Join(known, " "), ssh.FingerprintSHA256(key), w.Filename, w.Line))
	case h.policy != AcceptNew:
		return h.fail(fmt.Errorf("unknown host key %s (not in %s: add it with ssh-keyscan, or use host_keys: %s)",
			ssh.FingerprintSHA256(key), h.file, AcceptNew))
	}
	return h.fail(h.add(key))
}

func (h *hostKeys) fail(err error) error {
	h.err = err
	return err
}

// add appends the host's key to the file; the caller holds knownHostsMu.
func (h *hostKeys) add(key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(h.name)}, key) + "\n"
	if old, err := os.ReadFile(h.file); err == nil && len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		line = "\n" + line
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
