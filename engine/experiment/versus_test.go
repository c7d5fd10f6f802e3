package experiment

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/ansiblediff/ansible"
	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/schema"
)

// The workload of the comparison: a debug; a 2 MB folder of 20 files
// copied; a background writer started detached; a 10-item loop of small
// shell tasks; a wait for the writer's file; a fetch of it; a clean-up.
const versusWorkflow = `
- hosts: all
  launch:
  - debug: {msg: "start {{ inventory_hostname }}"}
  - copy: {src: "{{ artifacts_dir }}/payload/", dest: /opt/payload/}
  - shell: for i in $(seq 1 10); do echo $i >> /tmp/writer.tmp; sleep 0.1; done; mv /tmp/writer.tmp /tmp/writer.txt
    async: 60
    poll: 0
  - shell: echo {{ item }} > /tmp/loop-{{ item }}
    loop: "{{ range(1, 11)|list }}"
  - wait_for: {path: /tmp/writer.txt, timeout: 60}
  - fetch: {src: /tmp/writer.txt, dest: "{{ working_dir }}/fetched/"}
  - shell: rm -rf /opt/payload /tmp/writer.txt /tmp/loop-*
`

const versusPlaybook = `
- hosts: all
  gather_facts: no
  tasks:
  - debug: {msg: "start {{ inventory_hostname }}"}
  - copy: {src: "ARTIFACTS/payload/", dest: /opt/payload/}
  - shell: for i in $(seq 1 10); do echo $i >> /tmp/writer.tmp; sleep 0.1; done; mv /tmp/writer.tmp /tmp/writer.txt
    async: 60
    poll: 0
  - shell: echo {{ item }} > /tmp/loop-{{ item }}
    loop: "{{ range(1, 11)|list }}"
  - wait_for: {path: /tmp/writer.txt, timeout: 60}
  - fetch: {src: /tmp/writer.txt, dest: "FETCHED/"}
  - shell: rm -rf /opt/payload /tmp/writer.txt /tmp/loop-*
`

// versusScript does the same with plain OpenSSH: one multiplexed
// connection per host (ControlMaster), every host in parallel.
const versusScript = `set -e
ssh_() { ssh -F none -o ControlMaster=auto -o ControlPath="$TMP/cm-%h" -o ControlPersist=60 \
  -o UserKnownHostsFile="$KNOWN" -o StrictHostKeyChecking=yes -o BatchMode=yes -i "$KEY" "$@"; }
one() {
  h=$1
  ssh_ root@$h "echo start $h" >/dev/null
  tar -C "$ARTIFACTS" -cf - payload | ssh_ root@$h "mkdir -p /opt && tar -C /opt -xf -"
  ssh_ root@$h 'nohup sh -c "for i in \$(seq 1 10); do echo \$i >> /tmp/writer.tmp; sleep 0.1; done; mv /tmp/writer.tmp /tmp/writer.txt" >/dev/null 2>&1 </dev/null &'
  for i in 1 2 3 4 5 6 7 8 9 10; do ssh_ root@$h "echo $i > /tmp/loop-$i"; done
  ssh_ root@$h 'while [ ! -f /tmp/writer.txt ]; do sleep 0.1; done'
  mkdir -p "$TMP/fetched/$h" && ssh_ root@$h cat /tmp/writer.txt > "$TMP/fetched/$h/writer.txt"
  ssh_ root@$h 'rm -rf /opt/payload /tmp/writer.txt /tmp/loop-*'
}
for h in $HOSTS; do one $h & done
fail=0; for j in $(jobs -p); do wait $j || fail=1; done
for h in $HOSTS; do ssh_ -O exit root@$h 2>/dev/null || true; done
exit $fail
`

// BenchmarkVersusAnsible compares e2c with tuned Ansible and with plain
// OpenSSH on the same emulated hosts (run as root: make bench-ansible).
func BenchmarkVersusAnsible(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	if err := ansible.Available(); err != nil {
		b.Skip(err)
	}
	for _, n := range []int{8, 32, 64} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { versus(b, n) })
	}
}

func versus(b *testing.B, n int) {
	root := b.TempDir()
	artifacts := filepath.Join(root, "artifacts")
	payload := filepath.Join(artifacts, "payload")
	os.MkdirAll(payload, 0o755)
	chunk := make([]byte, 100<<10)
	for i := range 20 {
		for j := range chunk {
			chunk[j] = byte(i*31 + j)
		}
		os.WriteFile(filepath.Join(payload, fmt.Sprintf("f%02d.bin", i)), chunk, 0o644)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("edge-node-1-%d", i+1)
	}
	lab, err := netns.Create(context.Background(), netns.Options{Name: fmt.Sprintf("versus-%d-%s", n, root),
		Hosts: names, Subnet: netip.MustParsePrefix("10.233.0.0/16"), StateDir: filepath.Join(root, "lab")})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Destroy(context.Background())
	var addrs []string
	endpoints := map[string]transport.Endpoint{}
	for _, h := range lab.Hosts() {
		addrs = append(addrs, h.Address4.String())
		endpoints[h.Name] = transport.Endpoint{Host: h.Address4.String(), Port: 22, User: "root",
			KeyFiles: []string{lab.KeyFile()}, HostKeys: transport.Strict, KnownHosts: lab.KnownHostsFile()}
	}

	scenarioDir := filepath.Join(root, "scenario")
	os.MkdirAll(scenarioDir, 0o755)
	os.WriteFile(filepath.Join(scenarioDir, schema.LayersServicesFile), []byte(fmt.Sprintf(
		"environment: {netns: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: %d}]\n", n)), 0o644)
	os.WriteFile(filepath.Join(scenarioDir, schema.WorkflowFile), []byte(versusWorkflow), 0o644)
	playbook := filepath.Join(root, "playbook.yaml")
	os.WriteFile(playbook, []byte(strings.NewReplacer("ARTIFACTS", artifacts, "FETCHED", filepath.Join(root, "ansible-fetched")).Replace(versusPlaybook)), 0o644)
	tuned, err := ansible.Setup(filepath.Join(root, "ansible"), lab, ansible.Options{StdoutCallback: "minimal"})
	if err != nil {
		b.Fatal(err)
	}
	defer tuned.Close()

	var e2c, ansibleTook, openssh time.Duration
	var peak uint64
	for b.Loop() {
		// e2c: plan and run, with fresh connections.
		start := time.Now()
		stop := sampleHeap(&peak)
		sc, err := schema.Load(scenarioDir)
		if err != nil {
			b.Fatal(err)
		}
		machines := make([][]plan.Machine, 1)
		for _, h := range lab.Hosts() {
			machines[0] = append(machines[0], plan.Machine{Name: h.Name, Address: h.Address4.String(), Address4: h.Address4.String()})
		}
		p, err := plan.Build(sc, servicedef.New(nil), machines, plan.Options{ScenarioDir: scenarioDir, ArtifactsDir: artifacts, RunDir: filepath.Join(root, "run"), RepeatCount: 1})
		if err != nil {
			b.Fatal(err)
		}
		pool := transport.NewPool(transport.PoolOptions{SSHConfig: "none"})
		ex := execute.New(p, func(ctx context.Context, host string) (transport.Runner, error) {
			return pool.Runner(ctx, endpoints[host])
		}, execute.Options{Output: tracing{os.Getenv("E2C_VERSUS_TRACE") != ""}})
		if _, err := ex.Phase(context.Background(), "launch"); err != nil {
			b.Fatal(err)
		}
		pool.Close()
		e2c += time.Since(start)
		stop()
		// In launch, working_dir is the artifacts folder.
		if got, _ := filepath.Glob(filepath.Join(artifacts, "fetched", "*", "tmp", "writer.txt")); len(got) != n {
			b.Fatalf("e2c fetched %d files", len(got))
		}
		os.RemoveAll(filepath.Join(artifacts, "fetched"))

		start = time.Now()
		if out, err := tuned.Playbook(context.Background(), playbook, nil, nil); err != nil {
			b.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		ansibleTook += time.Since(start)

		start = time.Now()
		cmd := exec.Command("bash", "-c", versusScript)
		sshTmp := filepath.Join(root, "ssh")
		os.MkdirAll(sshTmp, 0o755)
		cmd.Env = append(os.Environ(), "HOSTS="+strings.Join(addrs, " "), "KEY="+lab.KeyFile(), "KNOWN="+lab.KnownHostsFile(),
			"ARTIFACTS="+artifacts, "TMP="+sshTmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("openssh script: %v\n%s", err, out)
		}
		openssh += time.Since(start)
	}
	runs := float64(b.N)
	b.ReportMetric(e2c.Seconds()/runs, "e2c-s")
	b.ReportMetric(ansibleTook.Seconds()/runs, "ansible-s")
	b.ReportMetric(openssh.Seconds()/runs, "openssh-s")
	b.ReportMetric(ansibleTook.Seconds()/e2c.Seconds(), "ansible/e2c")
	b.ReportMetric(openssh.Seconds()/e2c.Seconds(), "openssh/e2c")
	b.ReportMetric(float64(peak)/(1<<20), "e2c-peak-heap-MB")
}

// sampleHeap records the largest heap in use until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for !done.Load() {
			runtime.ReadMemStats(&m)
			*peak = max(*peak, m.HeapInuse)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}

// tracing prints output lines with their time, when tracing.
type tracing struct{ on bool }

func (t tracing) Write(p []byte) (int, error) {
	if t.on {
		fmt.Printf("%s %s", time.Now().Format("15:04:05.000"), p)
	}
	return len(p), nil
}
