package results

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Archive packs a scenario for an artifact repository into a new tar.gz
// at out: the scenario files, every run folder, the summaries, the
// artifacts when given, and a README saying how to reproduce the runs. The
// scenario's .e2c state (keys, reservations) never goes in. An existing
// out is never overwritten, and out appears only once complete and on
// disk.
func Archive(ctx context.Context, scenario, out, artifacts string) error {
	recs, err := Runs(scenario)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s: %w", out, fs.ErrExist)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".tmp-archive-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	root := strings.TrimSuffix(filepath.Base(out), ".tar.gz")
	err = addTree(ctx, tw, scenario, root+"/scenario", func(rel string, d fs.DirEntry) bool {
		return d.IsDir() && d.Name() == ".e2c" // state: keys and reservations, here or in a nested scenario
	})
	if err == nil && artifacts != "" {
		err = addTree(ctx, tw, artifacts, root+"/artifacts", nil)
	}
	if err == nil {
		err = addFile(tw, root+"/README.md", []byte(archiveReadme(scenario, recs, artifacts != "")))
	}
	for _, c := range []io.Closer{tw, zw} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644) // CreateTemp makes it 0600
	}
	if err == nil {
		err = os.Link(f.Name(), out) // unlike a rename, never replaces a file made meanwhile
	}
	if err == nil {
		err = syncDir(filepath.Dir(out))
	}
	return err
}

// addTree adds the files under dir (links followed) below prefix, leaving
// out what skip says.
func addTree(ctx context.Context, tw *tar.Writer, dir, prefix string, skip func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			return err // folders come with their files; special files are not results
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return addFile(tw, prefix+"/"+filepath.ToSlash(rel), data)
	})
}

func addFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func archiveReadme(scenario string, recs []*Record, withArtifacts bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: an e2c experiment and its runs\n\n", filepath.Base(scenario))
	b.WriteString("`scenario/` is the scenario folder: its files and, in each `YYYYMMDD-HHMMSS/` folder, one run with\n")
	b.WriteString("everything it used (`scenario/`, `artifacts.sha256`, `run.json`) and produced.\n\n")
	b.WriteString("| run | status | repeat | app_conf | e2c |\n|---|---|---|---|---|\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %s |\n", filepath.Base(r.Dir()), r.Status, r.Repeat+1, r.RepeatCount, strings.Join(r.AppConfs, ","), r.E2C)
	}
	artifacts := "ARTIFACTS_DIR"
	if withArtifacts {
		artifacts = "artifacts"
	}
	fmt.Fprintf(&b, `
## Reproduce

With e2c (https://github.com/e2c-dev/e2c) built:

    e2c validate scenario
    e2c results summarize scenario                    # the summaries of the runs here
    e2c reproduce scenario/<run> %s      # one run again, artifacts checked first
    e2c deploy scenario %s --repeat N    # the whole series

`+"`e2c reproduce`"+` refuses artifacts that differ from the run's `+"`artifacts.sha256`"+` and names
every difference. The testbed is in `+"`scenario/layers_services.yaml`"+` (the
`+"`environment`"+` block); the hosts each run had are in its `+"`run.json`"+`.
`, artifacts, artifacts)
	return b.String()
}
