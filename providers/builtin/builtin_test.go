package builtin_test

import (
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers/builtin"
	"github.com/e2c-dev/e2c/schema"
)

// TestCheck: every testbed block is checked by its provider before
// anything is reserved, each problem at its position, with a hint for a
// near miss.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, env, services string
		want                []string // each line of the error, in order; none: valid
	}{
		{"unknown testbed", "{locl: {}}", "[{name: s}]",
			[]string{`x.yaml:1:15: environment: unknown testbed "locl" (did you mean "local"?); expected a testbed (g5k, local, netns, static) or one of: job_name, walltime, cluster`}},
		{"unsupported testbed", "{iotlab: {cluster: grenoble}}", "[{name: s}]",
			[]string{`x.yaml:1:15: environment: testbed "iotlab" is not supported by e2c; supported testbeds: g5k, local, netns, static`}},
		{"static host typo", "{static: {hosts: [{adress: 10.0.0.1}]}}", "[{name: s}]",
			[]string{"2 problems:",
				"x.yaml:1:32: static.hosts: this host has no address",
				`x.yaml:1:33: static.hosts: unknown key "adress" (did you mean "address"?); expected one of: address, alias, cluster, arch, user, port, keyfile, docker_socket`}},
		{"too few static hosts", "{static: {hosts: [{address: 10.0.0.1}]}}", "[{name: s, quantity: 2}]",
			[]string{"x.yaml:2:51: static: a.s.1 (service s) asks for 2 host(s) from any host; 1 left: 10.0.0.1 (each host serves one instance)"}},
		{"static unknown server", "{static: {hosts: [{address: 10.0.0.1, alias: pi-1}]}}", "[{name: s, servers: [pi-2]}]",
			[]string{`x.yaml:2:50: static: a.s.1: server "pi-2" is not in static.hosts (known: pi-1) (did you mean "pi-1"?)`}},
		{"g5k queue", "{g5k: {queue: prodution}}", "[{name: s}]",
			[]string{`x.yaml:1:28: g5k.queue: unknown queue "prodution" (did you mean "production"?); expected one of: default, production, besteffort, testing`}},
		{"netns subnet too small", "{netns: {subnet: 10.9.9.0/30}}", "[{name: s, quantity: 2}]",
			[]string{"x.yaml:1:31: netns: subnet 10.9.9.0/30 is too small for 2 hosts"}},
		{"block not a mapping", "{netns: [10.9.9.0/24]}", "[{name: s}]",
			[]string{"x.yaml:1:22: netns: found a list, expected a mapping"}},
		{"local takes nothing", "{local: {cpus: 2}}", "[{name: s}]",
			[]string{`x.yaml:1:23: local: unknown key "cpus"; expected one of: job_name`}},
		{"valid", "{job_name: x, local: {}, static: {hosts: [{address: 10.0.0.1}]}}", "[{name: s}, {name: t, environment: static}]", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			text := "environment: " + c.env + "\nlayers: [{name: a, services: " + c.services + "}]\n"
			ls, err := schema.DecodeLayersServices("x.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			err = builtin.Set().Check(ls.Environment, plan.Expand(ls))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(c.want, "\n  "); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
