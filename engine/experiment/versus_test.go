package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/ansiblediff/ansible"
	"github.com/e2c-dev/e2c/providers/netns"
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

// versusScript does the same with plain OpenSSH.
var versusScript = opensshScript(`one() {
  h=$1
  ssh_ root@$h "echo start $h" >/dev/null
  tar -C "$ARTIFACTS" -cf - payload | ssh_ root@$h "mkdir -p /opt && tar -C /opt -xf -"
  ssh_ root@$h 'nohup sh -c "for i in \$(seq 1 10); do echo \$i >> /tmp/writer.tmp; sleep 0.1; done; mv /tmp/writer.tmp /tmp/writer.txt" >/dev/null 2>&1 </dev/null &'
  for i in 1 2 3 4 5 6 7 8 9 10; do ssh_ root@$h "echo $i > /tmp/loop-$i"; done
  ssh_ root@$h 'while [ ! -f /tmp/writer.txt ]; do sleep 0.1; done'
  mkdir -p "$TMP/fetched/$h" && ssh_ root@$h cat /tmp/writer.txt > "$TMP/fetched/$h/writer.txt"
  ssh_ root@$h 'rm -rf /opt/payload /tmp/writer.txt /tmp/loop-*'
}`)

// BenchmarkVersusAnsible compares e2c, with the agent and without, with
// tuned Ansible and with plain OpenSSH on the same emulated hosts (run as
// root: make bench-ansible; E2C_BENCH_HOSTS and E2C_BENCH_VARIANTS choose,
// as for BenchmarkTinyCommands).
func BenchmarkVersusAnsible(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	if err := ansible.Available(); err != nil && benchVariant("ansible") {
		b.Skip(err)
	}
	for _, n := range benchHosts(8, 32, 64) {
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
	bl := newBenchLab(b, root, n)
	bl.placeAgent(b)
	scenarioDir := writeScenario(b, root, n, versusWorkflow)
	var tuned *ansible.Runner
	playbook := filepath.Join(root, "playbook.yaml")
	if benchVariant("ansible") {
		if len(bl.labs) > 1 {
			b.Fatal("Ansible runs on one lab: leave it out (E2C_BENCH_VARIANTS)")
		}
		os.WriteFile(playbook, []byte(strings.NewReplacer("ARTIFACTS", artifacts, "FETCHED", filepath.Join(root, "ansible-fetched")).Replace(versusPlaybook)), 0o644)
		var err error
		if tuned, err = ansible.Setup(filepath.Join(root, "ansible"), bl.labs[0], ansible.Options{StdoutCallback: "minimal"}); err != nil {
			b.Fatal(err)
		}
		defer tuned.Close()
	}

	var v variants
	for b.Loop() {
		for _, e := range e2cVariants {
			name, agent := e.name, e.agent
			if !benchVariant(name) {
				continue
			}
			v.self(b, name, 0, func() { bl.e2c(b, scenarioDir, root, agent) })
			// In launch, working_dir is the artifacts folder.
			if got, _ := filepath.Glob(filepath.Join(artifacts, "fetched", "*", "tmp", "writer.txt")); len(got) != n {
				b.Fatalf("%s fetched %d files", name, len(got))
			}
			os.RemoveAll(filepath.Join(artifacts, "fetched"))
		}
		if tuned != nil {
			v.children(b, "ansible", 0, func() {
				if out, err := tuned.Playbook(context.Background(), playbook, nil, nil); err != nil {
					b.Fatalf("ansible-playbook: %v\n%s", err, out)
				}
			})
		}
		if benchVariant("openssh") {
			v.children(b, "openssh", 0, func() { bl.script(b, root, versusScript, artifacts) })
		}
	}
	v.report(b, n, [2]string{"openssh", "e2c-agent"}, [2]string{"ansible", "e2c-agent"},
		[2]string{"openssh", "e2c-ssh"}, [2]string{"ansible", "e2c-ssh"})
}

// sampleHeap records the largest heap in use (MemStats.HeapInuse) until
// stop is called; with E2C_BENCH_HEAP set, it writes a heap profile there
// as the peak grows (at most every second). It reads runtime/metrics, not
// MemStats, whose ReadMemStats stops the world: the instrument's CPU
// would count as e2c's.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		profile, written := os.Getenv("E2C_BENCH_HEAP"), time.Time{}
		for !done.Load() {
			metrics.Read(m)
			inuse := m[0].Value.Uint64() + m[1].Value.Uint64()
			if inuse > *peak && profile != "" && time.Since(written) > time.Second {
				if f, err := os.Create(profile); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
				written = time.Now()
			}
			*peak = max(*peak, inuse)
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
