package results

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewRunDirUnique(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 10, 15, 0, 0, time.Local)
	var wg sync.WaitGroup
	got := make([]string, 20)
	errs := make([]error, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = NewRunDir(dir, now)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, d := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[d] {
			t.Fatalf("folder %s handed out twice", d)
		}
		seen[d] = true
	}
	for _, want := range []string{"20261122-101500", "20261122-101500-2", "20261122-101500-20"} {
		if !seen[filepath.Join(dir, want)] {
			t.Errorf("missing %s in %v", want, got)
		}
	}
}

func TestPathStaysInside(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/tmp", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel string
		ok  bool
	}{
		{"plan.json", true},
		{"experiment-results/gw/1/opt/metrics", true},
		{"a/./b", true},
		{".", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"/etc/passwd", false},
		{"..", false},
		{"", false},
		{"link/x", false},
	}
	for _, tt := range tests {
		p, err := Path(dir, tt.rel)
		if (err == nil) != tt.ok {
			t.Errorf("Path(%q) = %q, %v; want ok=%v", tt.rel, p, err, tt.ok)
		}
		if err == nil && !strings.HasPrefix(p, dir+string(os.PathSeparator)) {
			t.Errorf("Path(%q) = %q is outside %s", tt.rel, p, dir)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(dir, "sub/f.txt", func(w io.Writer) error { _, err := io.WriteString(w, "ok"); return err }); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "sub/f.txt")); string(data) != "ok" {
		t.Errorf("content = %q", data)
	}
	if st, err := os.Stat(filepath.Join(dir, "sub/f.txt")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v; want 0644 like any result file", st.Mode(), err)
	}
	boom := errors.New("boom")
	if err := WriteFile(dir, "sub/g.txt", func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) != 1 {
		t.Errorf("a failed write left files: %v", entries)
	}
}
