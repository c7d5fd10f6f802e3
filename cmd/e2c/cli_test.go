package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/schema"
	"github.com/spf13/cobra"
)

// runCode executes the command line as main does: its output, the error
// text execute prints and the exit code.
func runCode(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetArgs(args)
	code = execute(ctx, root, &errOut)
	return out.String(), errOut.String(), code
}

// localScenario writes a scenario of one host on the local provider with
// this workflow.
func localScenario(t *testing.T, workflow string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte("environment: {local: }\nlayers:\n- name: edge\n  services: [{name: node}]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(workflow), 0o644)
	return dir
}

// TestExitCodes: an invalid scenario, a mistake in the command line, a
// failed run and an interrupted one each exit with their own code.
func TestExitCodes(t *testing.T) {
	t.Setenv("E2C_SCENARIO_DIR", "")
	t.Setenv("E2C_ARTIFACTS_DIR", "")
	invalid := localScenario(t, "- hosts: cloud.*\n  launch: [{shell: 'true'}]\n")
	failing := localScenario(t, "- hosts: all\n  launch: [{shell: 'false'}]\n")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"valid", []string{"validate", "../../examples/cctv"}, exitOK, ""},
		{"a flag's value", []string{"deploy", "s", "a", "--repeat", "abc"}, exitUsage, `--repeat: "abc" is not a whole number`},
		{"a mistyped command", []string{"deplyo"}, exitUsage, `unknown command "deplyo" for "e2c" (did you mean "deploy"?)`},
		{"flags that exclude each other", []string{"deploy", failing, t.TempDir(), "--destroy", "--keep"}, exitUsage, "[destroy keep] were all set"},
		{"validate of an invalid scenario", []string{"validate", invalid}, exitInvalid, `workflow.yaml:1:10: hosts: "cloud.*" matches no host`},
		{"deploy of an invalid scenario", []string{"deploy", invalid, t.TempDir(), "--destroy"}, exitInvalid, `matches no host`},
		{"a folder that is no scenario", []string{"validate", filepath.Join(invalid, "none")}, exitInvalid, "not a scenario folder"},
		{"a failed run", []string{"deploy", failing, t.TempDir(), "--destroy"}, exitFailed, "launch"},
		{"no artifacts folder", []string{"deploy", "--dry-run", failing, filepath.Join(failing, "none")}, exitFailed, "artifacts folder"},
	} {
		_, stderr, code := runCode(context.Background(), tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: %v: exit %d, want %d; stderr:\n%s\nwant it to hold %q", tt.name, tt.args, code, tt.code, stderr, tt.want)
		}
	}
	if runs, _ := filepath.Glob(filepath.Join(failing, "2*")); len(runs) != 1 {
		t.Errorf("run folders of the failing scenario: %v, want the failed run's alone", runs)
	}
}

// TestExitCodeInterrupted interrupts a real run during its launch, as the
// first Ctrl-C does: the run is finalized, recorded interrupted, and e2c
// exits with exitInterrupted.
func TestExitCodeInterrupted(t *testing.T) {
	started := filepath.Join(t.TempDir(), "started")
	dir := localScenario(t, fmt.Sprintf("- hosts: all\n  launch: [{shell: 'touch %s; sleep 60'}]\n", started))
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		for range 600 {
			if _, err := os.Stat(started); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel(errors.New("interrupt received"))
	}()
	_, stderr, code := runCode(ctx, "deploy", dir, t.TempDir(), "--destroy")
	if code != exitInterrupted || !strings.Contains(stderr, "interrupted: interrupt received") {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitInterrupted, stderr)
	}
	var rec struct{ Status string }
	runs, _ := filepath.Glob(filepath.Join(dir, "2*", "run.json"))
	if len(runs) == 1 {
		data, _ := os.ReadFile(runs[0])
		json.Unmarshal(data, &rec)
	}
	if rec.Status != "interrupted" {
		t.Errorf("run records %v: status %q, want interrupted", runs, rec.Status)
	}
}

// TestFlagsExcludeEachOther: flags that contradict each other are refused
// before anything is read, reserved or written.
func TestFlagsExcludeEachOther(t *testing.T) {
	dir := copyScenario(t, "cctv")
	t.Setenv("E2C_G5K_CREDENTIALS", filepath.Join(t.TempDir(), "none.yaml"))
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--destroy", "--keep"}, "[destroy keep] were all set"},
		{[]string{"--dry-run", "--destroy"}, "[destroy dry-run] were all set"},
		{[]string{"--dry-run", "--keep"}, "[dry-run keep] were all set"},
		{[]string{"--dry-run", "-q", "--log-format", "json"}, "[log-format quiet] were all set"},
		{[]string{"--dry-run", "--keep-network"}, "[dry-run keep-network] were all set"},
		{[]string{"--dry-run", "--no-network-check"}, "[dry-run no-network-check] were all set"},
	} {
		_, stderr, code := runCode(context.Background(), append([]string{"deploy", dir, t.TempDir()}, tt.flags...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "usage: e2c deploy") {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant %q", tt.flags, code, stderr, tt.want)
		}
	}
	if runs, _ := filepath.Glob(filepath.Join(dir, "2*")); len(runs) != 0 {
		t.Errorf("refused deploys wrote run folders: %v", runs)
	}
}

// TestDidYouMean: a mistyped subcommand is named with the commands near it
// (cobra's suggestions), not taken for a folder; an existing folder after
// e2c results is still listed.
func TestDidYouMean(t *testing.T) {
	scenario := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string // the first line of stderr
	}{
		{[]string{"results", "sumarize"}, `unknown command "sumarize" for "e2c results" (did you mean "summarize"?)`},
		{[]string{"results", "lsit"}, `unknown command "lsit" for "e2c results" (did you mean "list"?)`},
		{[]string{"results", "compre", "a", "b"}, `accepts at most 1 arg(s), received 3`},
		{[]string{"results", "compre"}, `unknown command "compre" for "e2c results" (did you mean "compare"?)`},
		{[]string{"results", "nothing-like-it"}, `unknown command "nothing-like-it" for "e2c results"; expected one of: list, summarize, compare, archive`},
		{[]string{"valdate", "x"}, `unknown command "valdate" for "e2c" (did you mean "validate"?)`},
		{[]string{"destory"}, `unknown command "destory" for "e2c" (did you mean "destroy"?)`},
	} {
		_, stderr, code := runCode(context.Background(), tt.args...)
		if first, _, _ := strings.Cut(stderr, "\n"); code != exitUsage || first != "e2c: "+tt.want {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant: e2c: %s", tt.args, code, stderr, tt.want)
		}
	}
	if out, stderr, code := runCode(context.Background(), "results", scenario); code != exitOK || out != "no runs in "+scenario+" yet\n" {
		t.Errorf("e2c results DIR: exit %d, %q %q", code, out, stderr)
	}
	t.Chdir(filepath.Dir(scenario))
	if out, stderr, code := runCode(context.Background(), "results", filepath.Base(scenario)); code != exitOK || !strings.HasPrefix(out, "no runs in ") {
		t.Errorf("e2c results FOLDER: exit %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := runCode(context.Background(), "results", "./sumarize"); code != exitFailed || !strings.Contains(stderr, "no such file") {
		t.Errorf("e2c results ./sumarize, a path: exit %d, %q", code, stderr)
	}
}

// TestEnvironmentArguments: every command that takes SCENARIO_DIR or
// ARTIFACTS_DIR reads E2C_SCENARIO_DIR and E2C_ARTIFACTS_DIR when they are
// not given (the step commands: TestStepCommands; reproduce:
// TestResultsAndReproduce).
func TestEnvironmentArguments(t *testing.T) {
	dir := copyScenario(t, "cctv")
	os.WriteFile(filepath.Join(dir, "sweep.yaml"), []byte("parameters:\n  network.networks.0.delay: [1ms, 7ms]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "metrics.yaml"), []byte("metrics:\n- {name: v, files: v.txt, lines: true}\n"), 0o644)
	t.Setenv("E2C_SCENARIO_DIR", dir)
	t.Setenv("E2C_ARTIFACTS_DIR", t.TempDir())
	archive := filepath.Join(t.TempDir(), "a.tar.gz")
	for _, tt := range []struct {
		args []string
		want string // in the output, or the error
	}{
		{[]string{"validate"}, "valid: 15 hosts"},
		{[]string{"deploy", "--dry-run"}, "wrote " + dir + "/2"},
		{[]string{"sweep", "--dry-run"}, "network.networks.0.delay=7ms"},
		{[]string{"results"}, "no runs in " + dir + " yet"},
		{[]string{"results", "list"}, "no runs in " + dir + " yet"},
		{[]string{"results", "summarize"}, "no runs in " + dir + " yet: nothing to summarize"},
		{[]string{"results", "archive", "-o", archive}, "wrote " + archive},
		{[]string{"destroy"}, "nothing to release"},
	} {
		out, err := run(t, tt.args...)
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, tt.want) {
			t.Errorf("%v: %s\nwant %q", tt.args, out, tt.want)
		}
	}
	if list, err := exec.Command("tar", "tzf", archive).Output(); err != nil || !strings.Contains(string(list), "/scenario/sweep.yaml\n") {
		t.Errorf("the archive of E2C_SCENARIO_DIR: %v\n%s", err, list)
	}
}

// TestValidateJSON: validate --json prints the overview of a valid
// scenario, and each problem of an invalid one at its place.
func TestValidateJSON(t *testing.T) {
	out, err := run(t, "validate", "../../examples/cctv", "--json")
	var o overview
	if err != nil || json.Unmarshal([]byte(out), &o) != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !o.Valid || o.Hosts != 15 || o.Keys != 17 || len(o.Plays) != 5 || len(o.Links) != 2 || o.Constraints != 40 || o.Problems != nil {
		t.Errorf("overview: %+v", o)
	}
	i := slices.IndexFunc(o.Services, func(s serviceRow) bool { return s.Service == "mosquitto" })
	if i < 0 || o.Services[i].Layer != "fog" || o.Services[i].Instances != 4 || o.Services[i].Keys != 4 || o.Services[i].LastKey != "fog.mosquitto.4.1" {
		t.Errorf("services: %+v", o.Services)
	}
	if l := o.Links[0]; l.Src != "cloud" || l.SrcHosts != 2 || l.Dst != "fog" || l.Rate != "1gbit" || l.Loss != 2 || l.Constraints != 8 {
		t.Errorf("links[0]: %+v", l)
	}

	dir := copyScenario(t, "cctv")
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: cloud, dst: fgo, rate: 10mbps}\n"), 0o644)
	stdout, stderr, code := runCode(context.Background(), "validate", dir, "--json")
	o = overview{}
	if err := json.Unmarshal([]byte(stdout), &o); err != nil || code != exitInvalid || o.Valid || len(o.Problems) != 2 {
		t.Fatalf("exit %d, %v, %+v\n%s\n%s", code, err, o, stdout, stderr)
	}
	for i, want := range []struct {
		col int
		msg string
	}{{21, `networks.dst: "fgo" matches no host; did you mean "fog"?`}, {32, `networks.rate: found "10mbps"`}} {
		p := o.Problems[i]
		if p.Pos == nil || *p.Pos != (schema.Pos{File: filepath.Join(dir, "network.yaml"), Line: 2, Col: want.col}) || !strings.HasPrefix(p.Message, want.msg) {
			t.Errorf("problem %d: %v %+v, want at 2:%d %s", i, p.Pos, p, want.col, want.msg)
		}
	}
}

// TestHelp: every command has examples, whose flags it takes; e2c --help
// shows the groups and the exit codes, which the README's command
// reference lists too.
func TestHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" && c.Name() != "help" && c.Name() != "completion" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, line := range strings.Split(c.Example, "\n") {
			args := strings.Fields(line)
			for len(args) > 0 && strings.Contains(args[0], "=") { // E2C_SCENARIO_DIR=...
				args = args[1:]
			}
			ex, rest, err := newRoot().Find(args[1:])
			if err == nil && !c.DisableFlagParsing {
				if err = ex.ParseFlags(rest); err == nil {
					err = ex.ValidateArgs(ex.Flags().Args())
				}
			}
			if err != nil || !strings.HasPrefix(ex.CommandPath(), c.CommandPath()) { // a group's examples are of its commands
				t.Errorf("example of %s: %s: %v (%s)", c.CommandPath(), line, err, ex.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	help, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	readme, _ := os.ReadFile("../../README.md")
	for _, want := range []string{"Experiment:\n  validate ", "Step by step (", "Results:\n  results "} {
		if !strings.Contains(help, want) {
			t.Errorf("e2c --help lacks %q:\n%s", want, help)
		}
	}
	for _, c := range exitCodes {
		if !strings.Contains(help, fmt.Sprintf("%3d  %s\n", c.code, c.what)) {
			t.Errorf("e2c --help lacks exit code %d:\n%s", c.code, help)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\| %d +\| `, c.code)).Match(readme) {
			t.Errorf("the README's command reference lacks exit code %d", c.code)
		}
	}
}
