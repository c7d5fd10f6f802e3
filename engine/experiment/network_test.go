package experiment

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/probe"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// TestMain lets this test binary be the agent e2c copies to the hosts: run
// there with E2C_AGENT=1 as `<binary> agent serve|measure ...`, it is one.
// With E2C_TEST_CHILD set, it is an e2c process the crash tests kill.
func TestMain(m *testing.M) {
	// The agent first: one a crash test's child starts inherits its
	// E2C_TEST_CHILD.
	if os.Getenv("E2C_AGENT") == "1" && len(os.Args) > 1 && os.Args[1] == "agent" {
		agent := probe.Command()
		agent.SetArgs(os.Args[2:])
		if err := agent.Execute(); err != nil {
			os.Exit(1) // cobra said why
		}
		os.Exit(0)
	}
	if what := os.Getenv("E2C_TEST_CHILD"); what != "" {
		os.Exit(runChild(what))
	}
	os.Exit(m.Run())
}

// testAgent is this test binary, whatever the architecture asked: the
// emulated hosts are this machine.
func testAgent(string) (string, error) { return os.Executable() }

const fourHosts = `layers:
- name: fog
  services: [{name: gw, quantity: 2}]
- name: edge
  services: [{name: node, quantity: 2}]
`

const touchWorkflow = `
- hosts: all
  launch:
  - shell: touch /opt/launched
`

// lab returns the emulated hosts of the scenario's kept reservation.
func lab(t *testing.T, dir string) map[string]netns.Host {
	t.Helper()
	st, err := LoadState(dir)
	if err != nil || st.Reservations["netns"] == nil {
		t.Fatalf("no kept netns reservation: %v", err)
	}
	var l netns.Lab
	if err := json.Unmarshal(st.Reservations["netns"].State, &l); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]netns.Host{}
	for _, h := range l.Hosts() {
		hosts[h.Name] = h
	}
	return hosts
}

// throughput measures from src to dst with the agent run straight in the
// hosts' namespaces, not through e2c: an independent look at the shaping.
func throughput(t *testing.T, src, dst netns.Host) float64 {
	t.Helper()
	self, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := exec.CommandContext(ctx, "ip", "netns", "exec", dst.Namespace, self, "agent", "serve", "--for", "1m")
	server.Env = append(os.Environ(), "E2C_AGENT=1")
	stdout, _ := server.StdoutPipe()
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), probe.Ready)
	if err != nil || !ok {
		t.Fatalf("agent serve in %s: %q, %v", dst.Name, line, err)
	}
	client := exec.CommandContext(ctx, "ip", "netns", "exec", src.Namespace, self, "agent", "measure",
		"--to", dst.Address4.String(), "--port", port, "--echoes", "2", "--interval", "10ms", "--wait", "500ms", "--stream", "1s")
	client.Env = server.Env
	out, err := client.Output()
	if err != nil {
		t.Fatalf("agent measure in %s: %v", src.Name, err)
	}
	var m probe.Measurement
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return m.Throughput
}

func tcState(t *testing.T, h netns.Host) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.Namespace, "tc", "qdisc", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("tc in %s: %v: %s", h.Name, err, out)
	}
	return string(out)
}

func within(got, want, share float64) bool { return got >= want*(1-share) && got <= want*(1+share) }

// TestNetnsNetworkRate applies a 10 mbit limit from fog to edge on real
// emulated hosts: e2c's validation and an independent measurement find it
// within 15 %, a pair inside the fog layer is not limited, and removing the
// emulation restores full speed.
func TestNetnsNetworkRate(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.2.0/24", fourHosts, touchWorkflow)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: fog, dst: edge, rate: 10mbit}\n"), 0o644)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, KeepNetwork: true, Agent: testAgent, Out: &out}, ReleaseIfInterrupted)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	run := runs[0]

	// e2c's own validation, in the run folder.
	var checks []*emulation.Check
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(run, "network-validate", "summary.json"))), &checks); err != nil {
		t.Fatal(err)
	}
	// The rate is what this test is about; without delay the RTT check
	// compares sub-millisecond times, which a loaded machine can upset.
	if len(checks) != 1 || checks[0].ThroughputOK == nil || !*checks[0].ThroughputOK || !within(checks[0].Throughput, 10e6, 0.15) ||
		checks[0].Error != "" || checks[0].RTT <= 0 {
		t.Fatalf("validation: %+v\n%s", checks[0], out.String())
	}
	t.Logf("e2c's validation: %s", checks[0].Summary())
	entry := filepath.Join(run, "network-validate", "fog-edge-asymmetric")
	if s := readFile(t, filepath.Join(entry, "summary.txt")); !strings.Contains(s, "within tolerance") {
		t.Errorf("summary.txt: %q", s)
	}
	if s := readFile(t, filepath.Join(entry, "tc-fog-gw-1-1.txt")); !strings.Contains(s, "class add dev eth0 parent 1: classid 1:1 htb rate 10mbit") ||
		!strings.Contains(s, "qdisc htb 1: root") {
		t.Errorf("tc dump of fog-gw-1-1:\n%s", s)
	}
	if s := readFile(t, filepath.Join(entry, "tc-fog-gw-1-1.txt")); !strings.Contains(s, "protocol ipv6 prio 2 u32 match ip6 dst fd") {
		t.Errorf("no IPv6 filter for the edge hosts:\n%s", s)
	}
	if s := readFile(t, filepath.Join(run, "network-validate", "hosts.json")); !strings.Contains(s, `"sch_htb": true`) {
		t.Errorf("hosts.json: %s", s)
	}
	if _, err := os.Stat(filepath.Join(entry, "tc-edge-node-1-1.txt")); err == nil {
		t.Error("an edge host, which shapes nothing, has a tc dump")
	}

	hosts := lab(t, dir)
	fog1, fog2, edge1 := hosts["fog-gw-1-1"], hosts["fog-gw-1-2"], hosts["edge-node-1-1"]
	if got := throughput(t, fog1, edge1); !within(got, 10e6, 0.15) {
		t.Errorf("fog -> edge: %.2f Mbit/s, want 10 ± 15%%", got/1e6)
	}
	// Unshaped traffic goes at the bridge's speed: far above the limit.
	if got := throughput(t, fog1, fog2); got < 50e6 {
		t.Errorf("fog -> fog: %.2f Mbit/s, want unlimited (above 50)", got/1e6)
	}
	if got := throughput(t, edge1, fog1); got < 50e6 {
		t.Errorf("edge -> fog (not symmetric): %.2f Mbit/s, want unlimited", got/1e6)
	}

	if err := destroyNetwork(context.Background(), dir, &out); err != nil {
		t.Fatal(err)
	}
	if s := tcState(t, fog1); strings.Contains(s, "htb") {
		t.Errorf("after destroy --network: %s", s)
	}
	if got := throughput(t, fog1, edge1); got < 50e6 {
		t.Errorf("fog -> edge after removal: %.2f Mbit/s, want full speed", got/1e6)
	}
	if st, _ := LoadState(dir); len(st.Network) != 0 {
		t.Errorf("state still records %v", st.Network)
	}
}

// TestNetnsNetworkDelay asks for delay and loss. Without sch_netem the run
// fails before prepare and launch, naming the hosts and the way out, with
// nothing applied; with it, e2c's validation finds the delay. Whichever
// cannot be seen on this kernel is a visible skip.
func TestNetnsNetworkDelay(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.3.0/24", fourHosts, touchWorkflow)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: fog, dst: edge, delay: 20ms, loss: 1%, symmetric: true}\n"), 0o644)
	hasNetem := kernelHasNetem(t)
	var log strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Agent: testAgent, Out: &log}, ReleaseIfInterrupted)
	hosts := lab(t, dir)
	t.Run("refused without sch_netem", func(t *testing.T) {
		if hasNetem {
			t.Skip("this kernel has sch_netem: the refusal cannot be seen here")
		}
		want := "host edge-node-1-1, edge-node-1-2, fog-gw-1-1, fog-gw-1-2: kernel "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "has no sch_netem, which delay and loss need") ||
			!strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "--network rates-only") {
			t.Fatalf("error %v, want one naming every host, sch_netem and --network rates-only\n%s", err, log.String())
		}
		for name, h := range hosts {
			if s := tcState(t, h); strings.Contains(s, "htb") {
				t.Errorf("%s shaped: %s", name, s)
			}
			if _, err := exec.Command("ip", "netns", "exec", h.Namespace, "test", "-e", "/opt/launched").Output(); err == nil {
				t.Errorf("%s: launch ran", name)
			}
		}
		var rec results.Record
		json.Unmarshal([]byte(readFile(t, filepath.Join(runs[0], "run.json"))), &rec)
		for _, s := range rec.Steps {
			if s.Name == "launch" || s.Name == "prepare" {
				t.Errorf("run.json has a %s step", s.Name)
			}
		}
	})
	t.Run("delay and loss applied", func(t *testing.T) {
		if !hasNetem {
			t.Skip("kernel has no sch_netem: delay and loss not applied; checked the refusal only")
		}
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, log.String())
		}
		var checks []*emulation.Check
		json.Unmarshal([]byte(readFile(t, filepath.Join(runs[0], "network-validate", "summary.json"))), &checks)
		if len(checks) != 1 || !checks[0].RTTOK || checks[0].ExpectedRTT < 40 {
			t.Fatalf("validation: %+v", checks)
		}
		t.Logf("e2c's validation: %s", checks[0].Summary())
	})
}

// kernelHasNetem tells whether this machine's kernel can apply delay and
// loss.
func kernelHasNetem(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("sh", "-c", netem.PreflightScript).Output()
	if err != nil {
		t.Fatal(err)
	}
	return netem.ParsePreflight(string(out)).Netem
}

// TestNetnsNetworkStep runs the step commands: e2c layers-services, then
// e2c network, which leaves the emulation on the kept hosts (validated
// into the run folder) until e2c destroy --network removes exactly it.
func TestNetnsNetworkStep(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.4.0/24", "layers:\n- name: fog\n  services: [{name: gw}]\n- name: edge\n  services: [{name: node}]\n", touchWorkflow)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: edge, dst: fog, rate: 20mbit, symmetric: true}\n"), 0o644)
	var out strings.Builder
	run, err := layersServices(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out})
	if err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	if err := network(context.Background(), dir, &out, ""); err != nil {
		t.Fatalf("network: %v\n%s", err, out.String())
	}
	st, _ := LoadState(dir)
	if len(st.Network) != 2 || st.Network["fog-gw-1-1"].Devices[0] != "eth0" {
		t.Fatalf("state records %v", st.Network)
	}
	hosts := lab(t, dir)
	for _, h := range hosts {
		if s := tcState(t, h); !strings.Contains(s, "qdisc htb 1: root") {
			t.Errorf("%s after e2c network: %s", h.Name, s)
		}
	}
	if s := readFile(t, filepath.Join(run, "network-validate", "edge-fog-symmetric", "summary.txt")); !strings.Contains(s, "within tolerance") {
		t.Errorf("summary: %s", s)
	}
	// A qdisc e2c did not install, on a device it did not shape, stays.
	fog := hosts["fog-gw-1-1"]
	if out, err := exec.Command("ip", "netns", "exec", fog.Namespace, "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := destroyNetwork(context.Background(), dir, &out); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if s := tcState(t, h); strings.Contains(s, "htb") {
			t.Errorf("%s after destroy --network: %s", h.Name, s)
		}
	}
	if out, _ := exec.Command("ip", "netns", "exec", fog.Namespace, "tc", "qdisc", "show", "dev", "lo").Output(); !strings.Contains(string(out), "htb") {
		t.Errorf("destroy --network removed a qdisc e2c did not install: %s", out)
	}
	if err := destroyNetwork(context.Background(), dir, &out); err != nil || !strings.Contains(out.String(), "no network emulation to remove") {
		t.Errorf("second destroy --network: %v", err)
	}
}

// TestNetnsNetworkModes: --network rates-only applies the rates alone (so
// a kernel without sch_netem runs the scenario) and --network off nothing;
// both say so in the run's output and record in run.json what was left out.
func TestNetnsNetworkModes(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.12.0/24", fourHosts, touchWorkflow)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte(`networks:
- {src: fog, dst: edge, delay: 20ms, rate: 10mbit, loss: 1%}
- {src: edge, dst: fog, delay: 5ms}
`), 0o644)
	for _, c := range []struct {
		mode    string
		leftOut []string
		fog     string // in the fog hosts' tc state
	}{
		{NetworkRatesOnly, []string{"network.yaml:2:3 (fog -> edge): delay 20ms, loss 1%", "network.yaml:3:3 (edge -> fog): delay 5ms, so all: it has no rate"}, "qdisc htb 1: root"},
		{NetworkOff, []string{"network.yaml:2:3 (fog -> edge): all", "network.yaml:3:3 (edge -> fog): all"}, ""},
	} {
		t.Run(c.mode, func(t *testing.T) {
			var out strings.Builder
			runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Network: c.mode,
				KeepNetwork: true, SkipNetworkCheck: true, Agent: testAgent, Out: &out}, ReleaseIfInterrupted)
			if err != nil {
				t.Fatalf("deploy: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "network: --network "+c.mode+": left out "+c.leftOut[0]) {
				t.Errorf("the run does not say what it left out:\n%s", out.String())
			}
			rec, _ := readRecord(runs[0])
			if rec.Network == nil || rec.Network.Mode != c.mode || strings.Join(rec.Network.LeftOut, "|") != strings.Join(c.leftOut, "|") {
				t.Errorf("run.json network: %+v", rec.Network)
			}
			for name, h := range lab(t, dir) {
				s := tcState(t, h)
				if strings.Contains(s, "netem") || strings.HasPrefix(name, "edge") && strings.Contains(s, "htb") ||
					strings.HasPrefix(name, "fog") && c.fog != "" && !strings.Contains(s, c.fog) || c.fog == "" && strings.Contains(s, "htb") {
					t.Errorf("%s: %s", name, s)
				}
			}
			if err := destroyNetwork(context.Background(), dir, &out); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNetnsStepNetworkRecord: each e2c network step records in run.json
// what it left out of network.yaml, and a full one that nothing was.
func TestNetnsStepNetworkRecord(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.14.0/24", "layers:\n- name: fog\n  services: [{name: gw}]\n- name: edge\n  services: [{name: node}]\n", touchWorkflow)
	os.WriteFile(filepath.Join(dir, "network.yaml"), []byte("networks:\n- {src: fog, dst: edge, rate: 10mbit}\n"), 0o644)
	ctx := context.Background()
	var out strings.Builder
	run, err := layersServices(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out})
	if err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	for _, mode := range []string{NetworkOff, NetworkFull} {
		if err := network(ctx, dir, &out, mode); err != nil {
			t.Fatalf("network %q: %v\n%s", mode, err, out.String())
		}
		rec, err := readRecord(run)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Network != nil; got != (mode == NetworkOff) {
			t.Errorf("after e2c network --network %q, run.json network: %+v", mode, rec.Network)
		}
	}
}
