package experiment

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/schema"
)

// The benchmarks of the agent (issue 15) run e2c in this process, with and
// without the agent, beside a script of multiplexed OpenSSH connections,
// on emulated hosts that share this machine's CPU. Environment:
//
//	E2C_BENCH_HOSTS     host counts, comma-separated (e.g. 1000)
//	E2C_BENCH_VARIANTS  the variants to run, comma-separated, of
//	                    e2c-agent, e2c-ssh, openssh, ansible (default all)

// benchAgentPath is where the benchmarks put the agent on the hosts, away
// from the copies other packages' tests use.
const benchAgentPath = ".cache/e2c-bench/e2c-agent"

// labHosts is the most hosts one lab of a benchmark gets: a bridge holds
// 999 (veth names end in at most three digits).
const labHosts = 500

// e2cVariants are e2c with the agent and without.
var e2cVariants = []struct {
	name  string
	agent func(goarch string) (string, error) // nil: plain SSH
}{{"e2c-agent", DefaultAgent}, {"e2c-ssh", nil}}

// tinyWorkflow runs `true` 100 times one after another on every host.
const tinyWorkflow = `
- hosts: all
  launch:
  - shell: "true"
    loop: "{{ range(100)|list }}"
`

// opensshScript runs one() (defined by body) on every host of $HOSTS in
// parallel, each over one multiplexed OpenSSH connection (ControlMaster).
func opensshScript(body string) string {
	return `set -e
ssh_() { ssh -F none -o ControlMaster=auto -o ControlPath="$TMP/cm-%h" -o ControlPersist=60 \
  -o UserKnownHostsFile="$KNOWN" -o StrictHostKeyChecking=yes -o BatchMode=yes $IDS "$@"; }
` + body + `
for h in $HOSTS; do one $h & done
fail=0; for j in $(jobs -p); do wait $j || fail=1; done
for h in $HOSTS; do ssh_ -O exit root@$h 2>/dev/null || true; done
exit $fail
`
}

var tinyScript = opensshScript(`one() {
  for i in $(seq 1 100); do ssh_ root@$1 true; done
}`)

// BenchmarkTinyCommands runs 100 `true` one after another on each of 64
// hosts (E2C_BENCH_HOSTS): e2c with the agent, e2c without, and the
// OpenSSH script. Beyond the controller's CPU it reports the hosts' CPU
// per command: the whole machine's busy CPU less the controller's, as
// everything on the hosts runs on this machine.
func BenchmarkTinyCommands(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	for _, n := range benchHosts(64) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) { tiny(b, n) })
	}
}

func tiny(b *testing.B, n int) {
	root := b.TempDir()
	bl := newBenchLab(b, root, n)
	bl.placeAgent(b)
	scenarioDir := writeScenario(b, root, n, tinyWorkflow)
	commands := 100 * n
	var v variants
	for b.Loop() {
		for _, e := range e2cVariants {
			name, agent := e.name, e.agent
			if !benchVariant(name) {
				continue
			}
			var ran int64
			v.self(b, name, commands, func() { ran = bl.e2c(b, scenarioDir, root, agent) })
			if ran != int64(commands) {
				b.Fatalf("%s ran %d commands, not one per item (%d)", name, ran, commands)
			}
		}
		if benchVariant("openssh") {
			v.children(b, "openssh", commands, func() { bl.script(b, root, tinyScript, "") })
		}
	}
	v.report(b, n, [2]string{"openssh", "e2c-agent"}, [2]string{"openssh", "e2c-ssh"}, [2]string{"e2c-ssh", "e2c-agent"})
}

// benchLab is the emulated hosts of a benchmark, in labs of at most
// labHosts hosts on 10.233.0.0/16.
type benchLab struct {
	labs      []*netns.Lab
	hosts     []netns.Host
	endpoints map[string]transport.Endpoint
}

func newBenchLab(b *testing.B, root string, n int) *benchLab {
	if n > 4*labHosts {
		b.Fatalf("%d hosts: at most %d", n, 4*labHosts)
	}
	bl := &benchLab{endpoints: map[string]transport.Endpoint{}}
	raiseNeighbours(b, n)
	start := time.Now()
	for first := 0; first < n; first += labHosts {
		var names []string
		for i := first; i < min(n, first+labHosts); i++ {
			names = append(names, fmt.Sprintf("edge-node-1-%d", i+1))
		}
		k := len(bl.labs)
		subnet := netip.MustParsePrefix("10.233.0.0/16")
		if n > labHosts {
			subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 233, byte(64 * k), 0}), 18)
		}
		lab, err := netns.Create(context.Background(), netns.Options{Name: fmt.Sprintf("bench-%d-%d-%s", n, k, root),
			Hosts: names, Subnet: subnet, StateDir: filepath.Join(root, "lab"+strconv.Itoa(k))})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := lab.Destroy(context.Background()); err != nil {
				b.Error(err)
			}
		})
		bl.labs = append(bl.labs, lab)
		for _, h := range lab.Hosts() {
			bl.hosts = append(bl.hosts, h)
			bl.endpoints[h.Name] = transport.Endpoint{Host: h.Address4.String(), Port: 22, User: "root",
				KeyFiles: []string{lab.KeyFile()}, HostKeys: transport.Strict, KnownHosts: lab.KnownHostsFile()}
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %d emulated hosts in %d labs, created in %.1f s\n", b.Name(), n, len(bl.labs), time.Since(start).Seconds())
	return bl
}

// raiseNeighbours makes room in the kernel's ARP table, shared by all
// network namespaces, for n hosts: each takes two entries (the machine's
// for the host, the host's for the bridge), and past gc_thresh3 (1024 by
// default) new hosts cannot be reached. The old limits come back at
// cleanup, after the labs are gone.
func raiseNeighbours(b *testing.B, n int) {
	const dir = "/proc/sys/net/ipv4/neigh/default/"
	for _, k := range []struct {
		name string
		want int
	}{{"gc_thresh3", 4 * n}, {"gc_thresh2", 2 * n}} { // thresh3 first: thresh2 stays below it
		old, err := os.ReadFile(dir + k.name)
		if err != nil {
			b.Fatal(err)
		}
		if v, _ := strconv.Atoi(strings.TrimSpace(string(old))); v >= k.want {
			continue
		}
		if err := os.WriteFile(dir+k.name, []byte(strconv.Itoa(k.want)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := os.WriteFile(dir+k.name, old, 0o644); err != nil {
				b.Errorf("restoring %s: %v", k.name, err)
			}
		})
	}
}

// placeAgent puts this binary where the agent goes on every host, hard
// linked (a thousand copies of a 30 MB test binary would fill the disk and
// take minutes): the runs measure hosts that have the agent, as from
// e2c's second run on: the pool finds its build there by name. It relies on netns keeping each host's /root in its state
// directory at hosts/<name>/root.
func (bl *benchLab) placeAgent(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	name, err := transport.AgentFile(benchAgentPath, self)
	if err != nil {
		b.Fatal(err)
	}
	for _, lab := range bl.labs {
		for _, h := range lab.Hosts() {
			dst := filepath.Join(lab.StateDir(), "hosts", h.Name, "root", name)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.Link(self, dst); err != nil {
				b.Fatalf("placing the agent: %v", err)
			}
		}
	}
}

// writeScenario writes a scenario of one service of n hosts running
// workflow, and returns its folder.
func writeScenario(b *testing.B, root string, n int, workflow string) string {
	dir := filepath.Join(root, "scenario")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	layers := fmt.Sprintf("environment: {netns: }\nlayers:\n- name: edge\n  services: [{name: node, quantity: %d}]\n", n)
	if err := os.WriteFile(filepath.Join(dir, schema.LayersServicesFile), []byte(layers), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, schema.WorkflowFile), []byte(workflow), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// e2c plans the scenario in scenarioDir and runs its launch phase on the
// hosts, with fresh connections, through the agent agent finds or, when
// nil, plain SSH sessions; it returns how many commands it ran
// (Runner.Run calls). The artifacts are root/artifacts.
func (bl *benchLab) e2c(b *testing.B, scenarioDir, root string, agent func(string) (string, error)) (commands int64) {
	sc, err := schema.Load(scenarioDir)
	if err != nil {
		b.Fatal(err)
	}
	machines := make([][]plan.Machine, 1)
	for _, h := range bl.hosts {
		machines[0] = append(machines[0], plan.Machine{Name: h.Name, Address: h.Address4.String(), Address4: h.Address4.String()})
	}
	p, err := plan.Build(sc, servicedef.New(nil), machines, plan.Options{ScenarioDir: scenarioDir,
		ArtifactsDir: filepath.Join(root, "artifacts"), RunDir: filepath.Join(root, "run"), RepeatCount: 1})
	if err != nil {
		b.Fatal(err)
	}
	// The hosts' sshds share this machine's two cores with every other
	// host's work: at hundreds of hosts a handshake waits longer than 15 s.
	o := transport.PoolOptions{SSHConfig: "none", HandshakeTimeout: 2 * time.Minute}
	if agent != nil {
		o.Agent, o.AgentPath = agent, benchAgentPath
	}
	pool := transport.NewPool(o)
	defer pool.Close()
	var runs atomic.Int64
	trace := tracing{os.Getenv("E2C_VERSUS_TRACE") != ""}
	ex := execute.New(p, func(ctx context.Context, host string) (transport.Runner, error) {
		r, err := pool.Runner(ctx, bl.endpoints[host])
		if err != nil {
			return nil, err
		}
		return counted{r, &runs}, nil
	}, execute.Options{Output: trace})
	// As e2c deploy does around a phase: what its copies send to many
	// hosts is spread first, and removed from the hosts at the end.
	// Each lab is a testbed: the labs' hosts do not reach each other's.
	x := &Session{o: Options{ScenarioDir: scenarioDir, NoAgent: agent == nil}, st: &State{}, pool: pool,
		hosts: map[string]providers.Host{}, testbeds: map[string]string{}}
	for k, lab := range bl.labs {
		for _, h := range lab.Hosts() {
			e := bl.endpoints[h.Name]
			x.hosts[h.Name] = providers.Host{Machine: plan.Machine{Name: h.Name, Address: h.Address4.String()}, SSH: &e}
			x.testbeds[h.Name] = "lab" + strconv.Itoa(k)
		}
	}
	before := hostProcesses(b)
	x.spreadFiles(context.Background(), trace, p, "launch")
	if _, err := ex.Phase(context.Background(), "launch"); err != nil {
		b.Fatal(err)
	}
	removeBlobs(context.Background(), x.st, x.connect, nil, trace)
	if agent != nil {
		for host, e := range bl.endpoints {
			if err := pool.AgentFallback(e); err != nil {
				b.Fatalf("%s ran without the agent: %v", host, err)
			}
		}
	}
	// Before the pool closes: the agents and their sshds still run.
	host := hostProcesses(b).since(before)
	if n := runs.Load(); n > 0 {
		ms := func(d time.Duration) float64 { return d.Seconds() * 1000 / float64(n) }
		fmt.Fprintf(os.Stderr, "%s hosts' CPU per command: sshd %.2f ms, agents %.2f ms, what the agents ran %.2f ms\n",
			b.Name(), ms(host.sshd), ms(host.agent), ms(host.ran))
	}
	return runs.Load()
}

// hostCPU is the CPU time of the hosts' processes, by kind.
type hostCPU struct {
	sshd  time.Duration // sshds, with the commands of their sessions once ended
	agent time.Duration // agents running
	ran   time.Duration // what running agents ran, once ended
}

// procTimes is the CPU time of each of the hosts' processes, by process
// id and start time (a pid may be reused).
type procTimes map[[2]string]hostCPU

// since sums what the processes in t spent since before. A process gone
// since counts nothing rather than its whole past: another benchmark's
// sshds, ending, would make the sum negative.
func (t procTimes) since(before procTimes) hostCPU {
	var c hostCPU
	for id, now := range t {
		was := before[id]
		c.sshd += now.sshd - was.sshd
		c.agent += now.agent - was.agent
		c.ran += now.ran - was.ran
	}
	return c
}

// measuring is the CPU this process spent in hostProcesses: the
// instrument's, not e2c's, taken out of the controller's CPU.
var measuring atomic.Int64

// hostProcesses reads the CPU times of this machine's sshd and agent
// processes from /proc: the hosts' share of the machine.
func hostProcesses(b *testing.B) procTimes {
	start := selfCPU()
	defer func() { measuring.Add(int64(selfCPU() - start)) }()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		b.Fatal(err)
	}
	t := procTimes{}
	for _, name := range stats {
		s, err := os.ReadFile(name)
		if err != nil {
			continue // ended
		}
		// pid (comm) state ppid ...: utime, stime, cutime, cstime are
		// fields 14 to 17, starttime 22: 12 to 15 and 20 past the comm.
		end := strings.LastIndexByte(string(s), ')')
		start := strings.IndexByte(string(s), '(')
		if start < 0 || end < start {
			continue
		}
		comm, f := string(s[start+1:end]), strings.Fields(string(s[end+1:]))
		if len(f) < 20 {
			continue
		}
		var d [4]time.Duration
		for i := range d {
			v, _ := strconv.ParseInt(f[11+i], 10, 64)
			d[i] = time.Duration(v) * time.Second / 100 // USER_HZ
		}
		id := [2]string{string(s[:start]), f[19]}
		switch {
		case comm == "sshd":
			t[id] = hostCPU{sshd: d[0] + d[1] + d[2] + d[3]}
		case strings.HasPrefix(comm, filepath.Base(benchAgentPath)): // e2c-agent-<build>, cut to 15 bytes
			t[id] = hostCPU{agent: d[0] + d[1], ran: d[2] + d[3]}
		}
	}
	return t
}

// counted counts the commands run through a Runner.
type counted struct {
	transport.Runner
	runs *atomic.Int64
}

func (c counted) Run(ctx context.Context, cmd transport.Command) (transport.Result, error) {
	c.runs.Add(1)
	return c.Runner.Run(ctx, cmd)
}

// script runs an OpenSSH script on all the hosts.
func (bl *benchLab) script(b *testing.B, root, script, artifacts string) {
	var addrs []string
	for _, h := range bl.hosts {
		addrs = append(addrs, h.Address4.String())
	}
	tmp, err := os.MkdirTemp(root, "ssh")
	if err != nil {
		b.Fatal(err)
	}
	var ids, known []string // each lab has its own
	for _, lab := range bl.labs {
		ids = append(ids, "-i", lab.KeyFile())
		known = append(known, lab.KnownHostsFile())
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "HOSTS="+strings.Join(addrs, " "), "IDS="+strings.Join(ids, " "),
		"KNOWN="+strings.Join(known, " "), "ARTIFACTS="+artifacts, "TMP="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("openssh script: %v\n%s", err, out)
	}
}

// usage is what a variant cost on this machine.
type usage struct {
	wall time.Duration
	cpu  time.Duration // the controller's
	busy time.Duration // the whole machine's (/proc/stat), the hosts' included
	heap uint64        // peak heap in use, for e2c in this process
	// commands is how many commands ran, for the hosts' CPU per command; 0:
	// not reported.
	commands int
}

// variants sums each variant's usage over a benchmark's runs.
type variants struct {
	names []string
	sum   map[string]*usage
}

// self measures f, a variant run in this process: its CPU is this
// process's (RUSAGE_SELF).
func (v *variants) self(b *testing.B, name string, commands int, f func()) {
	var peak uint64
	load := loadAvg()
	stop := sampleHeap(&peak)
	cpu0, busy0, start, m0 := selfCPU(), machineBusy(b), time.Now(), measuring.Load()
	f()
	instrument := time.Duration(measuring.Load() - m0)
	u := usage{wall: time.Since(start), cpu: selfCPU() - cpu0 - instrument, busy: machineBusy(b) - busy0 - instrument, commands: commands}
	stop()
	u.heap = peak
	v.add(b, name, load, u)
}

// children measures f, a variant that runs programs: its CPU is that of
// a cpuacct cgroup this process is in while f runs. The child's rusage
// would miss the OpenSSH masters, which leave their parent
// (ControlPersist) and do the encryption.
func (v *variants) children(b *testing.B, name string, commands int, f func()) {
	load := loadAvg()
	cg := enterCgroup(b)
	busy0, start := machineBusy(b), time.Now()
	f()
	u := usage{wall: time.Since(start), busy: machineBusy(b) - busy0, commands: commands}
	u.cpu = cg.leave(b)
	v.add(b, name, load, u)
}

func (v *variants) add(b *testing.B, name, load string, u usage) {
	// Printed at once, not logged: a long run stopped midway still tells.
	fmt.Fprintf(os.Stderr, "%s %s: %.2f s, controller %.2f CPU-s, machine %.2f CPU-s, heap %.1f MB (load before: %s)\n",
		b.Name(), name, u.wall.Seconds(), u.cpu.Seconds(), u.busy.Seconds(), float64(u.heap)/(1<<20), load)
	if v.sum == nil {
		v.sum = map[string]*usage{}
	}
	s := v.sum[name]
	if s == nil {
		s = &usage{}
		v.sum[name] = s
		v.names = append(v.names, name)
	}
	s.wall += u.wall
	s.cpu += u.cpu
	s.busy += u.busy
	s.heap = max(s.heap, u.heap)
	s.commands += u.commands
}

// report reports, per variant and run, wall and CPU seconds, CPU per host,
// the peak heap, the hosts' CPU (in all and per command), and the ratios
// of wall times asked (slower/faster), then this process's peak RSS.
func (v *variants) report(b *testing.B, hosts int, ratios ...[2]string) {
	runs := float64(b.N)
	for _, name := range v.names {
		u := v.sum[name]
		b.ReportMetric(u.wall.Seconds()/runs, name+"-s")
		b.ReportMetric(u.cpu.Seconds()/runs, name+"-cpu-s")
		b.ReportMetric(u.cpu.Seconds()/runs/float64(hosts), name+"-cpu-s/host")
		b.ReportMetric((u.busy-u.cpu).Seconds()/runs, name+"-host-cpu-s")
		if u.commands > 0 {
			b.ReportMetric((u.busy-u.cpu).Seconds()*1000/float64(u.commands), name+"-host-ms/cmd")
		}
		if u.heap > 0 {
			b.ReportMetric(float64(u.heap)/(1<<20), name+"-heap-MB")
		}
	}
	for _, r := range ratios {
		if slow, fast := v.sum[r[0]], v.sum[r[1]]; slow != nil && fast != nil {
			b.ReportMetric(slow.wall.Seconds()/fast.wall.Seconds(), r[0]+"/"+r[1])
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MB") // the whole process's, lab creation included
	}
}

// benchHosts are the host counts asked by E2C_BENCH_HOSTS, or def.
func benchHosts(def ...int) []int {
	s := os.Getenv("E2C_BENCH_HOSTS")
	if s == "" {
		return def
	}
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			panic(fmt.Sprintf("E2C_BENCH_HOSTS=%q: expected host counts such as 8,64", s))
		}
		ns = append(ns, n)
	}
	return ns
}

// benchVariant tells whether E2C_BENCH_VARIANTS asks for variant name
// (all when unset).
func benchVariant(name string) bool {
	s := os.Getenv("E2C_BENCH_VARIANTS")
	return s == "" || slices.Contains(strings.Split(s, ","), name)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time this machine has been busy, all cores:
// /proc/stat's first line less idle and iowait.
func machineBusy(b *testing.B) time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		b.Fatalf("/proc/stat: %q", line)
	}
	var busy int64
	for i, s := range fields[1:] {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q", line)
		}
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is already in user
			busy += t
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

func loadAvg() string {
	s, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(s))[:3], " ")
}

// cpuacct is the cgroup v1 CPU accounting hierarchy.
const cpuacct = "/sys/fs/cgroup/cpuacct"

// benchCgroup is a cgroup this process is in while a variant runs.
type benchCgroup struct{ dir, home string }

// enterCgroup moves this process into a new cpuacct cgroup, which the
// programs it starts inherit.
func enterCgroup(b *testing.B) benchCgroup {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Fatal(err)
	}
	home := ""
	for _, l := range strings.Split(string(self), "\n") {
		if parts := strings.SplitN(l, ":", 3); len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), "cpuacct") {
			home = filepath.Join(cpuacct, parts[2])
		}
	}
	if home == "" {
		b.Skip("no cgroup v1 cpuacct hierarchy to measure the CPU of the script and of its OpenSSH masters")
	}
	cg := benchCgroup{dir: filepath.Join(home, fmt.Sprintf("e2c-bench-%d", os.Getpid())), home: home}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.Remove(cg.dir)
		b.Fatal(err)
	}
	return cg
}

// leave moves this process, and whatever is left in the cgroup, back
// home, removes the cgroup and returns the CPU time it used.
func (cg benchCgroup) leave(b *testing.B) time.Duration {
	s, err := os.ReadFile(filepath.Join(cg.dir, "cpuacct.usage"))
	used, err2 := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
	procs, _ := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
	for _, pid := range strings.Fields(string(procs)) {
		_ = os.WriteFile(filepath.Join(cg.home, "cgroup.procs"), []byte(pid), 0o644) // gone already: fine
	}
	if err := os.Remove(cg.dir); err != nil {
		b.Errorf("removing cgroup: %v", err)
	}
	if err != nil || err2 != nil {
		b.Fatalf("cgroup CPU: %v %v", err, err2)
	}
	return time.Duration(used)
}

// BenchmarkAgentStart runs one `true` on each of 64 hosts (E2C_BENCH_HOSTS)
// with fresh connections, through the agent and without it: the
// difference is what starting the agent costs (checking the copy on the
// host, starting it), beyond the connection both pay.
func BenchmarkAgentStart(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	for _, n := range benchHosts(64) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			root := b.TempDir()
			bl := newBenchLab(b, root, n)
			bl.placeAgent(b)
			scenarioDir := writeScenario(b, root, n, "- hosts: all\n  launch:\n  - shell: \"true\"\n")
			var v variants
			for b.Loop() {
				for _, e := range e2cVariants {
					name, agent := e.name, e.agent
					v.self(b, name, n, func() { bl.e2c(b, scenarioDir, root, agent) })
				}
			}
			v.report(b, n, [2]string{"e2c-agent", "e2c-ssh"})
		})
	}
}

// BenchmarkAgentCold runs one `true` on each of 64 hosts (E2C_BENCH_HOSTS)
// that have no agent yet, as on a testbed's first run: e2c copies it to
// every host, then starts it. The agent is e2c itself or e2c-agent
// (cmd/e2c-agent), both built here as make build builds them.
func BenchmarkAgentCold(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	bins := buildAgents(b)
	for _, n := range benchHosts(64) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			root := b.TempDir()
			bl := newBenchLab(b, root, n)
			scenarioDir := writeScenario(b, root, n, "- hosts: all\n  launch:\n  - shell: \"true\"\n")
			var v variants
			for b.Loop() {
				for _, name := range []string{"e2c", "e2c-agent"} {
					bl.removeAgents(b)
					find := func(string) (string, error) { return bins[name], nil }
					v.self(b, name, n, func() { bl.e2c(b, scenarioDir, root, find) })
				}
			}
			v.report(b, n, [2]string{"e2c", "e2c-agent"})
		})
	}
}

// buildAgents builds e2c and e2c-agent as make build does, and returns
// their paths by name.
func buildAgents(b *testing.B) map[string]string {
	dir := b.TempDir()
	bins := map[string]string{}
	for _, c := range []struct{ name, flags string }{{"e2c", ""}, {"e2c-agent", "-s -w"}} {
		out := filepath.Join(dir, c.name)
		cmd := exec.Command("go", "build", "-ldflags", c.flags, "-o", out, "github.com/e2c-dev/e2c/cmd/"+c.name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Skipf("cannot build %s here: %v\n%s", c.name, err, msg)
		}
		fi, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%s: %.1f MB\n", c.name, float64(fi.Size())/1e6)
		bins[c.name] = out
	}
	return bins
}

// removeAgents removes the agent's copies from every host: netns keeps each
// host's /root in its state directory at hosts/<name>/root.
func (bl *benchLab) removeAgents(b *testing.B) {
	for _, lab := range bl.labs {
		for _, h := range lab.Hosts() {
			if err := os.RemoveAll(filepath.Join(lab.StateDir(), "hosts", h.Name, "root", filepath.Dir(benchAgentPath))); err != nil {
				b.Fatal(err)
			}
		}
	}
}
