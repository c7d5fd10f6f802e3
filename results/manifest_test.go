package results

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sha256sumCheck runs `sha256sum -c artifacts.sha256` in dir, as a reader
// of the run folder would.
func sha256sumCheck(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("sha256sum", "-c", "--strict", "--quiet", ManifestFile)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c in %s: %v: %s", dir, err, out)
	}
}

func TestManifest(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum (coreutils) not installed: the manifest's format cannot be checked against it")
	}
	// The two layouts of a scenario and its artifacts: beside each other,
	// and the artifacts inside the scenario (the quickstart).
	for _, layout := range []struct{ name, artifacts, run string }{
		{"beside", "artifacts", "scenario/20260101-000000"},
		{"inside", "quickstart/artifacts", "quickstart/20260101-000000"},
	} {
		t.Run(layout.name, func(t *testing.T) {
			root := t.TempDir()
			artifacts, run := filepath.Join(root, layout.artifacts), filepath.Join(root, layout.run)
			writeTree(t, artifacts, map[string]string{"app/main.go": "package main\n", "data/rides.csv": "1,2\n", "README": "x",
				`back\slash`: "b", "line\nbreak": "l"})
			os.MkdirAll(run, 0o755)
			sums, err := HashTree(artifacts)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteManifest(run, artifacts, sums); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(filepath.Join(run, ManifestFile))
			// sha256("x"), in sha256sum's format, from the run folder.
			if !strings.Contains(string(data), "\n2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  ../") {
				t.Errorf("manifest:\n%s", data)
			}
			sha256sumCheck(t, run)
			// An evaluator's copy of the two folders checks the same.
			copied := t.TempDir()
			if out, err := exec.Command("cp", "-r", root+"/.", copied).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			sha256sumCheck(t, filepath.Join(copied, layout.run))
			back, err := ReadManifest(bytes.NewReader(data))
			if err != nil || !reflect.DeepEqual(back, sums) {
				t.Fatalf("read back %v, %v; want %v", back, err, sums)
			}
			// A changed file is one sha256sum finds too.
			os.WriteFile(filepath.Join(copied, layout.artifacts, "data", "rides.csv"), []byte("1,3\n"), 0o644)
			cmd := exec.Command("sha256sum", "-c", "--quiet", ManifestFile)
			cmd.Dir = filepath.Join(copied, layout.run)
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "data/rides.csv: FAILED") {
				t.Errorf("a changed file passed: %v %s", err, out)
			}
		})
	}
}

// A link on the way to the run folder: ".." leads up from where it goes,
// and the manifest's paths must too.
func TestManifestThroughLink(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum (coreutils) not installed")
	}
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "real", "artifacts"), map[string]string{"a.txt": "a"})
	os.MkdirAll(filepath.Join(root, "real", "scenario", "run"), 0o755)
	os.Symlink(filepath.Join(root, "real", "scenario"), filepath.Join(root, "scenario"))
	artifacts := filepath.Join(root, "real", "artifacts")
	sums, _ := HashTree(artifacts)
	if err := WriteManifest(filepath.Join(root, "scenario", "run"), artifacts, sums); err != nil {
		t.Fatal(err)
	}
	sha256sumCheck(t, filepath.Join(root, "scenario", "run"))
}

// Manifests written before the paths led from the run folder hold paths
// relative to the artifacts folder: e2c reproduce still reads them.
func TestReadOldManifest(t *testing.T) {
	old := "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  README\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  app/main.go\n"
	got, err := ReadManifest(strings.NewReader(old))
	want := []Sum{{"README", "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},
		{"app/main.go", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"nonsense\n", "# artifacts: ../a\n" + old} {
		if _, err := ReadManifest(strings.NewReader(bad)); err == nil {
			t.Errorf("%q was read", bad)
		}
	}
}

func TestDiff(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"app/main.go": "package main\n", "data/rides.csv": "1,2\n", "README": "x"})
	sums, _ := HashTree(dir)
	os.WriteFile(filepath.Join(dir, "data/rides.csv"), []byte("1,3\n"), 0o644)
	os.Remove(filepath.Join(dir, "README"))
	os.WriteFile(filepath.Join(dir, "new.txt"), nil, 0o644)
	now, _ := HashTree(dir)
	got := Diff(sums, now)
	if len(got) != 3 || got[0] != "added: new.txt" || got[2] != "missing: README" || !strings.HasPrefix(got[1], "changed: data/rides.csv (sha256 ") {
		t.Errorf("diff %q", got)
	}
	if d := Diff(now, now); len(d) != 0 {
		t.Errorf("no change: %q", d)
	}
}
