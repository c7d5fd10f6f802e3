package transport

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBundle: a bundle holds each content once, whatever the files' names,
// order and times, so that the same contents make the same bundle (a host
// keeps it from run to run), and other contents another one.
func TestBundle(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		return p
	}
	then, now := time.Unix(1e9, 0), time.Now()
	a, b, c := write("a", "one", then), write("b", "two", then), write("c", "one", then)
	x, y := write("x", "two", now), write("y", "one", now)
	z := write("z", "three", now)
	sumOf := func(files ...string) string {
		name, err := Bundle(t.TempDir(), files)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := Blob(name)
		if err != nil {
			t.Fatal(err)
		}
		return blob
	}
	first := sumOf(a, b, c)
	if got := sumOf(x, y); got != first {
		t.Errorf("the same contents made another bundle: %s, then %s", first, got)
	}
	if got := sumOf(x, z); got == first {
		t.Errorf("other contents made the same bundle %s", got)
	}

	name, err := Bundle(t.TempDir(), []string{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(name)
	defer f.Close()
	members := 0
	for tr := tar.NewReader(f); ; members++ {
		if _, err := tr.Next(); err != nil {
			break
		}
	}
	if members != 2 {
		t.Errorf("%d members, want 2 (one per content)", members)
	}
}
