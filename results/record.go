package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Status is the state of a run or of one of its steps.
type Status string

// Run and step statuses.
const (
	Running     Status = "running"
	Succeeded   Status = "succeeded"
	Failed      Status = "failed"
	Interrupted Status = "interrupted"
	// Crashed is a run (or step) whose e2c process died while working on
	// it: a SIGKILL, a second Ctrl-C, a power cut.
	Crashed Status = "crashed"
	// Skipped is a timed change that could not start before the run's
	// wait ended.
	Skipped Status = "skipped"
)

// Record is run.json: what a run did, written again after every step so
// that a crash still leaves an accurate, marked record.
type Record struct {
	E2C       string `json:"e2c_version"`
	Status    Status `json:"status"`
	Scenario  string `json:"scenario"`
	Artifacts string `json:"artifacts"`
	// Reproduces is the run folder this run ran again (e2c reproduce).
	Reproduces string `json:"reproduces,omitempty"`
	// Testbeds are the testbed blocks of layers_services.yaml as used.
	Testbeds map[string]map[string]any `json:"testbeds,omitempty"`
	// TestbedOverride is the testbed every service ran on instead of the
	// scenario's (deploy --testbed), with its default settings.
	TestbedOverride string `json:"testbed_override,omitempty"`
	// Network says what of network.yaml was left out (deploy --network).
	Network     *NetworkLimit `json:"network,omitempty"`
	Repeat      int           `json:"current_repeat"`
	RepeatCount int           `json:"repeat_count"`
	AppConfs    []string      `json:"app_conf,omitempty"`
	Duration    float64       `json:"duration_seconds"`
	Start       time.Time     `json:"start"`
	End         *time.Time    `json:"end,omitempty"`
	Steps       []*Step       `json:"steps"`
	Hosts       []Host        `json:"hosts"`
	// Containers are what the services step started, or tried to.
	Containers []Container `json:"containers,omitempty"`
	Error      string      `json:"error,omitempty"`
	// Owner is the e2c process working on the run, while it does. A run
	// still running whose owner is gone crashed; between two step
	// commands a run has no owner, and is not crashed.
	Owner *Owner `json:"owner,omitempty"`

	dir string
}

// Step is one step of a run: reserve, services, network, monitoring,
// prepare, launch, wait, finalize.
type Step struct {
	Name    string     `json:"name"`
	AppConf string     `json:"app_conf,omitempty"`
	Start   time.Time  `json:"start"`
	End     *time.Time `json:"end,omitempty"`
	Status  Status     `json:"status"`
	Note    string     `json:"note,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// Host is a host of the run.
type Host struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Testbed  string   `json:"testbed"`
	Instance string   `json:"instance"`
	Keys     []string `json:"keys"`
	Facts    Facts    `json:"facts"`
	// Commands is how e2c ran commands on the host: "agent" (through the
	// e2c agent, on one SSH session), "ssh" (an SSH session each) or
	// "local" (this machine).
	Commands string `json:"commands,omitempty"`
	// NoAgent says why a host reached over SSH did not use the agent.
	NoAgent string `json:"no_agent,omitempty"`
}

// Facts is what a host is, for whoever compares numbers across runs.
type Facts struct {
	Arch   string `json:"arch,omitempty"`   // uname -m
	Kernel string `json:"kernel,omitempty"` // uname -r
	CPU    string `json:"cpu,omitempty"`    // model
	CPUs   int    `json:"cpus,omitempty"`
	MemKB  int64  `json:"mem_kb,omitempty"`
}

// NetworkLimit is what a run left out of network.yaml on purpose.
type NetworkLimit struct {
	Mode    string   `json:"mode"`
	LeftOut []string `json:"left_out,omitempty"` // per entry: where it is written, and what was not applied
}

// Container is a container the services step started, or tried to.
type Container struct {
	Host    string     `json:"host"`
	Name    string     `json:"name"`
	Key     string     `json:"key"`
	ID      string     `json:"id,omitempty"`
	Image   string     `json:"image"`
	ImageID string     `json:"image_id,omitempty"`
	Kept    bool       `json:"kept,omitempty"` // running from an earlier run, with the same definition
	Start   time.Time  `json:"start"`
	Ready   *time.Time `json:"ready,omitempty"`
	State   string     `json:"state"` // the daemon's: running, exited, ...; "" when never created
	Error   string     `json:"error,omitempty"`
}

// Owner is an e2c process.
type Owner struct {
	PID  int    `json:"pid"`
	Host string `json:"host"`
}

// Self is this process as an owner.
func Self() *Owner {
	host, _ := os.Hostname()
	return &Owner{PID: os.Getpid(), Host: host}
}

// Gone tells whether the owner process certainly no longer exists: it ran
// on this machine and no process has its pid.
func (o *Owner) Gone() bool {
	host, _ := os.Hostname()
	return o.Host == host && errors.Is(syscall.Kill(o.PID, 0), syscall.ESRCH)
}

// NewRecord is the record of a new run in folder dir; Save writes it there.
func NewRecord(dir string) *Record { return &Record{dir: dir} }

// Dir is the run folder of the record.
func (r *Record) Dir() string { return r.dir }

// Save writes run.json, complete or not at all.
func (r *Record) Save() error { return WriteJSON(r.dir, RecordFile, r) }

// Took is how long the run took, up to now while it runs.
func (r *Record) Took() time.Duration {
	if r.End != nil {
		return r.End.Sub(r.Start)
	}
	return 0
}

// Crash marks a run whose owner died while working on it, and the step it
// died in. Its end is the last time the record was written.
func (r *Record) Crash(lastWrite time.Time) {
	died := "between two steps"
	for _, s := range r.Steps {
		if s.Status == Running {
			s.Status, s.End = Crashed, &lastWrite
			s.Error = "e2c died during this step"
			died = "during step " + s.Name
		}
	}
	who := "e2c"
	if r.Owner != nil {
		who = fmt.Sprintf("e2c (pid %d on %s)", r.Owner.PID, r.Owner.Host)
	}
	r.Status, r.End, r.Owner = Crashed, &lastWrite, nil
	r.Error = fmt.Sprintf("%s died %s, last heard of at %s", who, died, lastWrite.Format(time.RFC3339))
}

// orphaned tells whether the run is still running with an owner that is
// gone, and when its record was last written.
func (r *Record) orphaned() (lastWrite time.Time, ok bool) {
	if r.Status != Running || r.Owner == nil || !r.Owner.Gone() {
		return time.Time{}, false
	}
	fi, err := os.Stat(filepath.Join(r.dir, RecordFile))
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

// ReadRecord reads the run.json of a run folder. A run still running whose
// e2c process is gone is shown crashed (MarkCrashed records it so).
func ReadRecord(dir string) (*Record, error) {
	rec, err := readRecord(dir)
	if err != nil {
		return nil, err
	}
	if last, ok := rec.orphaned(); ok {
		rec.Crash(last)
	}
	return rec, nil
}

func readRecord(dir string) (*Record, error) {
	data, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, err
	}
	rec := &Record{dir: dir}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), err)
	}
	return rec, nil
}

// runName is the name of a run folder: TimeLayout, maybe -N.
var runName = regexp.MustCompile(`^\d{8}-\d{6}(-\d+)?$`)

// IsRunName tells whether name is that of a run folder.
func IsRunName(name string) bool { return runName.MatchString(name) }

// Runs reads the record of every run folder of a scenario, in the order
// they ran, as ReadRecord does. Folders without a record (a dry run, a
// folder being created) are left out.
func Runs(scenario string) ([]*Record, error) {
	return runs(scenario, ReadRecord)
}

func runs(scenario string, read func(string) (*Record, error)) ([]*Record, error) {
	entries, err := os.ReadDir(scenario)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range entries {
		if !e.IsDir() || !IsRunName(e.Name()) {
			continue
		}
		if rec, err := read(filepath.Join(scenario, e.Name())); err == nil {
			out = append(out, rec)
		}
	}
	// By start, not by name: 20261202-150405-10 would come before
	// 20261202-150405-2.
	slices.SortStableFunc(out, func(a, b *Record) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// MarkCrashed records as crashed the runs of scenario still running with
// an owner that is gone, and returns them. The caller holds the scenario's
// lock, which every e2c process working on a run holds.
func MarkCrashed(scenario string) ([]*Record, error) {
	recs, err := runs(scenario, readRecord)
	if err != nil {
		return nil, err
	}
	var marked []*Record
	var errs []error
	for _, rec := range recs {
		last, ok := rec.orphaned()
		if !ok {
			continue
		}
		rec.Crash(last)
		marked = append(marked, rec)
		errs = append(errs, rec.Save())
	}
	return marked, errors.Join(errs...)
}

// SweepDir is the folder of a scenario's sweep points, each a scenario
// folder of its own with a PointFile.
const SweepDir = "sweep"

// PointFile is a sweep point's record: its parameters and status.
const PointFile = "point.json"

// AllRuns are the runs of a scenario and of its sweep's points, each with
// its point ("" for the scenario's own runs).
func AllRuns(scenario string) (runs []*Record, points []string, err error) {
	runs, err = Runs(scenario)
	if err != nil {
		return nil, nil, err
	}
	points = make([]string, len(runs))
	entries, _ := os.ReadDir(filepath.Join(scenario, SweepDir))
	for _, e := range entries {
		dir := filepath.Join(scenario, SweepDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, PointFile)); !e.IsDir() || err != nil {
			continue
		}
		prs, _ := Runs(dir)
		for _, r := range prs {
			runs, points = append(runs, r), append(points, e.Name())
		}
	}
	return runs, points, nil
}

// Reproductions are the runs e2c reproduce wrote into the
// reproduce-<run>-N folders of dir (beside its runs), and into theirs.
func Reproductions(dir string) ([]*Record, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ReproducePrefix) {
			continue
		}
		recs, err := Runs(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		more, err := Reproductions(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(append(out, recs...), more...)
	}
	return out, nil
}
