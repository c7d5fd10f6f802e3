package results

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ManifestFile is the artifacts manifest of a run folder, in sha256sum's
// format. Its paths lead from the run folder to the artifacts folder, so
// that `sha256sum -c artifacts.sha256` checks it in the run folder, as long
// as the two folders keep their places (as in a copy of both).
const ManifestFile = "artifacts.sha256"

// rootComment names, in a manifest, the artifacts folder its paths start
// with; sha256sum skips comment lines.
const rootComment = "# artifacts: "

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

// WriteManifest writes the manifest of the artifacts folder into runDir.
func WriteManifest(runDir, artifacts string, sums []Sum) error {
	root, err := relPath(runDir, artifacts)
	if err != nil {
		return err
	}
	return WriteFile(runDir, ManifestFile, func(w io.Writer) error { return writeManifest(w, root, sums) })
}

// relPath is the path from one folder to another, links resolved (".."
// leads up from where a link goes, not from the link).
func relPath(from, to string) (string, error) {
	for _, p := range []*string{&from, &to} {
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p, err = filepath.EvalSymlinks(abs)
		}
		if err != nil {
			return "", err
		}
	}
	rel, err := filepath.Rel(from, to)
	return filepath.ToSlash(rel), err
}

// writeManifest writes sums as sha256sum does, "<hex>  <root>/<path>",
// after comments saying how to check them and naming root.
func writeManifest(w io.Writer, root string, sums []Sum) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# The SHA-256 of every file of the artifacts folder this run used, as paths from\n"+
		"# the run folder: check them there with `sha256sum -c %s`\n"+
		"# (e2c reproduce checks them wherever the artifacts folder is).\n%s%s\n", ManifestFile, rootComment, escape(root))
	for _, s := range sums {
		p, mark := path.Join(root, s.Path), ""
		if e := escape(p); e != p {
			p, mark = e, `\` // sha256sum's mark of an escaped name
		}
		fmt.Fprintf(bw, "%s%s  %s\n", mark, s.SHA256, p)
	}
	return bw.Flush()
}

// ReadManifest reads a manifest, with paths relative to the artifacts
// folder. Manifests written before the paths led from the run folder have
// no root: their paths are already relative to the artifacts folder.
func ReadManifest(r io.Reader) ([]Sum, error) {
	var out []Sum
	root := "."
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, rootComment); ok {
			root = unescape(rest)
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		escaped := strings.HasPrefix(line, `\`)
		sum, p, ok := strings.Cut(strings.TrimPrefix(line, `\`), "  ")
		if !ok || len(sum) != 64 || p == "" {
			return nil, fmt.Errorf("line %d: expected \"<sha256>  <path>\"", n)
		}
		if escaped {
			p = unescape(p)
		}
		if root != "." {
			if p, ok = strings.CutPrefix(p, root+"/"); !ok {
				return nil, fmt.Errorf("line %d: %s is not in the artifacts folder %s", n, p, root)
			}
		}
		out = append(out, Sum{Path: p, SHA256: sum})
	}
	return out, sc.Err()
}

// escape and unescape are sha256sum's for names holding a backslash or a
// line break.
var (
	escape   = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace
	unescape = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace
)

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
