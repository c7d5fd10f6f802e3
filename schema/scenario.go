// Package schema reads the files of an e2c scenario — layers_services.yaml,
// network.yaml, workflow.yaml, workflow_env.yaml, metrics.yaml and
// timeline.yaml — into typed models.
//
// Decoding is strict and positional: every problem names file:line:column,
// what was found and what was expected, with the closest valid key for a
// misspelt one, and all problems of a scenario are reported together.
// Checks that need more than one file (patterns, groupings, templates) are
// the engine's, but for the services a timeline scales, which Load checks.
package schema

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The files of a scenario folder.
const (
	LayersServicesFile = "layers_services.yaml"
	NetworkFile        = "network.yaml"
	WorkflowFile       = "workflow.yaml"
	WorkflowEnvFile    = "workflow_env.yaml"
	ServicesDir        = "services"
)

// Scenario is a scenario folder, decoded.
type Scenario struct {
	Dir            string
	LayersServices *LayersServices
	Network        *Network // no links when network.yaml is absent
	Workflow       *Workflow
	WorkflowEnv    WorkflowEnv // empty when workflow_env.yaml is absent
	Metrics        []Metric    // metrics.yaml; none when absent
	Timeline       *Timeline   // timeline.yaml; nil when absent
	// ServiceDefs are the definitions in the scenario's services/ folder;
	// they take precedence over the ones shipped with e2c.
	ServiceDefs []*ServiceDef
	// Files holds each file's bytes as read, so that a run can record
	// exactly what it used.
	Files map[string][]byte
}

// Load reads the scenario in dir. The error, if any, is an *Errors
// listing every problem found in every file; the returned scenario holds what
// could be decoded, so further checks can still run.
func Load(dir string) (*Scenario, error) {
	sc := &Scenario{Dir: dir, Files: map[string][]byte{}, Network: &Network{}, Workflow: &Workflow{},
		LayersServices: &LayersServices{}, WorkflowEnv: WorkflowEnv{}}
	var errs Errors
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		errs.At(Pos{File: dir}, "not a scenario folder (expected a folder holding %s and %s)", LayersServicesFile, WorkflowFile)
		return sc, errs.Err()
	}
	read := func(name string, optional bool) ([]byte, string) {
		path := filepath.Join(dir, name)
		data, err := readFile(path)
		var big *Error
		switch {
		case errors.As(err, &big):
			errs.Add(big)
		case err == nil:
			sc.Files[name] = data
			return data, path
		case optional && errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, fs.ErrNotExist):
			errs.At(Pos{File: path}, "missing: every scenario needs %s", name)
		default:
			errs.At(Pos{File: path}, "%v", err)
		}
		return nil, path
	}
	lsDecoded := false // without a problem: the timeline's services can be checked
	if data, path := read(LayersServicesFile, false); data != nil {
		ls, err := DecodeLayersServices(path, data)
		sc.LayersServices = ls
		errs.Add(err)
		lsDecoded = err == nil
	}
	if data, path := read(NetworkFile, true); data != nil {
		n, err := DecodeNetwork(path, data)
		sc.Network = n
		errs.Add(err)
	}
	if data, path := read(WorkflowFile, false); data != nil {
		w, err := DecodeWorkflow(path, data)
		sc.Workflow = w
		errs.Add(err)
	}
	if data, path := read(WorkflowEnvFile, true); data != nil {
		env, err := DecodeWorkflowEnv(path, data)
		sc.WorkflowEnv = env
		errs.Add(err)
	}
	if data, path := read(MetricsFile, true); data != nil {
		m, err := DecodeMetrics(path, data)
		sc.Metrics = m
		errs.Add(err)
	}
	if data, path := read(TimelineFile, true); data != nil {
		tl, err := DecodeTimeline(path, data)
		sc.Timeline = tl
		errs.Add(err)
		if lsDecoded {
			errs.Add(tl.checkServices(sc.LayersServices))
		}
	}
	defs, _ := filepath.Glob(filepath.Join(dir, ServicesDir, "*.yaml"))
	for _, path := range defs { // Glob sorts, so definitions load in a stable order
		name := filepath.Join(ServicesDir, filepath.Base(path))
		if data, _ := read(name, false); data != nil {
			def, err := DecodeServiceDef(path, data)
			sc.ServiceDefs = append(sc.ServiceDefs, def)
			errs.Add(err)
		}
	}
	return sc, errs.Err()
}

// readFile reads a scenario file, refusing one over maxFileSize before
// reading it (and reading at most one byte more, should it grow).
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxFileSize {
		return nil, tooBig(path, st.Size())
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}
