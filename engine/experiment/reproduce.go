package experiment

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// ReproduceOptions say how to run a run folder again.
type ReproduceOptions struct {
	Artifacts string    // default: the run's own artifacts folder
	Force     bool      // run even when the artifacts differ from the manifest
	Out       io.Writer // the terminal
	Version   string
	Agent     func(goarch string) (string, error)
	NoAgent   bool // see Options.NoAgent
}

// Reproduce runs a run folder's configuration again: the scenario files as
// that run read them (its scenario/ folder, copied into a new scenario
// folder beside the original, reproduce-<run>-N), the same app_conf, run
// index, duration, --testbed and --network, after checking the artifacts
// against its manifest.
// It returns the new run folder.
func Reproduce(ctx context.Context, runDir string, o ReproduceOptions) (string, error) {
	rec, err := results.ReadRecord(runDir)
	if err != nil {
		return "", fmt.Errorf("%s is not a run folder: %w", runDir, err)
	}
	artifacts := o.Artifacts
	if artifacts == "" {
		artifacts = rec.Artifacts
	}
	f, err := os.Open(filepath.Join(runDir, results.ManifestFile))
	if err != nil {
		return "", fmt.Errorf("%s has no artifacts manifest (made by an e2c older than reproduce?): %w", runDir, err)
	}
	manifest, err := results.ReadManifest(f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(runDir, results.ManifestFile), err)
	}
	now, err := results.HashTree(artifacts)
	if err != nil {
		return "", fmt.Errorf("artifacts %s: %w", artifacts, err)
	}
	if diff := results.Diff(manifest, now); len(diff) > 0 {
		report := fmt.Sprintf("the artifacts in %s differ from those run %s used:\n  %s", artifacts, filepath.Base(runDir), strings.Join(diff, "\n  "))
		if !o.Force {
			return "", fmt.Errorf("%s\n(--force runs it anyway, and the new run records the difference in its own manifest)", report)
		}
		fmt.Fprintf(o.Out, "warning: %s\n", report)
	} else {
		fmt.Fprintf(o.Out, "artifacts: all %d files match the manifest of %s\n", len(manifest), filepath.Base(runDir))
	}
	scenario, err := newScenarioCopy(runDir)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Out, "reproducing %s in %s\n", runDir, scenario)
	sayManualChanges(runDir, o.Out)
	network := ""
	if rec.Network != nil {
		network = rec.Network.Mode
	}
	x, err := Open(Options{ScenarioDir: scenario, ArtifactsDir: artifacts, Repeat: rec.RepeatCount - 1,
		Duration: time.Duration(rec.Duration * float64(time.Second)), AppConfs: rec.AppConfs, Out: o.Out,
		Version: o.Version, Agent: o.Agent, NoAgent: o.NoAgent, Testbed: rec.TestbedOverride, Network: network})
	if err != nil {
		return "", err
	}
	defer x.Close()
	only := rec.Repeat
	runs, err := x.deploy(ctx, Release, series{only: &only, reproduces: runDir})
	if len(runs) == 0 {
		return "", err
	}
	return runs[0], err
}

// newScenarioCopy copies a run's scenario/ folder into a new folder beside
// the run's scenario, never reusing one.
func newScenarioCopy(runDir string) (string, error) {
	src := filepath.Join(runDir, results.ScenarioDir)
	if _, err := os.Stat(filepath.Join(src, "layers_services.yaml")); err != nil {
		return "", fmt.Errorf("%s has no scenario/ folder with the files it ran: %w", runDir, err)
	}
	parent := filepath.Dir(filepath.Clean(runDir))
	var dst string
	for n := 1; ; n++ {
		dst = filepath.Join(parent, fmt.Sprintf("%s%s-%d", results.ReproducePrefix, filepath.Base(runDir), n))
		if err := os.Mkdir(dst, 0o755); err == nil {
			break
		} else if !os.IsExist(err) || n > 999 {
			return "", err
		}
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return results.WriteFile(dst, rel, func(w io.Writer) error { _, err := w.Write(data); return err })
	})
	return dst, err
}

// sayManualChanges warns of the changes made to a run by hand (e2c apply,
// e2c scale): a reproduction replays the run's timeline.yaml, which is one
// of its files, but not those.
func sayManualChanges(runDir string, out io.Writer) {
	tl, err := results.ReadTimeline(runDir)
	if err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
		return
	}
	for _, c := range tl.Changes {
		if c.Planned == nil {
			fmt.Fprintf(out, "warning: the run was changed by hand (%s: %s, at %s); a reproduction replays its timeline.yaml alone\n",
				c.Source, c.Asked, c.Start.Format(time.RFC3339))
		}
	}
}
