package results

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestManifest(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"app/main.go": "package main\n", "data/rides.csv": "1,2\n", "README": "x"}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	sums, err := HashTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteManifest(&buf, sums)
	// sha256("x"), and files in path order.
	if got := buf.String(); !bytes.HasPrefix([]byte(got), []byte("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  README\n")) {
		t.Errorf("manifest:\n%s", got)
	}
	// sha256sum reads it as its own.
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "-c", "--quiet", "-")
		cmd.Dir, cmd.Stdin = dir, bytes.NewReader(buf.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v: %s", err, out)
		}
	}
	back, err := ReadManifest(&buf)
	if err != nil || !reflect.DeepEqual(back, sums) {
		t.Fatalf("read back %v, %v", back, err)
	}
	os.WriteFile(filepath.Join(dir, "data/rides.csv"), []byte("1,3\n"), 0o644)
	os.Remove(filepath.Join(dir, "README"))
	os.WriteFile(filepath.Join(dir, "new.txt"), nil, 0o644)
	now, _ := HashTree(dir)
	got := Diff(sums, now)
	if len(got) != 3 || got[0] != "added: new.txt" || got[2] != "missing: README" || !bytes.HasPrefix([]byte(got[1]), []byte("changed: data/rides.csv (sha256 ")) {
		t.Errorf("diff %q", got)
	}
	if d := Diff(now, now); len(d) != 0 {
		t.Errorf("no change: %q", d)
	}
	if _, err := ReadManifest(bytes.NewReader([]byte("nonsense\n"))); err == nil {
		t.Error("a bad manifest was read")
	}
}
