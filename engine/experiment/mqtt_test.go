package experiment

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/providers/netns"
)

// TestMQTTExample runs examples/mqtt as the README says, on emulated hosts
// with their own Docker: the built-in Mosquitto in a container on each of
// two gateways (its image from the artifacts, the Debian-built stand-in of
// eclipse-mosquitto), four sensors publishing through them with Debian's
// mosquitto clients, and a sink subscribed to both. Every reading sent is
// received exactly once, with a latency; both brokers' logs are in the run
// folder and show the sensors' connections.
func TestMQTTExample(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skip(err) // the emulated hosts' dockerd
	}
	for _, p := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: no %s (Debian: apt-get install mosquitto-clients)", p)
		}
	}
	archive, _ := dockerdtest.Image(t, "mosquitto")
	dir := copyTree(t, "../../examples/mqtt")
	artifacts := filepath.Join(dir, "artifacts")
	os.MkdirAll(filepath.Join(artifacts, "images"), 0o755)
	dockerdtest.PlaceImage(t, archive, filepath.Join(artifacts, "images", "mosquitto.tar"))
	// Fewer, faster readings than the example's 200 at 20/s.
	wf := filepath.Join(dir, "workflow.yaml")
	text := readFile(t, wf)
	if !strings.Contains(text, "vars: {count: 200, rate: 20}") {
		t.Fatalf("the example's sensor vars changed:\n%s", text)
	}
	writeTestFiles(t, map[string]string{wf: strings.Replace(text, "vars: {count: 200, rate: 20}", "vars: {count: 60, rate: 30}", 1)})

	mode := NetworkFull
	if !kernelHasNetem(t) {
		mode = NetworkRatesOnly
	}
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Network: mode,
		Duration: 2 * time.Second, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	run := runs[0]
	sent := map[string]bool{}
	for _, f := range glob(t, filepath.Join(run, "experiment-results", "sensors", "*", "sent.csv")) {
		for _, r := range readCSV(t, f) {
			sent[r[0]+"/"+r[1]] = true
		}
	}
	if len(sent) != 4*60 {
		t.Errorf("%d readings sent, want 240", len(sent))
	}
	received := readCSV(t, filepath.Join(run, "experiment-results", "sink", "latency.csv"))
	seen := map[string]bool{}
	for _, r := range received { // gateway,sensor,seq,sent_unix,received_unix,latency_ms
		key := r[1] + "/" + r[2]
		if !sent[key] || seen[key] {
			t.Errorf("reading %s received but not sent, or twice", key)
		}
		seen[key] = true
		if ms, err := strconv.ParseFloat(r[5], 64); err != nil || ms <= 0 || ms > 5000 {
			t.Errorf("reading %s: latency %q ms", key, r[5])
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("%d readings received of %d sent", len(seen), len(sent))
	}
	for _, gw := range []string{"fog-mosquitto-1-1", "fog-mosquitto-1-2"} {
		log := readFile(t, filepath.Join(run, "services", gw, "mosquitto.log"))
		if !strings.Contains(log, "New client connected") || !strings.Contains(log, "sensor-") {
			t.Errorf("%s's broker log shows no sensor:\n%s", gw, log)
		}
	}
}

// readCSV reads a CSV file's records after its header.
func readCSV(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rs) == 0 {
		t.Fatalf("%s: %v (%d records)", name, err, len(rs))
	}
	return rs[1:]
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("%s: no file (%v)", pattern, err)
	}
	return m
}
