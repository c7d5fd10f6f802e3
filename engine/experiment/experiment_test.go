package experiment

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// copyTree copies a scenario so that run folders land in a temporary one.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "-rL", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// TestQuickstartLocal runs the README's first command: the quickstart on
// the local provider, twice, and checks every run folder for the metrics of
// every producer, gateway and the sink.
func TestQuickstartLocal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("the quickstart builds its application with go, not found")
		}
	}
	dir := copyTree(t, "../../examples/quickstart")
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{
		ScenarioDir: dir, ArtifactsDir: filepath.Join(dir, "artifacts"),
		Repeat: 1, Duration: 3 * time.Second, Out: &out, Version: "test"}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if len(runs) != 2 {
		t.Fatalf("runs = %v", runs)
	}
	for i, run := range runs {
		var rec results.Record
		data, err := os.ReadFile(filepath.Join(run, "run.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Status != results.Succeeded || rec.Repeat != i || rec.RepeatCount != 2 || len(rec.Hosts) != 7 || rec.End == nil {
			t.Errorf("run %d record: status %s repeat %d/%d hosts %d", i, rec.Status, rec.Repeat, rec.RepeatCount, len(rec.Hosts))
		}
		var steps []string
		for _, s := range rec.Steps {
			steps = append(steps, s.Name+":"+string(s.Status))
			// The local provider's hosts share the loopback: network.yaml
			// is not applied, and the run says so.
			if s.Name == "network" && !strings.Contains(s.Note, "not applied: hosts cloud-sink-1-1, ") {
				t.Errorf("run %d: network note %q", i, s.Note)
			}
		}
		want := "services:succeeded network:succeeded prepare:succeeded launch:succeeded wait:succeeded finalize:succeeded"
		if i == 0 {
			want = "reserve:succeeded " + want
		}
		if got := strings.Join(steps, " "); got != want {
			t.Errorf("run %d steps = %s", i, got)
		}
		// What it takes to run it again: the scenario as read, the
		// artifacts' manifest, the testbed's settings, the hosts' facts.
		if got := readFile(t, filepath.Join(run, "scenario", "network.yaml")); got != readFile(t, filepath.Join(dir, "network.yaml")) {
			t.Errorf("run %d: scenario/network.yaml differs from the scenario's", i)
		}
		if m := readFile(t, filepath.Join(run, "artifacts.sha256")); !strings.Contains(m, "  ../artifacts/app/main.go\n") || !strings.Contains(m, "  ../artifacts/data/rides.csv\n") {
			t.Errorf("run %d: artifacts.sha256:\n%s", i, m)
		}
		if _, ok := rec.Testbeds["local"]; !ok || rec.Hosts[0].Facts.Arch == "" || rec.Hosts[0].Facts.MemKB == 0 || rec.Hosts[0].Facts.Kernel == "" {
			t.Errorf("run %d: testbeds %v, host facts %+v", i, rec.Testbeds, rec.Hosts[0].Facts)
		}
		files := []string{"e2c.log", "plan.json", "layers_services-validate.yaml", "workflow-validate.out",
			"experiment-results/sink/latency.csv", "experiment-results/sink/throughput.csv"}
		for p := 1; p <= 4; p++ {
			files = append(files, "experiment-results/producers/edge-producer-"+string(rune('0'+p))+"-1/sent.csv")
		}
		for g := 1; g <= 2; g++ {
			files = append(files, "experiment-results/gateways/fog-gateway-"+string(rune('0'+g))+"-1/gateway.csv")
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(run, f))
			if err != nil {
				t.Errorf("run %d: %v", i, err)
				continue
			}
			if lines := strings.Count(string(data), "\n"); lines < 2 {
				t.Errorf("run %d: %s has %d lines:\n%s", i, f, lines, data)
			}
		}
	}
	// --destroy released the hosts: nothing kept in the state.
	st, err := LoadState(dir)
	if err != nil || len(st.Reservations) != 0 {
		t.Errorf("state after --destroy: %+v, %v", st, err)
	}
}

func TestLockExcludesASecondProcess(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// flock locks belong to open files: a second open in this process
	// conflicts just as another process would.
	if _, err := Lock(dir); err == nil || !strings.Contains(err.Error(), "another e2c process") {
		t.Errorf("second lock: %v", err)
	}
}

// TestQuickstartNetnsTwin runs the quickstart's own files on emulated hosts
// (deploy --testbed netns), no copy of the scenario needed, with its
// network.yaml: in full where the kernel has sch_netem, else its rates only
// (--network rates-only), which the run records.
func TestQuickstartNetnsTwin(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		if _, err := exec.LookPath("go"); err != nil {
			t.Skip("the quickstart builds its application with go, not found")
		}
	}
	dir := copyTree(t, "../../examples/quickstart")
	hasNetem := kernelHasNetem(t)
	mode := NetworkFull
	if !hasNetem {
		mode = NetworkRatesOnly
	}
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: filepath.Join(dir, "artifacts"), Testbed: "netns", Network: mode,
		Duration: 3 * time.Second, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy --testbed netns --network %s: %v\n%s", mode, err, out.String())
	}
	rec, err := readRecord(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if rec.TestbedOverride != "netns" || rec.Hosts[0].Testbed != "netns" || !strings.HasPrefix(rec.Hosts[0].Address, "10.2") {
		t.Errorf("run.json: override %q, hosts %+v", rec.TestbedOverride, rec.Hosts[0])
	}
	for _, s := range rec.Steps {
		if s.Name == "network" && !strings.Contains(s.Note, "constraints applied on 7 hosts") {
			t.Errorf("network step: %q", s.Note)
		}
	}
	if data := readFile(t, filepath.Join(runs[0], "experiment-results", "sink", "latency.csv")); strings.Count(data, "\n") < 2 {
		t.Errorf("latency.csv:\n%s", data)
	}
	if !hasNetem && (rec.Network == nil || len(rec.Network.LeftOut) != 2) {
		t.Errorf("run.json does not record what --network rates-only left out: %+v", rec.Network)
	}
	t.Run("delay and loss applied", func(t *testing.T) {
		if !hasNetem {
			t.Skip("kernel has no sch_netem: delay and loss not applied (--network rates-only); the rates were")
		}
		if rec.Network != nil {
			t.Errorf("run.json network: %+v", rec.Network)
		}
	})
}
