package summary

import (
	"errors"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/e2c-dev/e2c/results"
)

// results.ScenarioDir is where a run folder keeps the scenario files it ran.

// Side is one of two runs compared: its run folder and the configurations
// (app_conf) it ran, each with its results in <run>/<app_conf>.
type Side struct {
	Dir     string
	Configs []string
}

// Comparison sets two runs side by side.
type Comparison struct {
	Files []FileDiff `json:"scenario_files"` // the scenario files either run recorded
	// Artifacts says how the artifacts the runs' manifests list differ;
	// empty: the same files.
	Artifacts []string `json:"artifacts"`
	// Metrics are the means of each metric of the first run's
	// metrics.yaml; NoMetrics when it has none.
	Metrics   []Change `json:"metrics"`
	NoMetrics bool     `json:"no_metrics,omitempty"`
}

// FileDiff is one scenario file of two runs.
type FileDiff struct {
	Path string   `json:"path"`
	Size [2]int64 `json:"size"` // -1: absent from that run
	Same bool     `json:"same"`
}

// Change is one metric's mean, for one configuration, in both runs.
type Change struct {
	Metric string      `json:"metric"`
	Unit   string      `json:"unit,omitempty"`
	Config string      `json:"config"`
	Means  [2]*float64 `json:"means"` // nil: no value in that run
	// Percent is the change from the first run's mean to the second's;
	// nil when either is missing or the first is 0.
	Percent *float64 `json:"change_percent"`
}

// Compare compares two runs: the scenario files they ran, their artifacts
// and their metrics, read as the first run's scenario declares them.
func Compare(a, b Side) (*Comparison, error) {
	c := &Comparison{Artifacts: results.Diff(manifest(a.Dir), manifest(b.Dir))}
	for _, f := range scenarioFiles(a.Dir, b.Dir) {
		x, errX := os.ReadFile(filepath.Join(a.Dir, results.ScenarioDir, f))
		y, errY := os.ReadFile(filepath.Join(b.Dir, results.ScenarioDir, f))
		c.Files = append(c.Files, FileDiff{Path: f, Size: [2]int64{size(x, errX), size(y, errY)}, Same: errX == nil && errY == nil && string(x) == string(y)})
	}
	metrics, err := LoadMetrics(filepath.Join(a.Dir, results.ScenarioDir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.NoMetrics = true
		return c, nil
	case err != nil:
		return c, err
	}
	var runs []Run
	for i, s := range []Side{a, b} {
		id := strconv.Itoa(i)
		if len(s.Configs) == 0 {
			runs = append(runs, Run{ID: id, Dir: s.Dir})
		}
		for _, conf := range s.Configs {
			runs = append(runs, Run{ID: id, Config: conf, Dir: filepath.Join(s.Dir, conf)})
		}
	}
	values, err := Read(runs, metrics)
	if err != nil {
		return c, err
	}
	for _, m := range metrics {
		byConf := map[string]*Change{}
		for _, v := range values {
			if v.Metric != m.Name {
				continue
			}
			ch := byConf[v.Config]
			if ch == nil {
				ch = &Change{Metric: m.Name, Unit: m.Unit, Config: v.Config}
				byConf[v.Config] = ch
			}
			i, _ := strconv.Atoi(v.Run)
			ch.Means[i] = &v.Mean
		}
		for _, conf := range slices.Sorted(maps.Keys(byConf)) {
			ch := byConf[conf]
			if x, y := ch.Means[0], ch.Means[1]; x != nil && y != nil && *x != 0 {
				p := 100 * (*y - *x) / math.Abs(*x)
				ch.Percent = &p
			}
			c.Metrics = append(c.Metrics, *ch)
		}
	}
	return c, nil
}

// scenarioFiles lists the scenario files either run recorded.
func scenarioFiles(a, b string) []string {
	seen := map[string]bool{}
	for _, dir := range []string{a, b} {
		root := filepath.Join(dir, results.ScenarioDir)
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				seen[filepath.ToSlash(rel)] = true
			}
			return nil
		})
	}
	return slices.Sorted(maps.Keys(seen))
}

func size(data []byte, err error) int64 {
	if err != nil {
		return -1
	}
	return int64(len(data))
}

// manifest reads the artifacts manifest of a run folder; none when it has
// none.
func manifest(dir string) []results.Sum {
	f, err := os.Open(filepath.Join(dir, results.ManifestFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	sums, _ := results.ReadManifest(f)
	return sums
}
