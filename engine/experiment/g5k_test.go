package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/emulation"
	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/g5k"
	"github.com/e2c-dev/e2c/providers/g5k/g5kfake"
	"github.com/e2c-dev/e2c/providers/netns"
)

// g5kTestbed is a fake Grid'5000 API whose parasilo nodes are emulated
// hosts with sshd, one more emulated host playing access.grid5000.fr
// (every node connection goes through it, as from a laptop), and the
// provider pointed at them. It returns the API, the hosts by node name, the
// lab and the providers to deploy with.
func g5kTestbed(t *testing.T, subnet string, n int) (*g5kfake.Server, map[string]netns.Host, *netns.Lab, providers.Set) {
	t.Helper()
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	var nodes []string
	for i := 1; i <= n; i++ {
		nodes = append(nodes, fmt.Sprintf("parasilo-%d", i))
	}
	lab, err := netns.Create(context.Background(), netns.Options{Name: "g5k-" + t.Name(), Hosts: append(slices.Clone(nodes), "access"),
		Subnet: netip.MustParsePrefix(subnet), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Destroy(context.Background()) })
	byName := map[string]netns.Host{}
	for _, h := range lab.Hosts() {
		byName[h.Name] = h
	}
	api := g5kfake.New(t, g5kfake.Config{User: "alice", Password: "s3cret",
		Clusters:     []g5kfake.Cluster{{Site: "rennes", Name: "parasilo", Nodes: nodes}},
		Environments: []string{"debian11-x64-big", "debian10-x64-big"},
		Waiting:      50 * time.Millisecond, Launching: 20 * time.Millisecond, Deploying: 50 * time.Millisecond})
	creds := filepath.Join(t.TempDir(), "creds.yaml")
	os.WriteFile(creds, fmt.Appendf(nil, "username: alice\npassword: s3cret\nuri: %s\nverify_ssl: %s\n", api.URL, api.CAFile(t)), 0o600)
	// The nodes' names lead to the emulated hosts; everything else is the
	// provider's own.
	p := &g5k.Provider{Credentials: creds, Records: t.TempDir(), // the record of the jobs scenarios hold
		PollMin: 10 * time.Millisecond, PollMax: 50 * time.Millisecond, DeployPoll: 10 * time.Millisecond}
	reach := func(h netns.Host) transport.Endpoint {
		return transport.Endpoint{Host: h.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()},
			HostKeys: transport.Strict, KnownHosts: lab.KnownHostsFile()}
	}
	p.Reach = func(fqdn string, e transport.Endpoint) (string, transport.Endpoint) {
		short, _, _ := strings.Cut(fqdn, ".")
		h := byName[short]
		if e.User != "root" || e.Jump == nil || e.Jump.Host != g5k.Gateway || e.Jump.User != "alice" {
			t.Errorf("%s: endpoint %+v, want root (deployed) through alice@%s", fqdn, e, g5k.Gateway)
		}
		ep, gw := reach(h), reach(byName["access"])
		ep.Jump = &gw
		return h.Address4.String(), ep
	}
	return api, byName, lab, providers.Set{"g5k": p}
}

// TestG5kEndToEnd runs a whole experiment on the g5k provider against the
// fake Grid'5000 API, whose nodes are real emulated hosts with sshd: the
// reservation, a kadeploy where one node fails once and is deployed again,
// a 503 retried, the services, prepare, launch and finalize with results
// fetched from every node, and the job deleted by --destroy.
func TestG5kEndToEnd(t *testing.T) {
	api, byName, lab, set := g5kTestbed(t, "10.232.6.0/24", 5)
	api.DeployKO("parasilo-2.rennes.grid5000.fr", 1)
	api.FailNext("GET", "/stable/sites/rennes/jobs/", 503, "Service Unavailable", 1)

	dir := filepath.Join(t.TempDir(), "scenario")
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	files := map[string]string{
		filepath.Join(dir, "layers_services.yaml"): `environment:
  job_name: cctv-small
  walltime: "00:30:00"
  g5k: {cluster: parasilo, env_name: debian11-big, key_name: ` + lab.KeyFile() + `.pub, gateway: always}
layers:
- name: cloud
  services: [{name: sink}]
- name: fog
  services: [{name: gateway, repeat: 1}]
- name: edge
  services: [{name: producer, quantity: 2}]
`,
		filepath.Join(dir, "workflow.yaml"): `
- hosts: all
  prepare:
  - copy: {src: "{{ artifacts_dir }}/data.txt", dest: /opt/data.txt}
- hosts: edge.producer.*
  depends_on: {service_selector: fog.gateway.*, grouping: round_robin, prefix: gw}
  launch:
  - shell: echo "{{ inventory_hostname }} sends to {{ gw.url }}" > /opt/out.txt
- hosts: "cloud.*:fog.*"
  launch:
  - shell: hostname > /opt/out.txt
- hosts: all
  finalize:
  - fetch: {src: /opt/out.txt, dest: "{{ working_dir }}/experiment-results/"}
`,
		filepath.Join(artifacts, "data.txt"): "records\n",
	}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(name), 0o755)
		os.WriteFile(name, []byte(text), 0o644)
	}
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, Providers: set, ArtifactsDir: artifacts, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	for _, want := range []string{"g5k: rennes: submitted job 1: {cluster='parasilo'}/nodes=5,walltime=00:30:00",
		"g5k: rennes: job 1 running", "deploying debian11-big on 5 nodes (attempt 1 of 3)", "deploying debian11-big on 1 nodes (attempt 2 of 3)",
		"released the g5k hosts"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Nodes in order: the sink gets parasilo-1, the gateways 2 and 3, the
	// producers 4 and 5.
	want := map[string]string{
		"cloud-sink-1-1":    "parasilo-1\n",
		"fog-gateway-1-1":   "parasilo-2\n",
		"fog-gateway-2-1":   "parasilo-3\n",
		"edge-producer-1-1": "edge-producer-1-1 sends to " + byName["parasilo-2"].Address4.String() + "\n",
		"edge-producer-1-2": "edge-producer-1-2 sends to " + byName["parasilo-3"].Address4.String() + "\n",
	}
	for host, text := range want {
		if got := readFile(t, filepath.Join(runs[0], "experiment-results", host, "opt", "out.txt")); got != text {
			t.Errorf("%s: out.txt = %q, want %q", host, got, text)
		}
	}
	if n := api.Count("POST", "/stable/sites/rennes/jobs"); n != 1 {
		t.Errorf("%d job submissions", n)
	}
	if got := api.DeployedKey("parasilo-1.rennes.grid5000.fr"); !strings.HasPrefix(got, "ssh-ed25519 ") {
		t.Errorf("key sent to kadeploy: %q", got)
	}
	for _, j := range api.Jobs() {
		if !ended(j.State) {
			t.Errorf("job %d %s after --destroy", j.UID, j.State)
		}
	}
}

// TestG5kCCTV runs the published Smart Surveillance scenario on the fake
// Grid'5000 API with its 15 nodes emulated: layers_services.yaml as
// published (but for the key to install), its network.yaml (rates only
// where the kernel has no sch_netem), and the published workflow with
// shell stand-ins for Docker and Java (and the service definitions'
// containers only named). Every gateway's and producer's
// metrics are fetched into the run folder.
func TestG5kCCTV(t *testing.T) {
	api, _, lab, set := g5kTestbed(t, "10.232.7.0/24", 15)
	dir := copyTree(t, "../../examples/cctv")
	layers := readFile(t, filepath.Join(dir, "layers_services.yaml"))
	layers = strings.Replace(layers, "    cluster: parasilo\n", "    cluster: parasilo\n    key_name: "+lab.KeyFile()+".pub\n", 1)
	os.WriteFile(filepath.Join(dir, "layers_services.yaml"), []byte(layers), 0o644)
	workflow, _ := os.ReadFile("testdata/cctv-workflow.yaml")
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), workflow, 0o644)
	// The built-in definitions with their containers only named: the
	// emulated nodes have no Docker (TestContainersEndToEnd starts real ones).
	os.MkdirAll(filepath.Join(dir, "services"), 0o755)
	for _, name := range []string{"flink", "kafka", "mosquitto"} {
		def, _ := os.ReadFile(filepath.Join("testdata", "cctv-services", name+".yaml"))
		os.WriteFile(filepath.Join(dir, "services", name+".yaml"), def, 0o644)
	}
	out, _ := exec.Command("sh", "-c", netem.PreflightScript).Output()
	hasNetem := netem.ParsePreflight(string(out)).Netem
	mode := NetworkFull
	if !hasNetem {
		mode = NetworkRatesOnly
	}
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	for _, f := range []string{"libs/a.jar", "dataset/data-1", "dataset/data-2"} {
		os.MkdirAll(filepath.Dir(filepath.Join(artifacts, f)), 0o755)
		os.WriteFile(filepath.Join(artifacts, f), []byte(f), 0o644)
	}
	var log strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, Providers: set, ArtifactsDir: artifacts, Agent: testAgent, Out: &log, Network: mode}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, log.String())
	}
	t.Run("delay and loss applied", func(t *testing.T) {
		if !hasNetem {
			t.Skip("kernel has no sch_netem: the published network.yaml's delays were not applied (--network rates-only); its rates were")
		}
	})
	if !strings.Contains(log.String(), "g5k: rennes: submitted job 1: {cluster='parasilo'}/nodes=15,walltime=01:30:00") ||
		!strings.Contains(log.String(), "deploying debian10-x64-big on 15 nodes") {
		t.Errorf("reservation:\n%s", log.String())
	}
	results := filepath.Join(runs[0], "experiment-results")
	for m := 1; m <= 4; m++ {
		host := fmt.Sprintf("fog-mosquitto-%d-1", m)
		if got := readFile(t, filepath.Join(results, "gateways", host, "opt", "metrics", "latency")); !strings.Contains(got, ":1883 -> tcp://") {
			t.Errorf("%s latency: %q", host, got)
		}
		readFile(t, filepath.Join(results, "gateways", host, "opt", "metrics", "throughput"))
	}
	for p := 1; p <= 8; p++ {
		host := fmt.Sprintf("edge-producer-%d-1", p)
		for item := 1; item <= 2; item++ {
			got := readFile(t, filepath.Join(results, "producers", host, "opt", fmt.Sprintf("metrics-%d", item), "throughput"))
			if !strings.Contains(got, fmt.Sprintf("producer %d of %s to tcp://", item, host)) {
				t.Errorf("%s producer %d: %q", host, item, got)
			}
		}
	}
	for _, sink := range []string{"in-sink", "out-sink"} {
		if got := readFile(t, filepath.Join(results, "sinks", sink, "experiment-manager-metrics-collector-1-1", "opt", "metrics", sink, "latency")); got == "" {
			t.Errorf("%s: nothing fetched", sink)
		}
	}
	// Both links were measured; without loss, their rates held (RTTs
	// without delay are too small to judge on a loaded machine; with the
	// published loss, one TCP stream's throughput is only informative).
	var checks []*emulation.Check
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(runs[0], "network-validate", "summary.json"))), &checks); err != nil || len(checks) != 2 {
		t.Fatalf("network validation: %v %+v", err, checks)
	}
	for _, c := range checks {
		if c.Error != "" || !hasNetem && (c.ThroughputOK == nil || !*c.ThroughputOK) {
			t.Errorf("network validation of %s: %s", c.Pos, c.Summary())
		}
	}
	for _, j := range api.Jobs() {
		if !ended(j.State) {
			t.Errorf("job %d %s after --destroy", j.UID, j.State)
		}
	}
}

// ended says whether a job was deleted: it is finishing, or in error.
func ended(state string) bool { return state == "finishing" || state == "error" }

// g5kScenario writes a scenario of one deployed node to a new folder
// named name, with job_name when it is not "".
func g5kScenario(t *testing.T, lab *netns.Lab, name, jobName string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	env := "environment:\n"
	if jobName != "" {
		env += "  job_name: " + jobName + "\n"
	}
	files := map[string]string{
		"layers_services.yaml": env + `  walltime: "00:30:00"
  g5k: {cluster: parasilo, env_name: debian11-big, key_name: ` + lab.KeyFile() + `.pub, gateway: always}
layers:
- name: cloud
  services: [{name: server}]
`,
		"workflow.yaml": "- hosts: all\n  launch:\n  - shell: hostname\n",
	}
	for f, text := range files {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644)
	}
	return dir
}

// TestG5kScenariosShareNoJob: two scenarios of one machine never work on
// one job unknowingly. With one job_name, the second is refused before
// kadeploy reinstalls the nodes the first runs on; without job_name each
// has a name of its own, hence a job of its own.
func TestG5kScenariosShareNoJob(t *testing.T) {
	api, _, lab, set := g5kTestbed(t, "10.232.8.0/24", 3)
	artifacts := t.TempDir()
	deployTo := func(dir string, after Hosts) (string, error) {
		var out strings.Builder
		_, err := deploy(context.Background(), Options{ScenarioDir: dir, Providers: set, ArtifactsDir: artifacts, Out: &out}, after)
		return out.String(), err
	}
	first := g5kScenario(t, lab, "first", "shared")
	if out, err := deployTo(first, ReleaseIfInterrupted); err != nil {
		t.Fatalf("first: %v\n%s", err, out)
	}
	second := g5kScenario(t, lab, "second", "shared")
	out, err := deployTo(second, Release)
	if want := "rennes: job 1 is in use by the scenario " + first + " on this machine"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second: %v, want %q\n%s", err, want, out)
	}
	if n := api.Count("POST", "/stable/sites/rennes/deployments"); n != 1 {
		t.Errorf("%d deployments: the second scenario reinstalled the first's node", n)
	}

	unnamed := []string{g5kScenario(t, lab, "third", ""), g5kScenario(t, lab, "fourth", "")}
	for _, dir := range unnamed {
		if out, err := deployTo(dir, ReleaseIfInterrupted); err != nil {
			t.Fatalf("%s: %v\n%s", dir, err, out)
		}
	}
	jobs := api.Jobs()
	if len(jobs) != 3 || jobs[1].Name == jobs[2].Name || !strings.HasPrefix(jobs[1].Name, "e2c-third-") || !strings.HasPrefix(jobs[2].Name, "e2c-fourth-") {
		t.Errorf("jobs %+v", jobs)
	}
	for _, dir := range append(unnamed, first) {
		var out strings.Builder
		if err := destroyWith(context.Background(), dir, &out, set); err != nil {
			t.Errorf("destroy %s: %v\n%s", dir, err, out.String())
		}
	}
	for _, j := range api.Jobs() {
		if !ended(j.State) {
			t.Errorf("job %d %s after destroy", j.UID, j.State)
		}
	}
}

// TestG5kKeptJobGone: hosts kept by an earlier deploy are reused only when
// the API says their job still runs; a job deleted meanwhile is released
// and a new one reserved.
func TestG5kKeptJobGone(t *testing.T) {
	api, _, lab, set := g5kTestbed(t, "10.232.9.0/24", 2)
	dir := g5kScenario(t, lab, "kept", "")
	artifacts := t.TempDir()
	var out strings.Builder
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, Providers: set, ArtifactsDir: artifacts, Out: &out}, ReleaseIfInterrupted); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, out.String())
	}
	api.Kill(1) // oardel on the frontend
	out.Reset()
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, Providers: set, ArtifactsDir: artifacts, Out: &out}, Release); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, out.String())
	}
	// The job is finishing, or already in error.
	if want := regexp.MustCompile(`the kept g5k reservation cannot be reused: rennes: job 1 is (finishing|error), no longer running; OAR's events: FRAG_JOB_REQUEST`); !want.MatchString(out.String()) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if n := api.Count("POST", "/stable/sites/rennes/jobs"); n != 2 {
		t.Errorf("%d submissions, want a new job after the kept one was deleted", n)
	}
}

// TestG5kDestroyAfterInterruptedReserve: a reserve that dies (a second
// Ctrl-C) while its job waits has journaled the job into the scenario's
// state, and e2c destroy deletes it from there. The job is held, so the
// reserve waits for as long as the test needs; the scenario folder, state
// included, is copied as the dead process left it.
func TestG5kDestroyAfterInterruptedReserve(t *testing.T) {
	api, _, lab, set := g5kTestbed(t, "10.232.10.0/24", 1)
	dir := g5kScenario(t, lab, "interrupted", "held")
	api.HoldNext("held")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := deploy(ctx, Options{ScenarioDir: dir, Providers: set, ArtifactsDir: t.TempDir(), Out: io.Discard}, ReleaseIfInterrupted)
		done <- err
	}()
	defer func() { cancel(); <-done }()
	state := filepath.Join(dir, ".e2c", "state.json")
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if data, _ := os.ReadFile(state); strings.Contains(string(data), `"incomplete": true`) && strings.Contains(string(data), `"uid": 1`) {
			break
		}
		if time.Now().After(end) {
			data, _ := os.ReadFile(state)
			t.Fatalf("the job was not journaled into %s:\n%s", state, data)
		}
	}
	left := copyTree(t, dir)
	var out strings.Builder
	if err := destroyWith(context.Background(), left, &out, set); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if j := api.Jobs()[0]; !ended(j.State) || !strings.Contains(out.String(), "g5k: rennes: job 1 deleted") {
		t.Errorf("job 1 %s after destroy:\n%s", j.State, out.String())
	}
}
