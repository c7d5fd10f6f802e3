package ansiblediff

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/ansiblediff/ansible"
	"github.com/e2c-dev/e2c/engine/experiment"
	"github.com/e2c-dev/e2c/providers/netns"
)

// Hosts are the two hosts every case runs on, named as e2c names the
// machines of its scenario (layer case, service host, quantity 2).
var Hosts = []string{"case-host-1-1", "case-host-1-2"}

const layersServices = `environment:
  job_name: diff-%s
  netns: {subnet: %s}
layers:
- name: case
  services: [{name: host, quantity: 2}]
`

// result is what one tool did with a case.
type result struct {
	// refused is why the tool ran nothing of the case (e2c's validate).
	refused string
	hosts   map[string]*hostResult
	work    tree   // the working folder afterwards: fetched files, local tasks' files
	output  string // what the tool printed
}

// hostResult is what a case did on one host.
type hostResult struct {
	failed bool
	line   int    // the case file's line of the task that failed the host
	msg    string // why, in the tool's words (shown, not compared)
	files  tree   // the host's /opt
	vars   map[string]any
}

func (h *hostResult) outcome() string {
	if !h.failed {
		return "ok"
	}
	if h.line == 0 {
		return "failed (" + firstLine(h.msg) + ")"
	}
	return fmt.Sprintf("failed at line %d (%s)", h.line, firstLine(h.msg))
}

// writeFiles writes the case's files into a fresh working folder.
func (c *Case) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, f := range c.Files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(f.Content), f.Mode); err != nil {
			return err
		}
		if err := os.Chmod(path, f.Mode); err != nil { // whatever the umask
			return err
		}
	}
	return nil
}

// runE2C deploys the case with e2c on the netns provider, keeps the hosts
// to read what the tasks left there, then destroys them.
func (c *Case) runE2C(ctx context.Context, dir string, subnet netip.Prefix) (*result, error) {
	scenario, work := filepath.Join(dir, "scenario"), filepath.Join(dir, "work")
	if err := c.writeFiles(work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scenario, 0o755); err != nil {
		return nil, err
	}
	for name, text := range map[string]string{
		"layers_services.yaml": fmt.Sprintf(layersServices, c.Name, subnet),
		"workflow.yaml":        c.workflow(),
	} {
		if err := os.WriteFile(filepath.Join(scenario, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	var out strings.Builder
	defer func() { os.WriteFile(filepath.Join(dir, "output.txt"), []byte(out.String()), 0o644) }()
	x, err := experiment.Open(experiment.Options{ScenarioDir: scenario, ArtifactsDir: work, Out: &out})
	if err != nil {
		return nil, err
	}
	defer x.Close()
	runs, deployErr := x.Deploy(ctx, experiment.ReleaseIfInterrupted)
	st, err := experiment.LoadState(scenario)
	if err != nil {
		return nil, err
	}
	r := st.Reservations["netns"]
	if r != nil {
		defer func() {
			if err := x.Destroy(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(&out, "destroy: %v\n", err)
			}
		}()
	}
	res := &result{hosts: map[string]*hostResult{}, output: out.String()}
	switch {
	case deployErr != nil && strings.HasPrefix(deployErr.Error(), "reserve:"):
		return nil, fmt.Errorf("e2c could not reserve its hosts: %v\n%s", deployErr, out.String())
	case deployErr != nil && len(runs) == 0:
		res.refused = c.positions(deployErr.Error(), "workflow.yaml")
		return res, c.cleanup(ctx)
	case r == nil:
		return nil, fmt.Errorf("e2c ran the case but kept no hosts: %v\n%s", deployErr, out.String())
	}
	var lab netns.Lab
	if err := json.Unmarshal(r.State, &lab); err != nil {
		return nil, err
	}
	registered := map[string]map[string]any{}
	if st.Memory != nil {
		registered = st.Memory.Registered
	}
	for _, h := range Hosts {
		hr := &hostResult{vars: map[string]any{}}
		if hr.files, err = snapshot(hostOpt(lab.StateDir(), h)); err != nil {
			return nil, err
		}
		for _, name := range c.vars() {
			if v, ok := registered[h][name]; ok {
				if hr.vars[name], err = toJSONValue(v); err != nil {
					return nil, err
				}
			}
		}
		res.hosts[h] = hr
	}
	if res.work, err = snapshot(work); err != nil {
		return nil, err
	}
	if deployErr != nil {
		c.e2cFailures(deployErr.Error(), res)
	}
	return res, c.cleanup(ctx)
}

// e2cTaskError is a host's failure in e2c's error (execute.TaskError):
// "host: launch task N (what, workflow.yaml:L:C): why".
var e2cTaskError = regexp.MustCompile(`(?m)(` + strings.Join(Hosts, "|") + `): launch task \d+ \(.*?, \S*workflow\.yaml:(\d+):\d+\): (.*)$`)

// e2cFailures reads which task failed each host from e2c's error. An error
// that names no host's task fails every host with it.
func (c *Case) e2cFailures(text string, res *result) {
	found := false
	for _, m := range e2cTaskError.FindAllStringSubmatch(text, -1) {
		h := res.hosts[m[1]]
		if h == nil {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		h.failed, h.line, h.msg, found = true, c.caseLine(line), m[3], true
	}
	if !found {
		for _, h := range res.hosts {
			h.failed, h.msg = true, c.positions(text, "workflow.yaml")
		}
	}
}

// positions rewrites a tool file's positions in text (workflow.yaml:L:C)
// into the case file's.
func (c *Case) positions(text, file string) string {
	re := regexp.MustCompile(`\S*` + regexp.QuoteMeta(file) + `:(\d+)(:\d+)?`)
	return re.ReplaceAllStringFunc(text, func(s string) string {
		m := re.FindStringSubmatch(s)
		line, _ := strconv.Atoi(m[1])
		pos := fmt.Sprintf("%s.yml:%d", c.Name, c.caseLine(line))
		if col, _ := strconv.Atoi(strings.TrimPrefix(m[2], ":")); col > indentWidth {
			pos += fmt.Sprint(":", col-indentWidth)
		}
		return pos
	})
}

//go:embed e2c_diff.py
var callback []byte

// runAnsible runs the case with ansible-playbook on a fresh lab of the
// same hosts (names, addresses) as e2c's, then destroys it.
func (c *Case) runAnsible(ctx context.Context, dir string, subnet netip.Prefix) (*result, error) {
	work, callbacks := filepath.Join(dir, "work"), filepath.Join(dir, "callback")
	if err := c.writeFiles(work); err != nil {
		return nil, err
	}
	os.MkdirAll(callbacks, 0o755)
	files := map[string]string{
		filepath.Join(work, playbookName):       c.playbook(),
		filepath.Join(callbacks, "e2c_diff.py"): string(callback),
	}
	// In launch, e2c's working_dir and artifacts_dir are ARTIFACTS_DIR:
	// here, the playbook's folder, where relative sources are found too.
	vars, _ := json.Marshal(map[string]string{"working_dir": work, "artifacts_dir": work})
	files[filepath.Join(dir, "extra_vars.json")] = string(vars)
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	lab, err := netns.Create(ctx, netns.Options{Name: "diff-ansible-" + c.Name, Hosts: Hosts, Subnet: subnet, StateDir: filepath.Join(dir, "lab")})
	if err != nil {
		return nil, err
	}
	defer lab.Destroy(context.WithoutCancel(ctx))
	r, err := ansible.Setup(dir, lab, ansible.Options{CallbackDir: callbacks, Callbacks: []string{"e2c_diff"}})
	if err != nil {
		return nil, err
	}
	report := filepath.Join(dir, "report.json")
	out, runErr := r.Playbook(ctx, filepath.Join(work, playbookName), []string{"-e", "@" + filepath.Join(dir, "extra_vars.json")},
		[]string{"E2C_DIFF_OUT=" + report, "E2C_DIFF_VARS=" + strings.Join(c.vars(), ",")})
	r.Close()
	os.WriteFile(filepath.Join(dir, "output.txt"), out, 0o644)
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return nil, runErr
	}
	data, err := os.ReadFile(report)
	if err != nil {
		return nil, fmt.Errorf("ansible-playbook ran no task of the case (%v):\n%s", runErr, out)
	}
	var rep struct {
		Hosts map[string]struct {
			Failed, Unreachable bool
			Task, Msg           string
			Vars                map[string]any
		}
	}
	if err := decodeJSON(data, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", report, err)
	}
	res := &result{hosts: map[string]*hostResult{}, output: string(out)}
	for _, h := range Hosts {
		hr := &hostResult{vars: map[string]any{}}
		if a, ok := rep.Hosts[h]; ok {
			hr.failed, hr.msg, hr.vars = a.Failed || a.Unreachable, a.Msg, a.Vars
			if i := strings.LastIndexByte(a.Task, ':'); i >= 0 {
				n, _ := strconv.Atoi(a.Task[i+1:])
				hr.line = c.caseLine(n)
			}
		}
		if hr.files, err = snapshot(hostOpt(lab.StateDir(), h)); err != nil {
			return nil, err
		}
		res.hosts[h] = hr
	}
	if res.work, err = snapshot(work, playbookName); err != nil {
		return nil, err
	}
	return res, c.cleanup(ctx)
}

// cleanup runs the case's cleanup command on this machine.
func (c *Case) cleanup(ctx context.Context) error {
	if c.Cleanup == "" {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "sh", "-c", c.Cleanup).CombinedOutput(); err != nil {
		return fmt.Errorf("cleanup %q: %v\n%s", c.Cleanup, err, out)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
