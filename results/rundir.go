// Package results owns the run folders an experiment writes: their names,
// their creation (never reusing or overwriting one) and the files in them.
package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TimeLayout names run folders, in local time as E2Clab does.
const TimeLayout = "20060102-150405"

// The files and folders of a run folder that e2c writes (the artifacts
// manifest is ManifestFile).
const (
	RecordFile         = "run.json"                      // the run's record: steps, hosts, containers, status
	PlanFile           = "plan.json"                     // the plan it ran
	LayersServicesFile = "layers_services-validate.yaml" // the hosts as E2Clab's layers_services-validate.yaml
	WorkflowFile       = "workflow-validate.out"         // each task as it was rendered and what it did
	ServicesDir        = "services"                      // services/<host>/<container>.log
	ScenarioDir        = "scenario"                      // the scenario files as the run read them
)

// ReproducePrefix begins the name of the scenario folders e2c reproduce
// makes beside a run's scenario: reproduce-<run>-N.
const ReproducePrefix = "reproduce-"

// NewRunDir creates a new run folder in scenarioDir named after now. If a
// run already took that second, -2, -3, ... are appended: creation is an
// atomic mkdir, so two e2c processes can never share a folder and an
// existing folder is never reused.
func NewRunDir(scenarioDir string, now time.Time) (string, error) {
	base := filepath.Join(scenarioDir, now.Format(TimeLayout))
	for n := 1; n < 1000; n++ {
		dir := base
		if n > 1 {
			dir = fmt.Sprintf("%s-%d", base, n)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create run folder: %w", err)
		}
	}
	return "", fmt.Errorf("create run folder: %s-* are all taken", base)
}

// Path returns the path of rel inside dir, refusing any path that would
// leave it (absolute paths, "..", or a symbolic link inside dir that points
// out of it).
func Path(dir, rel string) (string, error) {
	c := filepath.Clean(rel)
	if rel == "" || filepath.IsAbs(c) || c == "." || c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%q is not a path inside the result folder", rel)
	}
	full := filepath.Join(dir, c)
	// Walk existing components: a link planted inside the folder must not
	// lead writes elsewhere.
	for p := filepath.Dir(full); len(p) > len(dir); p = filepath.Dir(p) {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%q goes through a symbolic link in the result folder", rel)
		}
	}
	return full, nil
}

// WriteFile writes the file rel inside dir through write, creating parent
// folders; the file appears complete or not at all, and is on disk when
// WriteFile returns.
func WriteFile(dir, rel string, write func(io.Writer) error) error {
	path, err := Path(dir, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", rel, err)
	}
	// On disk before the rename publishes it: after a power cut the file
	// is the old one or the new one, never an empty one.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp makes it 0600
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteJSON writes v as indented JSON to the file rel inside dir, complete
// or not at all.
func WriteJSON(dir, rel string, v any) error {
	return WriteFile(dir, rel, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
