// Package providers is the registry of testbeds e2c can run on. A provider
// reserves machines for the planned service instances, says how to reach
// each, and releases them; a new testbed is one package that registers
// itself here.
package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// Host is a reserved machine: what the plan needs to know of it and how to
// reach it.
type Host struct {
	plan.Machine
	// SSH reaches the host; nil means this machine, without SSH.
	SSH *transport.Endpoint `json:"ssh,omitempty"`
	// WorkDir is the host's own working area on this machine when SSH is
	// nil, so that hosts sharing a machine never clobber each other's files.
	WorkDir string `json:"work_dir,omitempty"`
}

// Request is what one testbed is asked for.
type Request struct {
	Experiment string          // names what the provider creates (the scenario's job_name)
	StateDir   string          // a folder the provider may keep files in for the experiment's life
	Settings   map[string]any  // the testbed's block of layers_services.yaml
	Instances  []plan.Instance // each needs Service.Quantity machines
	// Walltime and Cluster are the environment's shared values; the
	// testbed's block may override them.
	Walltime time.Duration
	Cluster  string
	// Out receives progress lines (a reservation may wait for hours).
	Out io.Writer
}

// Reservation is what a provider reserved. It is saved as JSON in the
// scenario's state, so that a later e2c process can release it.
type Reservation struct {
	Provider string   `json:"provider"`
	Hosts    [][]Host `json:"hosts"` // Hosts[i] holds the machines of Request.Instances[i]
	// State is the provider's own record of what it created.
	State json.RawMessage `json:"state,omitempty"`
}

// Provider reserves and releases machines on one kind of testbed.
type Provider interface {
	// Reserve returns hosts for every instance of req, in order. On error,
	// whatever it created is already released.
	Reserve(ctx context.Context, req Request) (*Reservation, error)
	// Release frees what Reserve created. It must work on a Reservation
	// decoded from saved state by another process, and succeed when there
	// is nothing left to free.
	Release(ctx context.Context, r *Reservation) error
}

var (
	mu       sync.RWMutex
	registry = map[string]Provider{}
)

// Register makes a provider available under name; it panics on a
// duplicate, which is a programming error.
func Register(name string, p Provider) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("providers: " + name + " registered twice")
	}
	registry[name] = p
}

// Get returns the provider registered under name.
func Get(name string) (Provider, error) {
	mu.RLock()
	p, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("no provider for testbed %q (available: %s)", name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// Names lists the registered providers, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Sorted(maps.Keys(registry))
}
