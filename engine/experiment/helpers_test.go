package experiment

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/results"
)

// The lifecycle as the commands drive it: a session opened, one method,
// the session closed.

func deploy(ctx context.Context, o Options, after Hosts) ([]string, error) {
	x, err := Open(o)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	return x.Deploy(ctx, after)
}

func layersServices(ctx context.Context, o Options) (string, error) {
	x, err := Open(o)
	if err != nil {
		return "", err
	}
	defer x.Close()
	return x.LayersServices(ctx)
}

// stepCommand opens the scenario for a step command after layers-services.
func stepCommand(ctx context.Context, scenario string, out io.Writer, network string, f func(*Session) error) error {
	x, err := Open(Options{ScenarioDir: scenario, Out: out, Network: network})
	if err != nil {
		return err
	}
	defer x.Close()
	return f(x)
}

func network(ctx context.Context, scenario string, out io.Writer, mode string) error {
	return stepCommand(ctx, scenario, out, mode, func(x *Session) error { return x.Network(ctx) })
}

func workflow(ctx context.Context, scenario, phase, conf string, out io.Writer) error {
	return stepCommand(ctx, scenario, out, "", func(x *Session) error { return x.Phase(ctx, phase, conf) })
}

func finalize(ctx context.Context, scenario, conf string, destroy bool, out io.Writer) error {
	return stepCommand(ctx, scenario, out, "", func(x *Session) error {
		err := x.Finalize(ctx, conf)
		if destroy {
			if derr := x.Destroy(ctx); err == nil {
				err = derr
			}
		}
		return err
	})
}

func destroy(ctx context.Context, scenario string, out io.Writer) error {
	return destroyWith(ctx, scenario, out, nil)
}

func destroyWith(ctx context.Context, scenario string, out io.Writer, set providers.Set) error {
	x, err := Open(Options{ScenarioDir: scenario, Out: out, Providers: set})
	if err != nil {
		return err
	}
	defer x.Close()
	return x.Destroy(ctx)
}

func destroyNetwork(ctx context.Context, scenario string, out io.Writer) error {
	return stepCommand(ctx, scenario, out, "", func(x *Session) error { return x.DestroyNetwork(ctx) })
}

// readRecord reads run.json as written (results.ReadRecord shows a run
// whose e2c is gone crashed).
func readRecord(dir string) (*results.Record, error) {
	data, err := os.ReadFile(filepath.Join(dir, results.RecordFile))
	if err != nil {
		return nil, err
	}
	rec := &results.Record{}
	return rec, json.Unmarshal(data, rec)
}
