package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestKnownHostsReread: a known hosts file is parsed once while it stays
// the same, and again as soon as it changes, whoever changes it: in
// place with a line of the same length, replaced by a rename, removed.
func TestKnownHostsReread(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known_hosts")
	name := "10.0.0.1:22"
	key := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := key(), key()
	line := func(k ssh.PublicKey) []byte {
		return []byte(knownhosts.Line([]string{knownhosts.Normalize(name)}, k) + "\n")
	}
	h := &hostKeys{policy: Strict, file: file, name: name}
	check := func(step string, k ssh.PublicKey, known bool) {
		t.Helper()
		knownHostsMu.Lock()
		cb, err := h.load()
		knownHostsMu.Unlock()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := cb(name, dummyAddr, k); (err == nil) != known {
			t.Errorf("%s: key %s: %v, want known %v", step, ssh.FingerprintSHA256(k), err, known)
		}
	}
	write := func(content []byte) {
		t.Helper()
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	check("no file", a, false)
	write(line(a))
	check("a recorded", a, true)
	check("a recorded, read again", b, false)

	// The same length, and a modification time that may fall on the same
	// tick of a coarse clock: only the time's nanoseconds differ.
	write(line(b))
	fi, _ := os.Stat(file)
	old := knownHostsRead[file].stat.ModTime()
	if err := os.Chtimes(file, time.Time{}, old.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if fi.Size() != knownHostsRead[file].stat.Size() {
		t.Fatalf("the lines differ in length")
	}
	check("b written over a", b, true)
	check("b written over a", a, false)

	// Replaced by a rename, with the modification time of the file before.
	next := file + ".new"
	if err := os.WriteFile(next, line(a), 0o600); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.Stat(file)
	if err := os.Chtimes(next, time.Time{}, cur.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, file); err != nil {
		t.Fatal(err)
	}
	check("a renamed over b", a, true)

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	check("removed", a, false)
	if _, ok := knownHostsRead[file]; ok {
		t.Error("a removed file is still held")
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Error("load wrote the file")
	}
}
