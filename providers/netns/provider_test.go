package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

func TestProviderReserveRelease(t *testing.T) {
	needLabs(t)
	t.Parallel()
	p := New()
	req := providers.Request{
		Experiment: fmt.Sprintf("test-provider-%d", os.Getpid()),
		StateDir:   filepath.Join(t.TempDir(), "state"),
		Settings:   block(t, "{job_name: x, subnet: 10.239.7.0/24, subnet6: 'fd00:e2c:a:ef07::/64'}"),
		Instances: []plan.Instance{
			{Layer: "cloud", Name: "server", Index: 1, Service: &schema.Service{Quantity: 2}},
			{Layer: "edge", Name: "client_a", Index: 1, Service: &schema.Service{Quantity: 1}},
		},
	}
	t.Cleanup(func() { Cleanup(context.Background(), req.Experiment) })
	res, err := p.Reserve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}

	want := [][]string{{"cloud-server-1-1", "cloud-server-1-2"}, {"edge-client-a-1-1"}}
	if res.Provider != "netns" || len(res.Hosts) != len(want) {
		t.Fatalf("reservation %+v, want hosts %v", res, want)
	}
	seen := map[string]bool{}
	for i, hs := range res.Hosts {
		if len(hs) != len(want[i]) {
			t.Fatalf("instance %d: %d hosts, want %d", i, len(hs), len(want[i]))
		}
		for j, h := range hs {
			a4, err4 := netip.ParseAddr(h.Address4)
			a6, err6 := netip.ParseAddr(h.Address6)
			if h.Name != want[i][j] || h.Address != h.Address4 || err4 != nil || err6 != nil ||
				!strings.HasPrefix(h.Address4, "10.239.7.") || !strings.HasPrefix(h.Address6, "fd00:e2c:a:ef07::") {
				t.Errorf("host %d.%d = %+v, want %s with addresses in the settings' subnets", i, j, h.Machine, want[i][j])
			}
			if seen[a4.String()] || seen[a6.String()] {
				t.Errorf("address of %s given twice", h.Name)
			}
			seen[a4.String()], seen[a6.String()] = true, true
			e := h.SSH
			if e == nil || e.Host != h.Address4 || e.Port != 22 || e.User != "root" || len(e.KeyFiles) != 1 ||
				e.HostKeys != transport.Strict || e.KnownHosts == "" {
				t.Errorf("%s: endpoint %+v", h.Name, e)
				continue
			}
			if _, err := os.Stat(e.KeyFiles[0]); err != nil {
				t.Error(err)
			}
			if kh, err := os.ReadFile(e.KnownHosts); err != nil || !strings.Contains(string(kh), h.Address4+",") {
				t.Errorf("%s: known_hosts lacks its address: %v\n%s", h.Name, err, kh)
			}
		}
	}

	// The reservation is saved and released by another process.
	saved, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back providers.Reservation
	if err := json.Unmarshal(saved, &back); err != nil {
		t.Fatal(err)
	}
	var lab Lab
	if err := json.Unmarshal(back.State, &lab); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(context.Background(), &back, io.Discard); err != nil {
		t.Fatal(err)
	}
	assertGone(t, &lab.rec, true)
	if err := p.Release(context.Background(), &back, io.Discard); err != nil {
		t.Errorf("second Release: %v", err)
	}
}

func TestProviderSettings(t *testing.T) {
	base := providers.Request{Experiment: "x"}
	for _, c := range []struct {
		settings string
		want     string
	}{
		{"subnets: 10.0.0.0/8", `f.yaml:1:1: netns: unknown key "subnets" (did you mean "subnet"?); expected one of: job_name, subnet, subnet6`},
		{"subnet: [10]", "f.yaml:1:9: netns.subnet: found a list, expected a string"},
		{`subnet6: "fd00::"`, `f.yaml:1:10: netns.subnet6: "fd00::" is not a CIDR range such as 10.231.0.0/16 or fd00:e2c::/64`},
	} {
		req := base
		req.Settings = block(t, c.settings)
		if _, err := options(req); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.settings, err, c.want)
		}
	}
	req := base
	req.Settings = block(t, "{subnet: 10.1.0.0/16, subnet6: fd00:1::/64, job_name: x}")
	o, err := options(req)
	if err != nil || o.Subnet.String() != "10.1.0.0/16" || o.Subnet6.String() != "fd00:1::/64" || o.Name != "x@"+req.StateDir {
		t.Errorf("options %+v, %v", o, err)
	}
	// Settings that parse but make no valid lab are refused at validate.
	in := []plan.Instance{{Layer: "l", Name: "s", Index: 1, Service: &schema.Service{Quantity: 300}}}
	for text, want := range map[string]string{
		"subnet: 8.8.8.0/24":     "f.yaml:1:9: netns: subnet 8.8.8.0/24: expected a private IPv4 range",
		"subnet: 10.9.9.0/24":    "f.yaml:1:9: netns: subnet 10.9.9.0/24 is too small for 300 hosts",
		"subnet: 10.9.0.0/16":    "",
		"subnet6: 2001:db8::/64": "netns: subnet6 2001:db8::/64: expected an IPv6 unique local range",
	} {
		err := provider{}.CheckSettings(block(t, text), in)
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", text, err, want)
		}
	}
	// Settings that parse but make no valid lab are refused by Reserve,
	// before anything is created.
	if Preflight() != nil {
		return
	}
	p := New()
	req.Settings = block(t, "subnet: 8.8.8.0/24")
	req.Instances = []plan.Instance{{Layer: "l", Name: "s", Index: 1, Service: &schema.Service{Quantity: 1}}}
	if _, err := p.Reserve(context.Background(), req); err == nil || !strings.Contains(err.Error(), "private IPv4") {
		t.Errorf("public subnet: %v", err)
	}
}

// TestProvideDockerMissing checks that without dockerd on this machine
// ProvideDocker names the hosts and the fix, and changes nothing.
func TestProvideDockerMissing(t *testing.T) {
	rec, err := newRecord(Options{Name: "x", Hosts: []string{"a", "b", "c"}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	state, err := json.Marshal(&Lab{rec: *rec})
	if err != nil {
		t.Fatal(err)
	}
	r := &providers.Reservation{Provider: "netns", State: state, Hosts: [][]providers.Host{
		{{Machine: plan.Machine{Name: "a"}}, {Machine: plan.Machine{Name: "b"}}}, {{Machine: plan.Machine{Name: "c"}}}}}
	t.Setenv("PATH", t.TempDir())
	var out strings.Builder
	err = provider{}.ProvideDocker(context.Background(), r, []string{"a", "c"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "netns: hosts a, c need a Docker Engine") ||
		!strings.Contains(err.Error(), "dockerd: apt-get install docker.io") {
		t.Errorf("got %v", err)
	}
	if out.Len() > 0 || r.Hosts[0][0].DockerSocket != "" || r.Hosts[1][0].DockerSocket != "" {
		t.Errorf("said %q, hosts %+v", out.String(), r.Hosts)
	}
	if err := (provider{}).ProvideDocker(context.Background(), r, []string{"d"}, nil, &out); err == nil || !strings.Contains(err.Error(), `no host "d"`) {
		t.Errorf("unknown host: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// block is a netns block of layers_services.yaml written as text.
func block(t *testing.T, text string) *schema.Testbed {
	t.Helper()
	tb, err := schema.TestbedBlock("f.yaml", "netns", text)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
