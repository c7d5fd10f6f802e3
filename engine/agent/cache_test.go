package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCache: OpCache copies each file from its blob, else from a bundle's
// member of its name, says false for what is nowhere, and stops with an
// error on a damaged bundle.
func TestCache(t *testing.T) {
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, "aaaa"), []byte("from a blob"), 0o600)
	var tarred bytes.Buffer
	tw := tar.NewWriter(&tarred)
	for _, m := range [][2]string{{"bbbb", "from the bundle"}, {"cccc", "also"}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m[0], Size: int64(len(m[1])), Mode: 0o600})
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	bundle := filepath.Join(blobs, "bundle")
	os.WriteFile(bundle, tarred.Bytes(), 0o600)
	damaged := filepath.Join(blobs, "damaged")
	os.WriteFile(damaged, tarred.Bytes()[:512+5], 0o600) // bbbb cut short

	file := func(sum, dst string) CacheFile {
		return CacheFile{Blob: filepath.Join(blobs, sum), Dst: filepath.Join(dir, dst), Perm: 0o640, Mtime: 1e18}
	}
	for _, tt := range []struct {
		name    string
		files   []CacheFile
		bundles []string
		copied  []bool
		want    map[string]string // dst: content
		err     bool
	}{
		{"blob", []CacheFile{file("aaaa", "a")}, nil, []bool{true}, map[string]string{"a": "from a blob"}, false},
		{"nowhere", []CacheFile{file("bbbb", "b")}, nil, []bool{false}, nil, false},
		{"bundle, twice", []CacheFile{file("bbbb", "b1"), file("cccc", "c"), file("bbbb", "b2")}, []string{filepath.Join(blobs, "missing"), bundle},
			[]bool{true, true, true}, map[string]string{"b1": "from the bundle", "b2": "from the bundle", "c": "also"}, false},
		{"not in the bundle", []CacheFile{file("dddd", "d")}, []string{bundle}, []bool{false}, nil, false},
		{"damaged bundle", []CacheFile{file("bbbb", "b")}, []string{damaged}, []bool{false}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := cache(Request{Op: OpCache, Files: tt.files, Bundles: tt.bundles})
			if (res.Error != "") != tt.err {
				t.Fatalf("error %q, want one: %v", res.Error, tt.err)
			}
			for i, ok := range tt.copied {
				if res.Copied[i] != ok {
					t.Errorf("file %d copied %v, want %v", i, res.Copied[i], ok)
				}
			}
			for dst, body := range tt.want {
				p := filepath.Join(dir, dst)
				got, err := os.ReadFile(p)
				if err != nil || string(got) != body {
					t.Errorf("%s: %q (%v), want %q", dst, got, err, body)
				}
				fi, _ := os.Stat(p)
				if fi.Mode().Perm() != 0o640 || fi.ModTime().UnixNano() != 1e18 {
					t.Errorf("%s: mode %v, mtime %v", dst, fi.Mode().Perm(), fi.ModTime())
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*.e2c-*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
