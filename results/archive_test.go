package results

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestArchiveLeavesNothingHalfDone: a failed archive leaves no file, an
// existing one is never replaced, and no temporary file stays beside it.
func TestArchiveLeavesNothingHalfDone(t *testing.T) {
	scenario, dir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(scenario, "layers_services.yaml"), []byte("layers: []\n"), 0o644)
	out := filepath.Join(dir, "paper.tar.gz")

	err := Archive(context.Background(), scenario, out, filepath.Join(dir, "no-such-artifacts"))
	if err == nil {
		t.Fatal("an archive of missing artifacts succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Archive(ctx, scenario, out, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled archive: %v", err)
	}
	if err := Archive(context.Background(), scenario, out, ""); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(out)
	if err := Archive(context.Background(), scenario, out, ""); !errors.Is(err, fs.ErrExist) {
		t.Errorf("a second archive at %s: %v, want it refused", out, err)
	}
	if after, _ := os.ReadFile(out); string(after) != string(before) || len(before) == 0 {
		t.Error("the archive changed")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files beside the archive: %v", ents)
	}
}
