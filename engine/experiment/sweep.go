package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/e2c-dev/e2c/engine/sweep"
	"github.com/e2c-dev/e2c/results"
	"github.com/e2c-dev/e2c/schema"
)

// pointState is point.json: a sweep point's parameters and whether its
// runs all succeeded, so that a sweep run again skips it.
type pointState struct {
	sweep.Point
	Status results.Status `json:"status"`
	Runs   []string       `json:"runs,omitempty"`
}

// Sweep runs the full lifecycle with its repeats for every point of spec,
// each in its own scenario folder SCENARIO_DIR/sweep/<point>/ (the
// scenario's files with the point's values, and its run folders). Points
// whose runs all succeeded in an earlier sweep are skipped; failed and
// interrupted ones run again. Every point is checked before any runs.
func Sweep(ctx context.Context, spec sweep.Spec, o Options) ([]sweep.Point, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	points, err := spec.Points()
	if err != nil {
		return nil, err
	}
	if len(points) == 0 {
		return nil, errors.New("the sweep has no points: give parameters in sweep.yaml or with --param")
	}
	sc, err := schema.Load(o.ScenarioDir)
	if err != nil {
		return nil, err
	}
	// Write and check every point before running any.
	var todo []sweep.Point
	for _, p := range points {
		dir := filepath.Join(o.ScenarioDir, results.SweepDir, p.Name)
		if st, err := readPoint(dir); err == nil && st.Status == results.Succeeded {
			fmt.Fprintf(o.Out, "sweep: %s succeeded in an earlier sweep: skipped\n", p.Name)
			continue
		}
		files, err := sweep.Apply(sc.Files, p)
		if err != nil {
			return nil, fmt.Errorf("point %s: %w", p.Name, err)
		}
		for name, data := range files {
			if err := results.WriteFile(dir, name, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return nil, err
			}
		}
		po := o
		po.ScenarioDir = dir
		if err := checkPoint(po); err != nil {
			return nil, fmt.Errorf("point %s (%v): %w", p.Name, p.Params, err)
		}
		todo = append(todo, p)
	}
	var errs []error
	for i, p := range todo {
		if ctx.Err() != nil {
			break
		}
		dir := filepath.Join(o.ScenarioDir, results.SweepDir, p.Name)
		fmt.Fprintf(o.Out, "sweep: point %d of %d: %s\n", i+1, len(todo), p.Name)
		st := pointState{Point: p, Status: results.Running}
		if err := writePoint(dir, st); err != nil {
			errs = append(errs, err)
			continue
		}
		po := o
		po.ScenarioDir = dir
		// Points may differ in their hosts: each releases its own.
		runs, err := deployPoint(ctx, po)
		st.Runs, st.Status = runs, results.Succeeded
		switch {
		case ctx.Err() != nil:
			st.Status = results.Interrupted
		case err != nil:
			st.Status = results.Failed
			errs = append(errs, fmt.Errorf("point %s: %w", p.Name, err))
		}
		if werr := writePoint(dir, st); werr != nil {
			errs = append(errs, werr)
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("sweep interrupted: %w (run it again to go on)", context.Cause(ctx)))
	}
	return points, errors.Join(errs...)
}

func readPoint(dir string) (pointState, error) {
	var st pointState
	data, err := os.ReadFile(filepath.Join(dir, results.PointFile))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	return st, err
}

func writePoint(dir string, st pointState) error {
	return results.WriteJSON(dir, results.PointFile, st)
}

// checkPoint checks a point's scenario as its deploy will.
func checkPoint(o Options) error {
	x, err := Open(o)
	if err != nil {
		return err
	}
	defer x.Close()
	return x.load()
}

// deployPoint runs a point's whole deploy, releasing its hosts.
func deployPoint(ctx context.Context, o Options) ([]string, error) {
	x, err := Open(o)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	return x.Deploy(ctx, Release)
}
