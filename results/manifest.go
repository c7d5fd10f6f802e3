package results

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ManifestFile is the artifacts manifest of a run folder, in sha256sum's
// format, so that `sha256sum -c` checks it too.
const ManifestFile = "artifacts.sha256"

// Sum is one file of a manifest: its path relative to the tree and its
// SHA-256.
type Sum struct {
	Path, SHA256 string
}

// HashTree hashes every regular file under dir (links to files followed),
// sorted by path.
func HashTree(dir string) ([]Sum, error) {
	var out []Sum
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			return err // special files and dangling links are not artifacts
		}
		sum, err := FileSHA256(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, Sum{Path: filepath.ToSlash(rel), SHA256: sum})
		return nil
	})
	slices.SortFunc(out, func(a, b Sum) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}

// FileSHA256 is the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteManifest writes sums as sha256sum does: "<hex>  <path>".
func WriteManifest(w io.Writer, sums []Sum) error {
	bw := bufio.NewWriter(w)
	for _, s := range sums {
		fmt.Fprintf(bw, "%s  %s\n", s.SHA256, s.Path)
	}
	return bw.Flush()
}

// ReadManifest reads what WriteManifest wrote.
func ReadManifest(r io.Reader) ([]Sum, error) {
	var out []Sum
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || path == "" {
			return nil, fmt.Errorf("line %d: expected \"<sha256>  <path>\"", n)
		}
		out = append(out, Sum{Path: path, SHA256: sum})
	}
	return out, sc.Err()
}

// Diff lists how the tree now differs from the manifest: files changed,
// missing and added, one line each, sorted.
func Diff(manifest, now []Sum) []string {
	was := map[string]string{}
	for _, s := range manifest {
		was[s.Path] = s.SHA256
	}
	var out []string
	for _, s := range now {
		old, ok := was[s.Path]
		switch {
		case !ok:
			out = append(out, "added: "+s.Path)
		case old != s.SHA256:
			out = append(out, fmt.Sprintf("changed: %s (sha256 %s… was %s…)", s.Path, s.SHA256[:12], old[:12]))
		}
		delete(was, s.Path)
	}
	for p := range was {
		out = append(out, "missing: "+p)
	}
	slices.Sort(out)
	return out
}
