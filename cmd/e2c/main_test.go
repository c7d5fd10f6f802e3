package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
)

// run executes the command line as a user would, returning output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRoot()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// copyScenario copies an example's files into a temporary folder, so that
// run folders land there.
func copyScenario(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", name, "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidate(t *testing.T) {
	out, err := run(t, "validate", "../../examples/cctv")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cloud.flink.1.job_manager.1", "fog.mosquitto.1.1 ... fog.mosquitto.4.1 (4)", "mosquitto: round_robin of 4", "valid: 15 hosts, 17 service keys, 5 plays, 2 network links (40 host-to-host constraints)",
		"│ cloud (2) │ fog (4)  │ 5ms 1gbit 2%    │ false     │ 8           │"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	dir := copyScenario(t, "cctv")
	wf := filepath.Join(dir, "workflow.yaml")
	data, _ := os.ReadFile(wf)
	data = bytes.Replace(data, []byte("{{ zookeeper.url }} --topic in-uni-data"), []byte("{{ zookeeper.ulr }} --topic in-uni-data"), 1)
	data = bytes.Replace(data, []byte("- hosts: fog.mosquitto.*"), []byte("- hosts: fog.mosquito.*"), 1)
	os.WriteFile(wf, data, 0o644)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: cloud, dst: fog, rate: 10mbps}\n"), 0o644)
	_, err := run(t, "validate", dir)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"network.yaml:2:32: networks.rate: found \"10mbps\"",
		`workflow.yaml:10:14: undefined variable "zookeeper.ulr" (did you mean "zookeeper.url"?) (on host cloud-kafka-2-1)`,
		`workflow.yaml:47:10: hosts: "fog.mosquito.*" matches no host; did you mean "fog.mosquitto.*"?`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestValidateContainers: a scenario's own definition with container
// mistakes, each reported at its place, those found with the hosts too.
func TestValidateContainers(t *testing.T) {
	dir := copyScenario(t, "cctv")
	os.Mkdir(filepath.Join(dir, "services"), 0o755)
	os.WriteFile(filepath.Join(dir, "services", "flink.yaml"), []byte(`name: flink
container: {image: "flink:1.20.4"}
subservices:
  - name: job_manager
    hosts: "0"
    container: {ports: [8081], readiness: {port: 0}}
  - name: task_manager
    hosts: "0"
    container: {ports: [8081], imgae: "flink:1.19"}
`), 0o644)
	_, err := run(t, "validate", dir)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"services/flink.yaml:6:50: container.readiness.port: found 0, expected a whole number from 1 to 65535",
		`services/flink.yaml:9:32: container: unknown key "imgae" (did you mean "image"?)`,
		"services/flink.yaml:9:25: container task_manager (cloud.flink.1.task_manager.1): host port 8081/tcp is already taken by container job_manager (cloud.flink.1.job_manager.1) on this host (on host cloud-flink-1-1)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestValidateExamples: every example validates as shipped.
func TestValidateExamples(t *testing.T) {
	scenarios, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "layers_services.yaml"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*", "layers_services.yaml"))
	scenarios = append(scenarios, more...)
	if len(scenarios) < 2 {
		t.Fatalf("examples: %v", scenarios)
	}
	for _, f := range scenarios {
		if out, err := run(t, "validate", filepath.Dir(f)); err != nil || !strings.Contains(out, "valid: ") {
			t.Errorf("%s: %v\n%s", filepath.Dir(f), err, out)
		}
	}
}

// TestValidateTestbedBlocks: mistakes in a testbed block are reported by
// validate, at their position, before anything is reserved.
func TestValidateTestbedBlocks(t *testing.T) {
	for _, tt := range []struct {
		name, environment string
		quantity          int
		want              string
	}{
		{"misspelt key of a static host", "static:\n    hosts:\n    - {adress: 10.0.0.1, alias: a}\n    - {address: 10.0.0.2}", 1,
			`layers_services.yaml:4:8: static.hosts: unknown key "adress" (did you mean "address"?); expected one of: address, alias, cluster, arch, user, port, keyfile, docker_socket`},
		{"too few static hosts", "static:\n    hosts:\n    - {address: 10.0.0.1, alias: a}\n    - {address: 10.0.0.2}", 3,
			`layers_services.yaml:9:28: static: edge.node.1 (service node) asks for 3 host(s) from any host; 2 left: a, 10.0.0.2 (each host serves one instance)`},
		{"misspelt testbed", "locl: {}", 1,
			`layers_services.yaml:2:3: environment: unknown testbed "locl" (did you mean "local"?)`},
		{"misspelt local setting", "local: {job_nme: x}", 1,
			`layers_services.yaml:2:11: local: unknown key "job_nme" (did you mean "job_name"?)`},
		{"monitoring option e2c's sampler cannot honour", "local: {}\nmonitoring: {type: dstat, options: --top-cpu}", 1,
			`layers_services.yaml:3:36: monitoring.options: `},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "layers_services.yaml"), fmt.Appendf(nil, "environment:\n  %s\nlayers:\n- name: edge\n  services:\n  - {name: node, quantity: %d}\n", tt.environment, tt.quantity), 0o644)
		os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch: [{shell: \"true\"}]\n"), 0o644)
		_, err := run(t, "validate", dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, tt.want)) {
			t.Errorf("%s: %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

// TestDeployStaticErrorSaysItOnce: the deploy's error names the step and
// the testbed once ("reserve: static: preflight failed"), not twice.
func TestDeployStaticErrorSaysItOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), fmt.Appendf(nil, "environment:\n  static:\n    user: e2c-test\n    port: %d\n    hosts: [{address: 127.0.0.1, alias: closed}]\nlayers:\n- name: edge\n  services: [{name: node}]\n", port), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte("- hosts: all\n  launch: [{shell: \"true\"}]\n"), 0o644)
	_, err = run(t, "deploy", dir, t.TempDir())
	want := fmt.Sprintf("reserve: static: preflight failed:\n  closed (127.0.0.1): ssh e2c-test@127.0.0.1:%d: connection refused", port)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("deploy: %v\nwant: %s", err, want)
	}
}

func TestDeployDryRun(t *testing.T) {
	dir := copyScenario(t, "cctv")
	artifacts := t.TempDir()
	out, err := run(t, "deploy", "--dry-run", dir, artifacts, "--repeat", "1")
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(runs) != 1 || !strings.Contains(out, "wrote "+runs[0]) {
		t.Fatalf("run folders %v, output:\n%s", runs, out)
	}
	var p plan.Plan
	data, err := os.ReadFile(filepath.Join(runs[0], "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Version != plan.Version || len(p.Hosts) != 15 || p.ExtraVars["finalize"]["working_dir"] != runs[0] || p.ExtraVars["finalize"]["repeat_count"] != 2.0 {
		t.Errorf("plan: version %d, %d hosts, extra vars %v", p.Version, len(p.Hosts), p.ExtraVars["finalize"])
	}
	// The containers the workflow addresses, in plan.json and printed.
	var names []string
	for _, h := range p.Hosts {
		for _, c := range h.Containers {
			names = append(names, h.Name+"/"+c.Name)
		}
	}
	if want := []string{"cloud-flink-1-1/job_manager", "cloud-flink-1-1/task_manager", "cloud-kafka-2-1/zookeeper", "cloud-kafka-2-1/leader"}; len(names) != 8 || !slices.Equal(names[:4], want) {
		t.Errorf("containers in plan.json: %v, want %v and 4 mosquitto", names, want)
	}
	for _, line := range []string{"containers: 8, started by the services step",
		"  leader: confluentinc/cp-kafka:6.2.1, network host, ports 9092/tcp, ready when port 9092 answers within 3m0s  on cloud-kafka-2-1\n",
		"  mosquitto: eclipse-mosquitto:2.0.18, network host, ports 1883/tcp, ready when port 1883 answers within 2m0s  on fog-mosquitto-1-1 fog-mosquitto-2-1 fog-mosquitto-3-1 ... (4 hosts)\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	for _, f := range []string{"layers_services-validate.yaml", "workflow-validate.out"} {
		if st, err := os.Stat(filepath.Join(runs[0], f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// A second dry run never reuses the folder.
	if _, err := run(t, "deploy", "--dry-run", dir, artifacts); err != nil {
		t.Fatal(err)
	}
	if runs, _ := filepath.Glob(filepath.Join(dir, "2*")); len(runs) != 2 {
		t.Errorf("run folders after two dry runs: %v", runs)
	}
}

// TestDeployDryRunTwin: a dry run plans what a deploy with --testbed and
// --network would run: the Grid'5000 scenario's emulated twin, with its
// rates only.
func TestDeployDryRunTwin(t *testing.T) {
	dir := copyScenario(t, "cctv")
	out, err := run(t, "deploy", "--dry-run", dir, t.TempDir(), "--testbed", "netns", "--network", "rates-only")
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	if len(runs) != 1 {
		t.Fatalf("run folders %v, output:\n%s", runs, out)
	}
	var p plan.Plan
	data, _ := os.ReadFile(filepath.Join(runs[0], "plan.json"))
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	for _, h := range p.Hosts {
		if h.Testbed != "netns" {
			t.Errorf("host %s on testbed %q, want netns", h.Name, h.Testbed)
		}
	}
	for _, c := range p.Constraints {
		if c.Shape.Delay != 0 || c.Shape.Loss != 0 || c.Shape.Rate == 0 {
			t.Errorf("constraint %s -> %s: %v, want its rate alone", c.Src, c.Dst, c.Shape)
		}
	}
	if len(p.Hosts) != 15 || len(p.Constraints) == 0 {
		t.Errorf("%d hosts, %d constraints", len(p.Hosts), len(p.Constraints))
	}
}

func TestDeployRefusals(t *testing.T) {
	dir := copyScenario(t, "cctv")
	noCreds := filepath.Join(t.TempDir(), "none.yaml")
	t.Setenv("E2C_G5K_CREDENTIALS", noCreds)
	tests := []struct {
		args []string
		want string
	}{
		// No Grid'5000 credentials: refused before any call to the API.
		{[]string{"deploy", dir, t.TempDir()}, `reserve: g5k: credentials: open ` + noCreds},
		{[]string{"deploy", "--dry-run", dir, filepath.Join(dir, "nope")}, "artifacts folder"},
		{[]string{"deploy", "--dry-run", dir}, "missing ARTIFACTS_DIR (or set E2C_ARTIFACTS_DIR)"},
		{[]string{"deploy", "--dry-run", "--repeat", "-1", dir, t.TempDir()}, "--repeat -1: expected 0 to 10000"},
		{[]string{"deploy", "--dry-run", "--repeat", "9223372036854775807", dir, t.TempDir()}, "expected 0 to 10000"},
		{[]string{"validate", ""}, "missing SCENARIO_DIR (or set E2C_SCENARIO_DIR)"},
		{[]string{"deploy", "--dry-run", "--repeat", "abc", dir, t.TempDir()}, `--repeat: "abc" is not a whole number`},
		{[]string{"deploy", "--dry-run", "--app-conf", "low", dir, t.TempDir()}, `app_conf "low" is not defined`},
	}
	for _, tt := range tests {
		_, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
	if runs, _ := filepath.Glob(filepath.Join(dir, "2*")); len(runs) != 0 {
		t.Errorf("refused runs left folders: %v", runs)
	}
}

// TestCommandLineMistakes: a wrong command line says what is wrong in
// words and shows the command's usage line; other errors do not.
func TestCommandLineMistakes(t *testing.T) {
	t.Setenv("E2C_SCENARIO_DIR", "")
	t.Setenv("E2C_ARTIFACTS_DIR", "")
	tests := []struct {
		args []string
		want string // the whole of stderr
	}{
		{[]string{"deploy", "s", "a", "--repeat", "abc"}, `e2c: --repeat: "abc" is not a whole number
usage: e2c deploy [SCENARIO_DIR ARTIFACTS_DIR] [flags]
see: e2c deploy --help
`},
		{[]string{"sweep", "s", "a", "--repeat", "99999999999999999999"}, `e2c: --repeat: "99999999999999999999" is out of range
usage: e2c sweep [SCENARIO_DIR ARTIFACTS_DIR] [--param path=v1,v2]... [flags]
see: e2c sweep --help
`},
		{[]string{"deploy", "s", "a", "--duration", "soon"}, `e2c: --duration: "soon": expected seconds (240) or a duration (4m)
usage: e2c deploy [SCENARIO_DIR ARTIFACTS_DIR] [flags]
see: e2c deploy --help
`},
		{[]string{"deploy", "s", "a", "--repaet", "1"}, `e2c: unknown flag --repaet (did you mean "--repeat"?)
usage: e2c deploy [SCENARIO_DIR ARTIFACTS_DIR] [flags]
see: e2c deploy --help
`},
		{[]string{"validate"}, `e2c: missing SCENARIO_DIR (or set E2C_SCENARIO_DIR)
usage: e2c validate [SCENARIO_DIR] [flags]
see: e2c validate --help
`},
		{[]string{"deploy", "s"}, `e2c: missing ARTIFACTS_DIR (or set E2C_ARTIFACTS_DIR)
usage: e2c deploy [SCENARIO_DIR ARTIFACTS_DIR] [flags]
see: e2c deploy --help
`},
		{[]string{"results", "compare", "a"}, `e2c: accepts 2 arg(s), received 1
usage: e2c results compare RUN_A RUN_B [flags]
see: e2c results compare --help
`},
		{[]string{"scale", "s", "edge.node=-1"}, `e2c: "edge.node=-1": a quantity cannot be below zero
usage: e2c scale [SCENARIO_DIR] layer.service=N ... [flags]
see: e2c scale --help
`},
		// Not a command-line mistake: no usage line.
		{[]string{"deploy", "--dry-run", "/nonexistent/s", "/nonexistent/a"}, "e2c: artifacts folder /nonexistent/a: not found (it holds what tasks copy to the hosts)\n"},
	}
	for _, tt := range tests {
		root := newRoot()
		root.SetArgs(tt.args)
		root.SetOut(io.Discard)
		var stderr bytes.Buffer
		want := exitUsage
		if !strings.Contains(tt.want, "usage: ") {
			want = exitFailed
		}
		if code := execute(context.Background(), root, &stderr); code != want || stderr.String() != tt.want {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant:\n%s", tt.args, code, stderr.String(), tt.want)
		}
	}
}

func TestBuildVersion(t *testing.T) {
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "5073b8d4d0c6d12cb86c3e26aa0c0ae5103711e1"}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tt := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go build in a clean checkout", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202144959-5073b8d4d0c6"}, Settings: vcs("false")}, "5073b8d4d0c6"},
		{"go build with changes", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202144959-5073b8d4d0c6+dirty"}, Settings: vcs("true")}, "5073b8d4d0c6-dirty"},
		{"go install of a release", debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{"go run", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
	} {
		if got := buildVersion(&tt.bi); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestStepCommands runs the lifecycle one command at a time on the local
// provider, with the folders as arguments and from E2C_SCENARIO_DIR and
// E2C_ARTIFACTS_DIR; a value registered in prepare is read in launch,
// through the saved state.
func TestStepCommands(t *testing.T) {
	for _, fromEnv := range []bool{false, true} {
		dir := t.TempDir()
		artifacts := t.TempDir()
		os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`
- hosts: all
  prepare:
  - {shell: echo secret-$((40+2)), register: token}
  launch:
  - shell: echo "{{ token.stdout }} {{ inventory_hostname }}" > out.txt
  finalize:
  - fetch: {src: out.txt, dest: "{{ working_dir }}/r/", flat: no}
`), 0o644)
		steps := [][]string{
			{"layers-services", dir, artifacts},
			{"network", dir},
			{"workflow", dir, "prepare"},
			{"workflow", dir, "launch"},
			{"finalize", dir},
			{"destroy", dir},
		}
		t.Setenv("E2C_SCENARIO_DIR", "")
		t.Setenv("E2C_ARTIFACTS_DIR", "")
		if fromEnv {
			t.Setenv("E2C_SCENARIO_DIR", dir)
			t.Setenv("E2C_ARTIFACTS_DIR", artifacts)
			for i, args := range steps {
				steps[i] = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == dir || a == artifacts })
			}
		}
		for _, args := range steps {
			if out, err := run(t, args...); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
		if len(runs) != 1 {
			t.Fatalf("run folders: %v", runs)
		}
		data, err := os.ReadFile(filepath.Join(runs[0], "r", "edge-node-1-2", "out.txt"))
		if err != nil || string(data) != "secret-42 edge-node-1-2\n" {
			t.Errorf("out.txt = %q, %v", data, err)
		}
		var rec struct {
			Status string
			Steps  []struct{ Name, Status string }
		}
		data, _ = os.ReadFile(filepath.Join(runs[0], "run.json"))
		json.Unmarshal(data, &rec)
		var got []string
		for _, s := range rec.Steps {
			got = append(got, s.Name+":"+s.Status)
		}
		if rec.Status != "succeeded" || strings.Join(got, " ") != "reserve:succeeded services:succeeded network:succeeded prepare:succeeded launch:succeeded finalize:succeeded" {
			t.Errorf("run.json: %s %v", rec.Status, got)
		}
		if _, err := run(t, "workflow", dir, "launch"); err == nil || !strings.Contains(err.Error(), "layers-services first") {
			t.Errorf("workflow after destroy: %v", err)
		}
		if fromEnv {
			continue
		}
		// --json: the record on standard output, even after a failure (no
		// launch made out.txt), the step's lines apart.
		if out, err := run(t, "layers-services", dir, artifacts); err != nil {
			t.Fatalf("layers-services: %v\n%s", err, out)
		}
		var stdout, stderr bytes.Buffer
		cmd := newRoot()
		cmd.SetOut(&stdout)
		cmd.SetErr(&stderr)
		cmd.SetArgs([]string{"finalize", dir, "--json", "--destroy"})
		if err := cmd.Execute(); err == nil {
			t.Errorf("finalize --json of nothing launched succeeded\n%s", stderr.String())
		}
		var closed struct{ Status string }
		if err := json.Unmarshal(stdout.Bytes(), &closed); err != nil || closed.Status != "failed" || !strings.Contains(stderr.String(), "FINALIZE") {
			t.Errorf("finalize --json: %v, status %q\nstdout %s\nstderr %s", err, closed.Status, stdout.String(), stderr.String())
		}
		if _, err := run(t, "workflow", dir, "lunch"); err == nil || !strings.Contains(err.Error(), `phase "lunch"`) {
			t.Errorf("bad phase: %v", err)
		}
	}
}

func TestResultsAndReproduce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	artifacts := t.TempDir()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment:\n  job_name: r\n  local: {}\nlayers:\n- name: edge\n  services: [{name: node}]\n"), 0o644)
	// Run i writes the values i and i+2: run means 1, 2 (run 0: 0 and 2).
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  launch: [{shell: "echo {{ current_repeat }} > v.txt; echo {{ current_repeat + 2 }} >> v.txt"}]
  finalize: [{fetch: {src: v.txt, dest: "{{ working_dir }}/v.txt", flat: yes}}]
`), 0o644)
	os.WriteFile(filepath.Join(dir, "metrics.yaml"), []byte("metrics:\n- {name: v, files: v.txt, lines: true, unit: u}\n"), 0o644)
	os.WriteFile(filepath.Join(artifacts, "a.txt"), []byte("a"), 0o644)
	if out, err := run(t, "results", dir); err != nil || !strings.Contains(out, "no runs in") {
		t.Fatalf("results before any run: %q, %v", out, err)
	}
	if out, err := run(t, "deploy", dir, artifacts, "--repeat", "1", "--destroy"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	out, err := run(t, "results", dir)
	if err != nil || strings.Count(out, "succeeded") != 2 || !strings.Contains(out, "2/2") {
		t.Fatalf("results: %v\n%s", err, out)
	}
	var rows []runRow
	out, err = run(t, "results", "list", dir, "--json")
	if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("results list --json: %v\n%s", err, out)
	}
	for i, r := range rows {
		if r.Status != "succeeded" || r.Repeat != i || r.RepeatCount != 2 || r.Hosts != 1 || r.Duration <= 0 || filepath.Join(dir, r.Run) != r.Dir {
			t.Errorf("results list --json, run %d: %+v", i, r)
		}
	}
	out, err = run(t, "results", "summarize", dir)
	if err != nil || !strings.Contains(out, "│ v (u)  │ -      │ 2 │ 1.5  │ 1.5    │ 0.7071 │ 1   │ 2   │ [-4.853, 7.853] │") || !strings.Contains(out, "and 4 figures") {
		t.Errorf("summarize: %v\n%s", err, out)
	}
	if csvs, _ := filepath.Glob(filepath.Join(dir, "summaries", "*", "summary.csv")); len(csvs) != 1 {
		t.Errorf("summary files: %v", csvs)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
	out, err = run(t, "results", "compare", runs[0], runs[1])
	if err != nil || !strings.Contains(out, "workflow.yaml") || !strings.Contains(out, "(same)") || !strings.Contains(out, "the same files") ||
		!strings.Contains(out, "+100.0%") {
		t.Errorf("compare: %v\n%s", err, out)
	}
	var c struct {
		Runs  [2]runRow `json:"runs"`
		Files []struct {
			Path string
			Size [2]int64
			Same bool
		} `json:"scenario_files"`
		Artifacts []string `json:"artifacts"`
		Metrics   []struct {
			Metric  string
			Means   [2]float64
			Percent float64 `json:"change_percent"`
		}
	}
	out, err = run(t, "results", "compare", runs[0], runs[1], "--json")
	if err != nil || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("compare --json: %v\n%s", err, out)
	}
	if c.Runs[1].Repeat != 1 || len(c.Files) != 3 || c.Files[2].Path != "workflow.yaml" || !c.Files[2].Same || c.Files[2].Size[0] <= 0 ||
		len(c.Artifacts) != 0 || len(c.Metrics) != 1 || c.Metrics[0].Means != [2]float64{1, 2} || c.Metrics[0].Percent != 100 {
		t.Errorf("compare --json: %+v\n%s", c, out)
	}
	archive := filepath.Join(t.TempDir(), "paper.tar.gz")
	if out, err := run(t, "results", "archive", dir, "-o", archive); err != nil {
		t.Fatalf("archive: %v\n%s", err, out)
	}
	list, err := exec.Command("tar", "tzf", archive).Output()
	for _, want := range []string{"paper/README.md\n", "paper/scenario/metrics.yaml\n", "paper/scenario/" + filepath.Base(runs[1]) + "/run.json\n",
		"paper/scenario/" + filepath.Base(runs[0]) + "/scenario/workflow.yaml\n"} {
		if err != nil || !strings.Contains(string(list), want) {
			t.Errorf("archive lacks %q: %v\n%s", want, err, list)
		}
	}
	if strings.Contains(string(list), ".e2c") {
		t.Errorf("the archive holds the state:\n%s", list)
	}
	if _, err := run(t, "results", "archive", dir, "-o", archive); err == nil {
		t.Error("an archive was overwritten")
	}
	// E2C_ARTIFACTS_DIR stands for ARTIFACTS_DIR: its a.txt differs.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "a.txt"), []byte("c"), 0o644)
	t.Setenv("E2C_ARTIFACTS_DIR", other)
	if _, err := run(t, "reproduce", runs[0]); err == nil || !strings.Contains(err.Error(), "changed: a.txt") {
		t.Errorf("reproduce with E2C_ARTIFACTS_DIR's changed artifact: %v", err)
	}
	t.Setenv("E2C_ARTIFACTS_DIR", "")
	os.WriteFile(filepath.Join(artifacts, "a.txt"), []byte("b"), 0o644)
	if _, err := run(t, "reproduce", runs[0]); err == nil || !strings.Contains(err.Error(), "changed: a.txt") {
		t.Errorf("reproduce with a changed artifact: %v", err)
	}
	if out, err := run(t, "reproduce", runs[0], artifacts, "--force"); err != nil || !strings.Contains(out, "results: ") {
		t.Errorf("reproduce --force: %v\n%s", err, out)
	}
}

// copyTree copies a whole example (artifacts and links included) into a
// temporary folder.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-rL", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// TestQuickstartTwice deploys two copies of the quickstart at the same
// time, as two terminals would: each scenario's hosts have their own
// working areas and loopback addresses, so both succeed with complete
// results, and --destroy leaves nothing behind.
func TestQuickstartTwice(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: the quickstart builds its application with go, which is not in PATH")
	}
	dirs := []string{copyTree(t, "../../examples/quickstart"), copyTree(t, "../../examples/quickstart")}
	// Launch ends once records flow through the whole pipeline (every
	// producer and gateway connected, the sink's first records on disk),
	// however long 14 processes on a loaded machine take to get there:
	// then a second of --duration gives every file its data.
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, "workflow.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, `
- hosts: all
  launch:
  - shell: >-
      timeout 120 sh -c 'until grep -qs -e "rides to" -e "forwarding to" producer.log gateway.log ||
      [ "$(cat latency.csv 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.1; done'
`)
		f.Close()
	}

	// Its tasks name no path outside the scenario folder (which holds the
	// artifacts, the run folders and the hosts' working areas) but the
	// system's, on every host and in every phase.
	if out, err := run(t, "deploy", "--dry-run", dirs[0], filepath.Join(dirs[0], "artifacts")); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	plans, _ := filepath.Glob(filepath.Join(dirs[0], "2*", "plan.json"))
	if len(plans) != 1 {
		t.Fatalf("plans: %v", plans)
	}
	var p plan.Plan
	data, _ := os.ReadFile(plans[0])
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Dir(plans[0]))
	absPath := regexp.MustCompile(`(?:^|[\s="':])(/[^\s"':]*)`)
	outside := map[string]bool{}
	for _, pl := range p.Plays {
		for phase, runs := range pl.Phases {
			for _, r := range runs {
				plan.Walk(r.Tasks, func(task *plan.Task) {
					texts := []string{task.Chdir}
					for _, v := range task.Args {
						texts = append(texts, fmt.Sprint(v))
					}
					for _, text := range texts {
						for _, m := range absPath.FindAllStringSubmatch(text, -1) {
							if !strings.HasPrefix(m[1], dirs[0]+"/") && !strings.HasPrefix(m[1], "/usr/") && !outside[m[1]] {
								outside[m[1]] = true
								t.Errorf("%s task %s (on %s): %s is outside the scenario folder", phase, task.Pos, r.Host, m[1])
							}
						}
					}
				})
			}
		}
	}

	outs, errs := make([]string, len(dirs)), make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Go(func() {
			outs[i], errs[i] = run(t, "deploy", dir, filepath.Join(dir, "artifacts"), "--duration", "1", "--destroy")
		})
	}
	wg.Wait()
	for i, dir := range dirs {
		if errs[i] != nil {
			t.Errorf("deploy of copy %d: %v\n%s", i, errs[i], outs[i])
			continue
		}
		runs, _ := filepath.Glob(filepath.Join(dir, "2*"))
		if len(runs) != 1 {
			t.Errorf("copy %d: run folders %v", i, runs)
			continue
		}
		var rec struct{ Status string }
		data, _ := os.ReadFile(filepath.Join(runs[0], "run.json"))
		if err := json.Unmarshal(data, &rec); err != nil || rec.Status != "succeeded" {
			t.Errorf("copy %d: status %q, %v", i, rec.Status, err)
		}
		files := []string{"sink/latency.csv", "sink/throughput.csv"}
		for n := 1; n <= 4; n++ {
			files = append(files, fmt.Sprintf("producers/edge-producer-%d-1/sent.csv", n))
		}
		for n := 1; n <= 2; n++ {
			files = append(files, fmt.Sprintf("gateways/fog-gateway-%d-1/gateway.csv", n))
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(runs[0], "experiment-results", f))
			if lines := strings.Count(string(data), "\n"); err != nil || lines < 2 {
				t.Errorf("copy %d: %s: %d lines, %v", i, f, lines, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, ".e2c", "local", "hosts")); !os.IsNotExist(err) {
			t.Errorf("copy %d: the hosts' working areas are still there after --destroy (%v)", i, err)
		}
	}
	if left := processesIn(dirs); len(left) > 0 {
		t.Errorf("processes left after --destroy:\n%s", strings.Join(left, "\n"))
	}
	// Nothing of those runs stands in for missing artifacts: with an empty
	// artifacts folder, the build has no source.
	_, err := run(t, "deploy", dirs[0], t.TempDir(), "--destroy")
	if err == nil || !strings.Contains(err.Error(), "prepare") {
		t.Errorf("deploy with empty artifacts: %v, want a failed prepare", err)
	}
}

// processesIn lists the processes whose working directory, executable or
// command line is in one of dirs.
func processesIn(dirs []string) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		cwd, _ := os.Readlink(filepath.Join(proc, "cwd"))
		exe, _ := os.Readlink(filepath.Join(proc, "exe"))
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		for _, d := range dirs {
			if strings.Contains(cwd+"\x00"+exe+"\x00"+string(cmdline), d) {
				left = append(left, fmt.Sprintf("%d %s (in %s)", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), cwd))
				break
			}
		}
	}
	return left
}

// TestFailedRunLeavesNoProcesses: a launch that fails after starting a
// background job, and a finalize that stops nothing; --destroy stops what
// the run left.
func TestFailedRunLeavesNoProcesses(t *testing.T) {
	dir, artifacts := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`
- hosts: all
  launch:
  - {shell: exec sleep 300, async: 600, poll: 0}
  - shell: "false"
`), 0o644)
	if _, err := run(t, "deploy", dir, artifacts, "--destroy"); err == nil || !strings.Contains(err.Error(), "launch") {
		t.Fatalf("deploy: %v, want a failed launch", err)
	}
	if left := processesIn([]string{dir}); len(left) > 0 {
		t.Errorf("processes left after --destroy:\n%s", strings.Join(left, "\n"))
		for _, l := range left {
			pid, _ := strconv.Atoi(strings.Fields(l)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
