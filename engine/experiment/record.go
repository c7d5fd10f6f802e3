package experiment

import (
	"sync"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// Run statuses.
const (
	Running     = "running"
	Succeeded   = "succeeded"
	Failed      = "failed"
	Interrupted = "interrupted"
)

// Record is run.json: what a run did, written again after every step so
// that a crash still leaves an accurate, marked record.
type Record struct {
	E2C       string `json:"e2c_version"`
	Status    string `json:"status"`
	Scenario  string `json:"scenario"`
	Artifacts string `json:"artifacts"`
	// Reproduces is the run folder this run ran again (e2c reproduce).
	Reproduces string `json:"reproduces,omitempty"`
	// Testbeds are the testbed blocks of layers_services.yaml as used.
	Testbeds    map[string]map[string]any `json:"testbeds,omitempty"`
	Repeat      int                       `json:"current_repeat"`
	RepeatCount int                       `json:"repeat_count"`
	AppConfs    []string                  `json:"app_conf,omitempty"`
	Duration    float64                   `json:"duration_seconds"`
	Start       time.Time                 `json:"start"`
	End         *time.Time                `json:"end,omitempty"`
	Steps       []*Step                   `json:"steps"`
	Hosts       []HostRecord              `json:"hosts"`
	Error       string                    `json:"error,omitempty"`

	mu  sync.Mutex
	dir string
}

// Step is one step of a run: reserve, services, network, prepare, launch,
// wait, finalize.
type Step struct {
	Name    string     `json:"name"`
	AppConf string     `json:"app_conf,omitempty"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	Status  string     `json:"status"`
	Note    string     `json:"note,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// HostRecord is a host of the run.
type HostRecord struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Testbed  string   `json:"testbed"`
	Instance string   `json:"instance"`
	Keys     []string `json:"keys"`
	Facts    Facts    `json:"facts"`
}

func (r *Record) save() error {
	return results.WriteJSON(r.dir, "run.json", r)
}

// begin starts a step and saves the record.
func (r *Record) begin(name, appConf string) *Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Step{Name: name, AppConf: appConf, Start: time.Now(), Status: Running}
	r.Steps = append(r.Steps, s)
	r.save()
	return s
}

// end closes a step with its outcome and saves the record.
func (r *Record) end(s *Step, status string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	s.End, s.Status = &now, status
	if err != nil {
		s.Error = err.Error()
	}
	r.save()
}

// finish closes the run.
func (r *Record) finish(status string, err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.End, r.Status = &now, status
	if err != nil {
		r.Error = err.Error()
	}
	return r.save()
}
