package static

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
	"gopkg.in/yaml.v3"
)

// pis is the Pi cluster of the configuration example: a master and workers.
func pis() []any {
	return []any{
		map[string]any{"address": "10.188.180.183", "alias": "picol-0", "cluster": "master", "arch": "arm64"},
		map[string]any{"address": "10.188.181.109", "alias": "picol-1", "cluster": "worker", "user": "ubuntu", "port": 2222, "keyfile": "~/.ssh/pi"},
		map[string]any{"address": "10.188.181.110", "alias": "picol-2", "cluster": "worker"},
		map[string]any{"address": "10.188.181.111", "cluster": "worker"},
	}
}

func inst(name string, quantity int, cluster string, servers ...string) plan.Instance {
	return plan.Instance{Layer: "fog", Name: name, Index: 1,
		Service: &schema.Service{Name: name, Quantity: quantity, Cluster: cluster, Servers: servers}}
}

// machineNames runs parse and assign and returns the names picked.
func machineNames(t *testing.T, settings map[string]any, instances ...plan.Instance) ([][]string, error) {
	c, err := parseConfig(testbed(t, settings))
	if err != nil {
		return nil, err
	}
	picked, err := assign(c, instances)
	if err != nil {
		return nil, err
	}
	out := [][]string{}
	for _, idx := range picked {
		out = append(out, names(c.hosts, idx))
	}
	return out, nil
}

func TestAssign(t *testing.T) {
	for _, tc := range []struct {
		name      string
		settings  map[string]any
		instances []plan.Instance
		want      [][]string
		err       []string // substrings of the error
	}{
		{name: "cluster then servers win over cluster",
			instances: []plan.Instance{inst("flink", 1, "master"), inst("worker", 2, "master", "picol-2", "10.188.181.109")},
			want:      [][]string{{"picol-0"}, {"picol-2", "picol-1"}}},
		{name: "first unused hosts in listed order",
			instances: []plan.Instance{inst("a", 1, "worker"), inst("b", 2, "worker")},
			want:      [][]string{{"picol-1"}, {"picol-2", "10.188.181.111"}}},
		{name: "servers take only unused hosts",
			instances: []plan.Instance{inst("a", 1, "worker"), inst("b", 1, "", "picol-1", "picol-2")},
			want:      [][]string{{"picol-1"}, {"picol-2"}}},
		{name: "no cluster takes any host",
			instances: []plan.Instance{inst("a", 1, "master"), inst("b", 2, "")},
			want:      [][]string{{"picol-0"}, {"picol-1", "picol-2"}}},
		{name: "block cluster is the default",
			settings:  map[string]any{"cluster": "worker"},
			instances: []plan.Instance{inst("a", 1, "")},
			want:      [][]string{{"picol-1"}}},
		{name: "shortfall names the service, the ask and what is left",
			instances: []plan.Instance{inst("a", 2, "worker"), inst("b", 2, "worker")},
			err:       []string{"fog.b.1 (service b) asks for 2 host(s) from cluster \"worker\"; 1 left: 10.188.181.111"}},
		{name: "shortfall of servers",
			instances: []plan.Instance{inst("a", 1, "", "picol-1"), inst("a", 1, "", "picol-1")},
			err:       []string{"asks for 1 host(s) from servers picol-1; none left"}},
		{name: "unknown server",
			instances: []plan.Instance{inst("a", 1, "", "picol-9")},
			err:       []string{`server "picol-9" is not in static.hosts (known: picol-0, picol-1, picol-2, 10.188.181.111)`}},
		{name: "unknown cluster",
			instances: []plan.Instance{inst("a", 1, "gpu")},
			err:       []string{`no host has cluster "gpu" (clusters: master, worker)`}},
		{name: "unknown keys in block and host, all reported",
			settings: map[string]any{"walltime": "1:00:00", "hosts": append(pis(), map[string]any{"adress": "10.0.0.9"})},
			err: []string{`static: unknown key "walltime"; expected one of: job_name, cluster, hosts, user, port, keyfile, host_keys, etc_hosts`,
				`static.hosts: unknown key "adress" (did you mean "address"?); expected one of: address, alias, cluster, arch, user, port, keyfile, docker_socket`,
				"static.hosts: this host has no address"}},
		{name: "duplicate alias",
			settings: map[string]any{"hosts": append(pis(), map[string]any{"address": "10.0.0.9", "alias": "picol-1"})},
			err:      []string{`static.hosts: "picol-1" also names the host at line 6`}},
		{name: "bad values",
			settings: map[string]any{"port": 70000, "host_keys": "maybe", "hosts": []any{map[string]any{"alias": "x", "arch": "mips", "docker_socket": "run/docker.sock"}}},
			err: []string{"static.port: found 70000", `static.host_keys: found "maybe", expected strict, accept-new or off`, `static.hosts.arch: "mips": expected arm, arm64 or amd64`,
				`static.hosts.docker_socket: "run/docker.sock": expected an absolute path on the host`}},
		{name: "etc_hosts needs IP addresses",
			settings: map[string]any{"etc_hosts": true, "hosts": []any{map[string]any{"address": "pi.lan", "alias": "pi"}}},
			err:      []string{`static.hosts.address: "pi.lan": etc_hosts needs IP addresses`}},
		{name: "no hosts",
			settings: map[string]any{"hosts": []any{}},
			err:      []string{"static.hosts: no hosts given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := map[string]any{"job_name": "x", "hosts": pis()}
			for k, v := range tc.settings {
				settings[k] = v
			}
			got, err := machineNames(t, settings, tc.instances...)
			if tc.err == nil {
				if err != nil || !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", got)
			}
			for _, s := range tc.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\nlacks %q", err, s)
				}
			}
		})
	}
}

// TestEndpoints checks how hosts are reached: block defaults, per-host
// overrides, and the known_hosts file of each host_keys policy.
func TestEndpoints(t *testing.T) {
	c, err := parseConfig(testbed(t, map[string]any{"hosts": pis(), "user": "pi", "keyfile": "~/.ssh/id_ed25519", "host_keys": "accept-new"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	got := []transport.Endpoint{*c.endpoint(c.hosts[0], dir), *c.endpoint(c.hosts[1], dir)}
	kh := filepath.Join(dir, "known_hosts")
	want := []transport.Endpoint{
		{Host: "10.188.180.183", User: "pi", KeyFiles: []string{"~/.ssh/id_ed25519"}, HostKeys: transport.AcceptNew, KnownHosts: kh},
		{Host: "10.188.181.109", Port: 2222, User: "ubuntu", KeyFiles: []string{"~/.ssh/pi"}, HostKeys: transport.AcceptNew, KnownHosts: kh},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints\n%+v\nwant\n%+v", got, want)
	}
	if m := c.machine(c.hosts[3]); m != (plan.Machine{Name: "10.188.181.111", Address: "10.188.181.111", Address4: "10.188.181.111"}) {
		t.Errorf("machine without alias: %+v", m)
	}
	// Strict by default, with the user's known_hosts.
	c, _ = parseConfig(testbed(t, map[string]any{"hosts": pis()}))
	if e := c.endpoint(c.hosts[0], dir); e.HostKeys != transport.Strict || e.KnownHosts != "" || e.User != "" {
		t.Errorf("default endpoint %+v", e)
	}
}

// TestReleaseNothing: a reservation without /etc/hosts blocks releases
// without touching any host.
func TestReleaseNothing(t *testing.T) {
	p := New()
	st := `{"experiment":"x","hosts":[{"name":"a","address":"192.0.2.1","ssh":{"host":"192.0.2.1"}}]}`
	if err := p.Release(context.Background(), &providers.Reservation{Provider: "static", State: []byte(st)}, io.Discard); err != nil {
		t.Error(err)
	}
	if err := p.Release(context.Background(), &providers.Reservation{Provider: "static"}, io.Discard); err != nil {
		t.Error(err)
	}
}

// testbed is a static block holding settings, as layers_services.yaml would.
func testbed(t *testing.T, settings map[string]any) *schema.Testbed {
	t.Helper()
	text, err := yaml.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := schema.TestbedBlock("layers_services.yaml", "static", string(text))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestReserveErrorsNameNoProvider: what Reserve returns is wrapped as
// "reserve: static: ..." by its caller, so it does not start with
// "static:" itself. A closed port refuses at once, without an sshd.
func TestReserveErrorsNameNoProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := New()
	req := providers.Request{Experiment: "x", StateDir: t.TempDir(), Instances: []plan.Instance{inst("a", 1, "")},
		Settings: testbed(t, map[string]any{"user": "e2c-test", "port": port, "hosts": []any{map[string]any{"address": "127.0.0.1", "alias": "closed"}}})}
	_, err = p.Reserve(context.Background(), req)
	want := fmt.Sprintf("preflight failed:\n  closed (127.0.0.1): ssh e2c-test@127.0.0.1:%d: connection refused", port)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("reserve: %v\nwant: %s", err, want)
	}
	if _, err := p.Reserve(context.Background(), providers.Request{}); err == nil || strings.HasPrefix(err.Error(), "static") {
		t.Errorf("reserve without an experiment: %v", err)
	}
}

// The docker key: install or use, absent meaning use; anything else is
// refused at its position, with the accepted values.
func TestDockerSetting(t *testing.T) {
	for _, tc := range []struct {
		line, want, err string
	}{
		{line: "docker: install\n", want: "install"},
		{line: "docker: use\n", want: "use"},
		{line: "", want: ""},
		{line: "docker: instal\n", err: `layers_services.yaml:2:9: static.docker: found "instal", expected install (install Docker Engine where it is missing) or use (the default: only use a daemon already there) (did you mean "install"?)`},
		{line: "docker: yes\n", err: `layers_services.yaml:2:9: static.docker: found "yes", expected install`},
	} {
		text := "hosts: [{address: 10.0.0.2}]\n" + tc.line
		tb, err := schema.TestbedBlock("layers_services.yaml", "static", text)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseConfig(tb)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.err)
			}
			// validate sees the same error
			if err := (provider{}).CheckSettings(tb, nil); err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%q: CheckSettings: %v", tc.line, err)
			}
			continue
		}
		if err != nil || c.docker != tc.want {
			t.Errorf("%q: docker %q, %v; want %q", tc.line, c.docker, err, tc.want)
		}
	}
}
