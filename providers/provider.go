// Package providers is the contract between e2c and the testbeds it runs
// on. A provider reserves machines for the planned service instances, says
// how to reach each, and releases them; it reads and checks its own block
// of layers_services.yaml. A new testbed is one package with a Provider,
// added to the Set that e2c is given (providers/builtin).
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
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
	// DockerSocket is where the host's Docker Engine listens, when not at
	// the default /var/run/docker.sock.
	DockerSocket string `json:"docker_socket,omitempty"`
}

// Request is what one testbed is asked for.
type Request struct {
	// Experiment names what the provider creates: the scenario's job_name,
	// or a name derived from the scenario that no other scenario shares.
	Experiment string
	StateDir   string          // a folder the provider may keep files in for the experiment's life
	Settings   *schema.Testbed // the testbed's block of layers_services.yaml (read it with Decode); nil when none was written
	Instances  []plan.Instance // each needs Service.Quantity machines
	// Walltime and Cluster are the environment's shared values; the
	// testbed's block may override them.
	Walltime time.Duration
	Cluster  string
	// Out receives progress lines (a reservation may wait for hours).
	Out io.Writer
	// Journal saves the provider's record of what it is about to create
	// into the scenario's state before creating it, so that after a crash
	// or a second Ctrl-C, Release finds it there. Reserve calls it again
	// as the record grows (a job id as soon as the testbed answers). Its
	// error stops the reservation: nothing may be created unrecorded.
	Journal func(state json.RawMessage) error
}

// Save calls Journal with v as JSON, when there is a journal.
func (r Request) Save(v any) error {
	if r.Journal == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.Journal(data)
}

// Reservation is what a provider reserved. It is saved as JSON in the
// scenario's state, so that a later e2c process can release it.
type Reservation struct {
	Provider string   `json:"provider"`
	Hosts    [][]Host `json:"hosts"` // Hosts[i] holds the machines of Request.Instances[i]
	// State is the provider's own record of what it created.
	State json.RawMessage `json:"state,omitempty"`
	// Incomplete marks a reservation whose Reserve did not return: State
	// is the last record it journaled and Hosts may be missing. It is only
	// ever released.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Provider reserves and releases machines on one kind of testbed.
type Provider interface {
	// Reserve returns hosts for every instance of req, in order. On error,
	// whatever it created is already released.
	Reserve(ctx context.Context, req Request) (*Reservation, error)
	// Release frees what Reserve created. It must work on a Reservation
	// decoded from saved state by another process, on an Incomplete one
	// (whatever Reserve journaled before it died), and succeed when there
	// is nothing left to free. out receives what the user should know,
	// such as what is left running on purpose.
	Release(ctx context.Context, r *Reservation, out io.Writer) error
}

// A SettingsChecker checks its testbed block before anything is reserved,
// so that e2c validate reports every mistake with its position.
type SettingsChecker interface {
	// CheckSettings returns nil or positioned errors (schema.Error) about
	// tb (nil when no block was written) and whether it can serve the
	// instances the scenario places on the testbed. It touches nothing
	// outside this process.
	CheckSettings(tb *schema.Testbed, instances []plan.Instance) error
}

// A DockerProvider gives hosts of its reservations a Docker Engine, before
// the services step starts containers on them.
type DockerProvider interface {
	// ProvideDocker makes a Docker Engine answer on each of the named hosts
	// of r that has none, as tb (the testbed's block, nil when none was
	// written) allows, and sets those hosts' DockerSocket in r where it is
	// not the default. It is called before every services step: a host
	// whose engine already answers is left as it is. It says on out what it
	// starts or installs, and nothing when it does nothing; its error names
	// every host it could not serve, and why. What it starts, Release
	// stops.
	ProvideDocker(ctx context.Context, r *Reservation, hosts []string, tb *schema.Testbed, out io.Writer) error
}

// A Resizer changes the hosts of a reservation in place, so that e2c apply
// and e2c scale add and remove machines of a running experiment without
// touching the others. A provider that is not one cannot, and e2c says so.
type Resizer interface {
	// Resize makes r hold req.Instances, in their order: r.Hosts[i] becomes
	// keep[i] (hosts r holds now, each kept as it is: name, address and
	// whatever runs on it) followed by new hosts, up to
	// req.Instances[i].Service.Quantity. The hosts of r that no keep[i]
	// lists are released first. New hosts get names no host of r had.
	// req.Journal is called before anything is created, as in Reserve.
	// On error, r holds what exists: the kept hosts, and neither the
	// released ones nor any half-created one (freed before returning).
	// Its error says what could not be given, such as more hosts than the
	// testbed has.
	Resize(ctx context.Context, r *Reservation, req Request, keep [][]Host) error
}

// A Verifier tells whether a reservation kept by an earlier deploy can
// still serve, before it is reused.
type Verifier interface {
	// Verify returns nil when r can serve for at least need; an error
	// wrapping ErrCannotServe when it cannot (the job was deleted or ends
	// too soon, the lab is gone), which releases it; any other error when
	// the testbed could not be asked, which stops the deploy and keeps r.
	Verify(ctx context.Context, r *Reservation, need time.Duration) error
}

// ErrCannotServe is what a Verifier wraps to say that a kept reservation
// can no longer serve (rather than that it could not tell).
var ErrCannotServe = errors.New("cannot serve")

// CannotServe wraps the reasons a kept reservation cannot serve, or is
// nil without any. It reads as the reasons alone: the caller says what
// they are the reasons of.
func CannotServe(reasons ...error) error {
	if err := errors.Join(reasons...); err != nil {
		return cannotServe{err}
	}
	return nil
}

// cannotServe is reasons that are ErrCannotServe.
type cannotServe struct{ error }

func (e cannotServe) Is(target error) bool { return target == ErrCannotServe }
func (e cannotServe) Unwrap() error        { return e.error }

// unsupported are E2Clab's testbeds that e2c refuses by name.
var unsupported = []string{"iotlab", "chameleoncloud", "chameleonedge"}

// Set is the providers a scenario may use, by testbed name. It is a value
// handed to whoever reserves (builtin.Set() is e2c's own), not a registry:
// tests give a set of their own, and run in parallel.
type Set map[string]Provider

// Get returns the provider of testbed name.
func (s Set) Get(name string) (Provider, error) {
	p, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("no provider for testbed %q (available: %s)", name, strings.Join(s.Names(), ", "))
	}
	return p, nil
}

// Names lists the set's testbeds, sorted.
func (s Set) Names() []string { return slices.Sorted(maps.Keys(s)) }

// Check checks the testbed blocks of a scenario: each names a provider of
// the set (with the closest name as a hint), and each provider that can
// checks its settings against the instances placed on it. Problems are
// *schema.Error.
func (s Set) Check(env schema.Environment, instances []plan.Instance) error {
	var errs schema.Errors
	names := s.Names()
	for i := range env.Testbeds {
		tb := &env.Testbeds[i]
		p, err := s.Get(tb.Name)
		switch {
		case slices.Contains(unsupported, tb.Name):
			errs.At(tb.NamePos, "environment: testbed %q is not supported by e2c; supported testbeds: %s", tb.Name, strings.Join(names, ", "))
		case err != nil:
			errs.At(tb.NamePos, "environment: unknown testbed %q%s; expected a testbed (%s) or one of: %s", tb.Name,
				suggest.Hint(tb.Name, append(slices.Clone(names), schema.EnvironmentKeys...)), strings.Join(names, ", "), strings.Join(schema.EnvironmentKeys, ", "))
		default:
			if c, ok := p.(SettingsChecker); ok {
				var mine []plan.Instance
				for _, in := range instances {
					if in.Testbed == tb.Name {
						mine = append(mine, in)
					}
				}
				errs.Add(c.CheckSettings(tb, mine))
			}
		}
	}
	return errs.Err()
}
