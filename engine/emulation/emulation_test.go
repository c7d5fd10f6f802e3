package emulation

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
)

// answering is a host that answers e2c's scripts from canned output, the
// way a host with the given preflight output would, without running them:
// it isolates e2c's own work from the hosts'.
type answering struct {
	preflight string
	mu        sync.Mutex
	scripts   []string
}

var routeLine = regexp.MustCompile(`(?m)^route get (\S+)$`)

func (a *answering) Run(_ context.Context, c transport.Command) (transport.Result, error) {
	a.mu.Lock()
	a.scripts = append(a.scripts, c.Script)
	a.mu.Unlock()
	switch {
	case c.Script == netem.PreflightScript:
		return transport.Result{Stdout: a.preflight}, nil
	case strings.Contains(c.Script, "ip -o -force -batch"):
		var b strings.Builder
		for _, m := range routeLine.FindAllStringSubmatch(c.Script, -1) {
			fmt.Fprintf(&b, "%s dev eth0 src 10.0.0.1 uid 0\n", m[1])
		}
		return transport.Result{Stdout: b.String()}, nil
	}
	return transport.Result{}, nil
}

func (a *answering) Put(context.Context, string, string, fs.FileMode) (transport.PutStats, error) {
	return transport.PutStats{}, nil
}
func (a *answering) Get(context.Context, string, string) error { return nil }
func (a *answering) Close() error                              { return nil }

const goodHost = "kernel=6.1\narch=x86_64\nuid=0\ntc=tc utility\nprivileged=yes\nhtb=yes\nnetem=yes\nu32=yes\n"

// layered makes a plan of hosts in layers with a constraint between every
// pair of layers, the shape of a real edge-to-cloud scenario.
func layered(layers, perLayer int) *plan.Plan {
	p := &plan.Plan{}
	names := make([][]string, layers)
	for l := range layers {
		for i := range perLayer {
			name := fmt.Sprintf("l%d-h%d", l, i)
			names[l] = append(names[l], name)
			p.Hosts = append(p.Hosts, &plan.Host{Machine: plan.Machine{Name: name,
				Address4: fmt.Sprintf("10.0.%d.%d", l, i+1), Address6: fmt.Sprintf("fd00::%d:%d", l, i+1)}})
		}
	}
	var entries []netem.Entry
	for a := range layers {
		for b := a + 1; b < layers; b++ {
			pos := fmt.Sprintf("network.yaml:%d:3", len(entries)+2)
			entries = append(entries, netem.Entry{Pos: pos, SrcHosts: names[a], DstHosts: names[b],
				Delay: time.Duration(a+b) * time.Millisecond, Rate: uint64(b) * 100e6, Loss: 0.1, Symmetric: true})
			p.Network = append(p.Network, &plan.Link{Pos: pos, SrcHosts: names[a], DstHosts: names[b], Symmetric: true})
		}
	}
	p.Constraints, _ = netem.Merge(entries)
	return p
}

func connectAll(hosts map[string]*answering) transport.Connector {
	return func(_ context.Context, h string) (transport.Runner, error) {
		if r, ok := hosts[h]; ok {
			return r, nil
		}
		return nil, fmt.Errorf("no host %s", h)
	}
}

func TestPreflightGroupsProblems(t *testing.T) {
	p := layered(2, 3)
	hosts := map[string]*answering{}
	for _, h := range p.Hosts {
		hosts[h.Name] = &answering{preflight: strings.Replace(goodHost, "netem=yes", "netem=no Error: Specified qdisc kind is unknown.", 1)}
	}
	hosts["l1-h2"].preflight = "kernel=6.1\narch=x86_64\nuid=1000\ntc=\n"
	err := New(p, Options{Connect: connectAll(hosts)}).Preflight(context.Background())
	want := "network.yaml cannot be applied, nothing was changed:\n" +
		"  host l0-h0, l0-h1, l0-h2, l1-h0, l1-h1: kernel 6.1 has no sch_netem, which delay and loss need (Error: Specified qdisc kind is unknown.)"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "\n  host l1-h2: tc not found: install iproute2") {
		t.Fatalf("got %v\nwant it to start with %q", err, want)
	}
	for name, h := range hosts {
		if len(h.scripts) != 1 {
			t.Errorf("%s ran %d scripts, want the preflight alone", name, len(h.scripts))
		}
	}
}

func TestApplyRecordsFirst(t *testing.T) {
	p := layered(3, 2)
	hosts := map[string]*answering{}
	for _, h := range p.Hosts {
		hosts[h.Name] = &answering{preflight: goodHost}
	}
	n := New(p, Options{Connect: connectAll(hosts)})
	if err := n.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	var recorded Applied
	err := n.Apply(context.Background(), func(a Applied) error {
		recorded = a
		for _, h := range hosts {
			if len(h.scripts) > 2 {
				t.Error("an apply script ran before the record was saved")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recorded) != 6 || recorded["l0-h0"].Devices[0] != "eth0" {
		t.Fatalf("recorded %v", recorded)
	}
	apply := hosts["l0-h0"].scripts[2]
	// l0-h0 shapes towards the 4 hosts of the two other layers, over IPv4
	// and IPv6.
	if c := strings.Count(apply, "class add"); c != 5 {
		t.Errorf("%d classes, want 4 and the default:\n%s", c, apply)
	}
	if c := strings.Count(apply, "protocol ipv6"); c != 4 {
		t.Errorf("%d IPv6 filters, want 4", c)
	}
}

func TestFolderName(t *testing.T) {
	seen := map[string]int{}
	for _, tt := range []struct {
		src, dst string
		sym      bool
		want     string
	}{
		{"cloud", "fog", false, "cloud-fog-asymmetric"},
		{"fog.*:!fog.gw.1.*", "edge", true, "fog._fog.gw.1._-edge-symmetric"},
		{"cloud", "fog", false, "cloud-fog-asymmetric-2"},
		{"../..", "/etc", false, ".._..-_etc-asymmetric"},
	} {
		if got := folderName(tt.src, tt.dst, tt.sym, seen); got != tt.want {
			t.Errorf("folderName(%q, %q) = %q, want %q", tt.src, tt.dst, got, tt.want)
		}
	}
}

func TestReadyWriter(t *testing.T) {
	w := &readyWriter{port: make(chan int, 1)}
	for _, chunk := range []string{"noise\nrea", "dy 4", "321\n"} {
		w.Write([]byte(chunk))
	}
	select {
	case p := <-w.port:
		if p != 4321 {
			t.Errorf("port %d", p)
		}
	default:
		t.Error("no port")
	}
}

// BenchmarkApply64 is e2c's own time to apply a 64-host scenario with a
// constraint between every pair of 4 layers: preflight parsing, route
// parsing, merging, building and rendering every host's batch, with hosts
// that answer at once (the SSH round trips are not counted).
func BenchmarkApply64(b *testing.B) {
	p := layered(4, 16)
	hosts := map[string]*answering{}
	for _, h := range p.Hosts {
		hosts[h.Name] = &answering{preflight: goodHost}
	}
	b.ReportAllocs()
	for b.Loop() {
		n := New(p, Options{Connect: connectAll(hosts)})
		if err := n.Preflight(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := n.Apply(context.Background(), func(Applied) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.Constraints)), "constraints")
}

func TestCheckSummary(t *testing.T) {
	ok := true
	c := &Check{Pos: "network.yaml:2:3", Src: "fog", Dst: "edge", Pair: [2]string{"f1", "e1"}, RTT: 40.5, ExpectedRTT: 40, RTTTolerance: 4, RTTOK: true,
		Throughput: 9.6e6, ExpectedThroughput: 10e6, ThroughputOK: &ok, Loss: 0, ExpectedLoss: 0}
	want := "network.yaml:2:3 fog -> edge (asymmetric), f1 -> e1: rtt 40.50 ms (expected 40.00 ± 4.00) within tolerance; throughput 9.60 Mbit/s (expected 10.00 Mbit/s ± 15%) within tolerance; loss 0.0% (expected 0.0%, informative)"
	if got := c.Summary(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// With loss, one TCP stream's throughput is no check of the rate.
	c.ThroughputOK, c.ExpectedLoss = nil, 5
	if got := c.Summary(); !strings.Contains(got, "throughput 9.60 Mbit/s (rate 10.00 Mbit/s; informative: TCP backs off at each loss)") {
		t.Errorf("lossy link: %q", got)
	}
	c.Error = "all 20 echoes lost"
	if got := c.Summary(); got != "network.yaml:2:3 fog -> edge (asymmetric): not measured: all 20 echoes lost" {
		t.Errorf("not measured: %q", got)
	}
}
