package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// scenario writes a scenario on the netns provider into a temporary folder.
func scenario(t *testing.T, subnet, layers, workflow string) (dir, artifacts string) {
	t.Helper()
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	dir, artifacts = filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	files := map[string]string{
		filepath.Join(dir, "layers_services.yaml"): "environment:\n  job_name: e2e\n  netns: {subnet: " + subnet + "}\n" + layers,
		filepath.Join(dir, "workflow.yaml"):        workflow,
		filepath.Join(artifacts, "data", "a.txt"):  "A",
		filepath.Join(artifacts, "data", "b.txt"):  "B",
		filepath.Join(artifacts, "conf.tmpl"):      "host {{ inventory_hostname }} run {{ current_repeat }} of {{ repeat_count }} peer {{ peer.url }}\n",
	}
	for name, text := range files {
		os.MkdirAll(filepath.Dir(name), 0o755)
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	return dir, artifacts
}

const eightHosts = `layers:
- name: fog
  services: [{name: gw, quantity: 2, repeat: 1}]
- name: edge
  services: [{name: node, quantity: 4}]
`

// TestNetnsEndToEnd runs every module and keyword on 8 emulated hosts with
// real sshd, three times, and checks every fetched file.
func TestNetnsEndToEnd(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.0.0/24", eightHosts, `
- hosts: all
  depends_on: {service_selector: "fog.*", grouping: round_robin, prefix: peer}
  prepare:
  - copy: {src: "{{ artifacts_dir }}/data/", dest: /opt/data/}
  - copy: {src: "{{ artifacts_dir }}/data", dest: /opt/tree/}
  - template: {src: conf.tmpl, dest: /opt/conf.txt}
  - shell: rm -f /opt/items.txt /tmp/bg.txt
  launch:
  - shell: sleep 0.3; hostname > /tmp/bg.txt; sleep 60
    async: 120
    poll: 0
  - shell: echo "{{ item }}" >> /opt/items.txt
    loop: "{{ range(1, 4)|list }}"
  - command: cat /opt/data/a.txt /opt/tree/data/b.txt
    register: a
  - shell: echo skipped > /opt/skipped.txt
    when: a.stdout != "AB"
  - shell: echo ran > /opt/when.txt
    when: a.stdout == "AB"
  - wait_for: {path: /tmp/bg.txt, timeout: 10}
  finalize:
  - fetch: {src: "/opt/{{ item }}", dest: "{{ working_dir }}/r/"}
    loop: [conf.txt, items.txt, when.txt]
  - fetch: {src: /tmp/bg.txt, dest: "{{ working_dir }}/bg/{{ inventory_hostname }}.txt", flat: yes}
`)
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 2, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if len(runs) != 3 {
		t.Fatalf("runs = %v", runs)
	}
	hosts := []string{"fog-gw-1-1", "fog-gw-1-2", "fog-gw-2-1", "fog-gw-2-2", "edge-node-1-1", "edge-node-1-2", "edge-node-1-3", "edge-node-1-4"}
	for r, run := range runs {
		for _, h := range hosts {
			conf := readFile(t, filepath.Join(run, "r", h, "opt", "conf.txt"))
			if !strings.HasPrefix(conf, fmt.Sprintf("host %s run %d of 3 peer 10.232.0.", h, r)) {
				t.Errorf("run %d %s: conf.txt = %q", r, h, conf)
			}
			if got := readFile(t, filepath.Join(run, "r", h, "opt", "items.txt")); got != "1\n2\n3\n" {
				t.Errorf("run %d %s: items.txt = %q", r, h, got)
			}
			if got := readFile(t, filepath.Join(run, "r", h, "opt", "when.txt")); got != "ran\n" {
				t.Errorf("run %d %s: when.txt = %q", r, h, got)
			}
			if got := readFile(t, filepath.Join(run, "bg", h+".txt")); got != h+"\n" {
				t.Errorf("run %d %s: the background job wrote %q", r, h, got)
			}
		}
		if _, err := os.Stat(filepath.Join(run, "r", hosts[0], "opt", "skipped.txt")); err == nil {
			t.Errorf("run %d: a task whose when was false ran", r)
		}
	}
}

// TestNetnsHostLost kills one host's sshd in the middle of a phase: that
// host fails alone, the error names it, and every other host's results are
// fetched.
func TestNetnsHostLost(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.1.0/24", eightHosts, `
- hosts: all
  launch:
  - shell: touch /opt/started; sleep 3; echo done > /opt/done.txt
  finalize:
  - fetch: {src: /opt/done.txt, dest: "{{ working_dir }}/r/"}
`)
	victim := "edge-node-1-2"
	go func() {
		// Wait for the victim's command to start, then cut it off.
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			st, err := LoadState(dir)
			if err != nil || st.Reservations["netns"] == nil {
				continue
			}
			var lab netns.Lab
			if json.Unmarshal(st.Reservations["netns"].State, &lab) != nil {
				continue
			}
			if _, err := os.Stat(filepath.Join(lab.StateDir(), "hosts", victim, "opt", "started")); err != nil {
				continue
			}
			for _, h := range lab.Hosts() {
				if h.Name == victim {
					pids, _ := exec.Command("ip", "netns", "pids", h.Namespace).Output()
					for _, pid := range strings.Fields(string(pids)) {
						exec.Command("kill", "-9", pid).Run()
					}
				}
			}
			return
		}
	}()
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release)
	if err == nil {
		t.Fatalf("no error\n%s", out.String())
	}
	if !strings.Contains(err.Error(), victim+": launch task 1") || strings.Count(err.Error(), ": launch task") != 1 {
		t.Errorf("error should name %s alone:\n%v", victim, err)
	}
	if len(runs) != 1 {
		t.Fatalf("runs = %v", runs)
	}
	for _, h := range []string{"fog-gw-1-1", "fog-gw-1-2", "fog-gw-2-1", "fog-gw-2-2", "edge-node-1-1", "edge-node-1-3", "edge-node-1-4"} {
		if got := readFile(t, filepath.Join(runs[0], "r", h, "opt", "done.txt")); got != "done\n" {
			t.Errorf("%s: done.txt = %q", h, got)
		}
	}
	var rec results.Record
	json.Unmarshal([]byte(readFile(t, filepath.Join(runs[0], "run.json"))), &rec)
	if rec.Status != results.Failed || !strings.Contains(rec.Error, victim) {
		t.Errorf("run.json: status %s, error %q", rec.Status, rec.Error)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Error(err)
	}
	return string(data)
}

// TestNetnsLinkCutDuringFetch cuts a host's link (its eth0 down) while
// finalize fetches from it: the host is declared lost within 20 s, not
// after minutes of TCP retransmissions, its error names the task, and the
// other host's file is fetched.
func TestNetnsLinkCutDuringFetch(t *testing.T) {
	victim := "edge-node-1-2"
	dir, artifacts := scenario(t, "10.232.11.0/24", "layers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n", `
- hosts: all
  launch:
  - shell: head -c 2000000 /dev/urandom > /opt/big.bin
  # The victim sends at 1 mbit/s: its fetch takes 16 s, long enough to be cut.
  - shell: tc qdisc add dev eth0 root tbf rate 1mbit burst 32kbit latency 400ms
    when: inventory_hostname == "`+victim+`"
  finalize:
  - fetch: {src: /opt/big.bin, dest: "{{ working_dir }}/r/"}
`)
	var cut time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			st, err := LoadState(dir)
			if err != nil || st.LastRun == "" || st.Reservations["netns"] == nil || st.Reservations["netns"].Incomplete {
				continue
			}
			// A quarter of the file in, 4 s of data flow: the connection
			// is alive under load when its link goes.
			m, _ := filepath.Glob(filepath.Join(st.LastRun, "r", victim, "opt", ".big.bin.e2c-*"))
			if fi, err := os.Stat(strings.Join(m, "")); len(m) != 1 || err != nil || fi.Size() < 500000 {
				continue
			}
			var l netns.Lab
			json.Unmarshal(st.Reservations["netns"].State, &l)
			ns := ""
			for _, h := range l.Hosts() {
				if h.Name == victim {
					ns = h.Namespace
				}
			}
			cut = time.Now()
			if out, err := exec.Command("ip", "-n", ns, "link", "set", "eth0", "down").CombinedOutput(); err != nil {
				t.Errorf("cutting the link: %v %s", err, out)
			}
			return
		}
	}()
	var out syncBuffer // JSON lines, with their time
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out, JSON: true}, Release)
	<-done
	if cut.IsZero() {
		t.Fatalf("the fetch was never seen in progress\n%s", out.String())
	}
	// The victim fails because of the cut, not before it.
	var failed time.Time
	for _, l := range strings.Split(out.String(), "\n") {
		var e struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal([]byte(l), &e) == nil && strings.Contains(e.Msg, "finalize all:") && strings.Contains(e.Msg, "1 failed") {
			failed = e.Time
			break
		}
	}
	if !failed.After(cut) {
		t.Errorf("the victim failed at %s, its link was cut at %s: want it lost after the cut\n%s", failed.Format(time.StampMilli), cut.Format(time.StampMilli), out.String())
	}
	if err == nil || !strings.Contains(err.Error(), victim+": finalize task 1 (fetch: ") || strings.Count(err.Error(), ": finalize task") != 1 {
		t.Errorf("error should name %s's fetch alone: %v", victim, err)
	}
	rec, rerr := readRecord(runs[0])
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, s := range rec.Steps {
		if s.Name == "finalize" && s.End != nil {
			took := s.End.Sub(cut)
			t.Logf("the cut host was declared lost %s after its link went down", took.Round(100*time.Millisecond))
			// Keepalives (every 4 s, 3 missed) declare it lost in 12-16 s;
			// the bound leaves room for a loaded machine while catching the
			// 73 s of TCP's own timeouts.
			if took > 40*time.Second {
				t.Errorf("declared lost %s after the cut, want well within the 73 s of TCP's own timeouts", took.Round(time.Second))
			}
		}
	}
	if got := readFile(t, filepath.Join(runs[0], "r", "edge-node-1-1", "opt", "big.bin")); len(got) != 2000000 {
		t.Errorf("the healthy host's file: %d bytes", len(got))
	}
}

// TestNetnsSlowFetch fetches a file that takes 19 s to come over a host's
// link shaped to 128 kbit/s: the keepalive replies wait behind the data
// sshd and the kernel have queued (some 300 KB, more than the 12 s of
// three keepalive periods at that rate), yet the connection lives, as data
// keeps arriving.
func TestNetnsSlowFetch(t *testing.T) {
	dir, artifacts := scenario(t, "10.232.13.0/24", "layers:\n- name: edge\n  services: [{name: node, quantity: 1}]\n", `
- hosts: all
  launch:
  - shell: head -c 300000 /dev/urandom > /opt/big.bin
  - shell: tc qdisc add dev eth0 root tbf rate 128kbit burst 32kbit latency 400ms
  finalize:
  - fetch: {src: /opt/big.bin, dest: "{{ working_dir }}/big.bin", flat: yes}
`)
	var out strings.Builder
	start := time.Now()
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	t.Logf("deploy with a 300 KB fetch at 128 kbit/s: %s", time.Since(start).Round(100*time.Millisecond))
	if fi, err := os.Stat(filepath.Join(runs[0], "big.bin")); err != nil || fi.Size() != 300000 {
		t.Errorf("the fetched file: %v %v", fi, err)
	}
}

// TestNetnsInterruptKeepsUnreachableJobs: an interrupted run stops the
// background jobs it started, and keeps in the state those of a host it
// cannot reach any more (its sshd gone, its job still running), so that
// e2c destroy can stop them later.
func TestNetnsInterruptKeepsUnreachableJobs(t *testing.T) {
	victim := "edge-node-1-2"
	dir, artifacts := scenario(t, "10.232.15.0/24", "layers:\n- name: edge\n  services: [{name: node, quantity: 2}]\n",
		"- hosts: all\n  launch:\n  - {shell: sleep 300, async: 600, poll: 0}\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	go func() {
		defer cancel()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if !strings.Contains(out.String(), "WAIT") {
				continue
			}
			st, err := LoadState(dir)
			if err != nil {
				continue
			}
			var l netns.Lab
			json.Unmarshal(st.Reservations["netns"].State, &l)
			for _, h := range l.Hosts() {
				if h.Name != victim {
					continue
				}
				pids, _ := exec.Command("ip", "netns", "pids", h.Namespace).Output()
				for _, pid := range strings.Fields(string(pids)) {
					if cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline"); strings.Contains(string(cmd), "sshd") {
						exec.Command("kill", "-9", pid).Run()
					}
				}
			}
			return
		}
	}()
	_, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: time.Minute, Out: &out}, Keep)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "stopping background jobs: "+victim+": ") {
		t.Errorf("deploy: %v, want interrupted, and the victim's jobs not stopped\n%s", err, out.String())
	}
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if jobs := st.jobs(); len(jobs) != 1 || len(jobs[victim]) != 1 {
		t.Errorf("the state keeps %v, want the unreachable %s's job alone", jobs, victim)
	}
}

// staticLab creates a netns lab of the named hosts on subnet, for a
// scenario to reach as static hosts (staticEnv), and destroys it at the
// end of t; without netns, t is skipped.
func staticLab(t *testing.T, subnet string, names ...string) *netns.Lab {
	t.Helper()
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	lab, err := netns.Create(context.Background(), netns.Options{Name: "static-" + t.Name(), Hosts: names,
		Subnet: netip.MustParsePrefix(subnet), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Destroy(context.Background()) })
	return lab
}

// staticEnv is the static testbed's line of layers_services.yaml's
// environment, reaching lab's hosts as hosts says (YAML flow maps such as
// {address: 10.0.0.1}), or every host of lab by its address if hosts is
// empty.
func staticEnv(lab *netns.Lab, hosts ...string) string {
	if len(hosts) == 0 {
		for _, h := range lab.Hosts() {
			hosts = append(hosts, fmt.Sprintf("{address: %s}", h.Address4))
		}
	}
	return fmt.Sprintf("  static: {user: root, keyfile: %s, host_keys: accept-new, hosts: [%s]}\n", lab.KeyFile(), strings.Join(hosts, ", "))
}
