package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestPerRun: a fetch in launch writes into the artifacts folder
// (working_dir there), so each run of a --repeat deploy records the
// artifacts as they were when it started, a file rewritten at the same
// size included.
func TestManifestPerRun(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  launch:
  - shell: echo "run {{ current_repeat }}" > out.txt
  - fetch: {src: out.txt, dest: "{{ working_dir }}/fetched.txt", flat: yes}
`), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 2, Out: &out}, Release)
	if err != nil || len(runs) != 3 {
		t.Fatalf("deploy: %v %v\n%s", runs, err, out.String())
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for i, want := range []string{"", sum("run 0\n"), sum("run 1\n")} {
		m := readFile(t, filepath.Join(runs[i], "artifacts.sha256"))
		has := strings.Contains(m, "/fetched.txt\n")
		if want == "" && has || want != "" && !strings.Contains(m, want+"  ../../artifacts/fetched.txt\n") {
			t.Errorf("run %d's manifest, want fetched.txt with sha256 %q:\n%s", i+1, want, m)
		}
	}
}

// BenchmarkArtifactSums hashes the quickstart's artifacts: all of them,
// as the first run of a deploy does, and again with nothing changed, as
// the next runs do.
func BenchmarkArtifactSums(b *testing.B) {
	dir := "../../examples/quickstart/artifacts"
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			if _, err := (artifactHashes{}).sums(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		c := artifactHashes{}
		c.sums(dir)
		for b.Loop() {
			if _, err := c.sums(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
