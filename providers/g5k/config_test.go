package g5k

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

var sites = map[string]string{"parasilo": "rennes", "paravance": "rennes", "gros": "nancy", "grisou": "nancy"}

func instances(svcs ...*schema.Service) []plan.Instance {
	var out []plan.Instance
	for i, s := range svcs {
		out = append(out, plan.Instance{Layer: "l", LayerIndex: 1, Name: s.Name, Index: i + 1, Service: s})
	}
	return out
}

func TestResources(t *testing.T) {
	t.Parallel()
	cfg := config{Cluster: "parasilo"}
	ins := instances(
		&schema.Service{Name: "a", Quantity: 2},
		&schema.Service{Name: "b", Quantity: 1, Cluster: "gros"},
		&schema.Service{Name: "c", Quantity: 2, Servers: []string{"gros-40", "gros-7.nancy.grid5000.fr"}},
		&schema.Service{Name: "d", Quantity: 3, Cluster: "paravance"},
		&schema.Service{Name: "e", Quantity: 1},
	)
	ds, err := plan2demands(cfg, ins, sites)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.site+" "+resources(d, 74*time.Hour+30*time.Minute))
	}
	want := []string{
		"rennes {cluster='parasilo'}/nodes=3+{cluster='paravance'}/nodes=3,walltime=74:30:00",
		"nancy {network_address in ('gros-40.nancy.grid5000.fr', 'gros-7.nancy.grid5000.fr')}/nodes=2+{cluster='gros'}/nodes=1,walltime=74:30:00",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, tt := range []struct {
		svc  *schema.Service
		want string
	}{
		{&schema.Service{Name: "x", Quantity: 1, Cluster: "nope"}, `no cluster "nope" on Grid'5000`},
		{&schema.Service{Name: "x", Quantity: 2, Servers: []string{"gros-1"}}, "1 servers for a quantity of 2"},
		{&schema.Service{Name: "x", Quantity: 1, Servers: []string{"nocluster"}}, `server "nocluster": expected a node such as parasilo-3`},
	} {
		if _, err := plan2demands(config{}, instances(tt.svc), sites); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.svc, err, tt.want)
		}
	}
	if _, err := plan2demands(config{}, instances(&schema.Service{Name: "x", Quantity: 1}), sites); err == nil || !strings.Contains(err.Error(), "has no cluster") {
		t.Errorf("no cluster: %v", err)
	}
}

func TestAssignIsDeterministic(t *testing.T) {
	t.Parallel()
	cfg := config{Cluster: "parasilo"}
	ins := instances(
		&schema.Service{Name: "a", Quantity: 2},
		&schema.Service{Name: "s", Quantity: 1, Servers: []string{"parasilo-1"}},
		&schema.Service{Name: "b", Quantity: 1},
	)
	ds, _ := plan2demands(cfg, ins, sites)
	// The API lists nodes in any order; parasilo-1 is the explicit server.
	jobs := []jobState{{Site: "rennes", Nodes: []string{"parasilo-10.rennes.grid5000.fr", "parasilo-1.rennes.grid5000.fr",
		"parasilo-2.rennes.grid5000.fr", "parasilo-9.rennes.grid5000.fr"}}}
	if err := checkNodes(ds[0], jobs[0]); err != nil {
		t.Fatal(err)
	}
	got, err := assign(ds, jobs, ins, cfg, sites)
	want := [][]string{{"parasilo-2.rennes.grid5000.fr", "parasilo-9.rennes.grid5000.fr"}, {"parasilo-1.rennes.grid5000.fr"}, {"parasilo-10.rennes.grid5000.fr"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
	jobs[0].Nodes = jobs[0].Nodes[:2]
	if err := checkNodes(ds[0], jobs[0]); err == nil || !strings.Contains(err.Error(), "lacks 3 parasilo nodes (has 1)") {
		t.Errorf("a reused job too small: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(providers.Request{Experiment: "cctv", Walltime: 2 * time.Hour, Cluster: "gros",
		Settings: testbed(t, `{env_name: debian11-big, job_type: [exotic], walltime: "01:30:00", queue: production}`)})
	if err != nil {
		t.Fatal(err)
	}
	if c.JobName != "cctv" || c.Walltime != 90*time.Minute || c.Cluster != "gros" || c.Queue != "production" || !slices.Equal(c.Types, []string{"exotic", "deploy"}) {
		t.Errorf("config %+v", c)
	}
	for text, want := range map[string]string{
		"clustr: x":             `g5k.yaml:1:1: g5k: unknown key "clustr" (did you mean "cluster"?)`,
		"gateway: sometimes":    `g5k.yaml:1:10: g5k.gateway: found "sometimes", expected auto, always or never`,
		"firewall_rules: []":    "g5k.yaml:1:17: g5k.firewall_rules: not supported by e2c yet",
		"queue: prod":           `g5k.yaml:1:8: g5k.queue: unknown queue "prod"`,
		"reservation: tomorrow": `g5k.yaml:1:14: g5k.reservation: found "tomorrow", expected a date`,
		"reservation: now":      `g5k.yaml:1:14: g5k.reservation: found "now", which the API does not read as a date (it would submit a plain job); omit reservation`,
		`reservation: "25:00"`:  `g5k.yaml:1:14: g5k.reservation: found "25:00", expected a date such as "2026-12-01 19:00:00" or "2026-12-01 19:00", or a time today such as "19:00" (Paris time)`,
		`walltime: "25:61:00"`:  `g5k.yaml:1:11: g5k.walltime: found "25:61:00"`,
	} {
		if _, err := parseConfig(providers.Request{Settings: testbed(t, text)}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", text, err, want)
		}
	}
	for _, r := range []string{"2026-12-01 19:00:00", "2026-12-01 19:00", "19:00", "19:00:30"} {
		if _, err := parseConfig(providers.Request{Settings: testbed(t, "reservation: \""+r+"\"")}); err != nil {
			t.Errorf("reservation %s: %v", r, err)
		}
	}
}

// testbed is a g5k block of layers_services.yaml written as text.
func testbed(t *testing.T, text string) *schema.Testbed {
	t.Helper()
	tb, err := schema.TestbedBlock("g5k.yaml", "g5k", text)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "creds.yaml")
	t.Setenv("E2C_G5K_CREDENTIALS", file)
	if got := CredentialsFile(); got != file {
		t.Errorf("CredentialsFile() = %s, want $E2C_G5K_CREDENTIALS", got)
	}
	if _, err := loadCredentials(file, false); err == nil || !strings.Contains(err.Error(), "outside Grid'5000, write it") {
		t.Errorf("missing file outside: %v", err)
	}
	if c, err := loadCredentials(file, true); err != nil || c.URI != DefaultAPI || c.Username != "" {
		t.Errorf("missing file inside: %+v, %v", c, err)
	}
	os.WriteFile(file, []byte("username: alice\npassword: s3cret\nuri: https://127.0.0.1:1/stable/\nverify_ssl: /ca.pem\ntimeout: 5\n"), 0o600)
	c, err := loadCredentials(file, false)
	want := credentials{URI: "https://127.0.0.1:1/stable", Username: "alice", Password: "s3cret", CAFile: "/ca.pem", Timeout: 5 * time.Second}
	if err != nil || c != want {
		t.Errorf("got %+v, %v", c, err)
	}
	os.WriteFile(file, []byte("password: x\n"), 0o600)
	if _, err := loadCredentials(file, false); err == nil || !strings.Contains(err.Error(), "has no username") {
		t.Errorf("no username: %v", err)
	}
	os.WriteFile(file, []byte("username: a\nverify_ssl: 3\n"), 0o600)
	if _, err := loadCredentials(file, false); err == nil || !strings.Contains(err.Error(), "verify_ssl") {
		t.Errorf("bad verify_ssl: %v", err)
	}
	os.WriteFile(file, []byte("username: a\ntimeout: 0\n"), 0o600)
	if _, err := loadCredentials(file, false); err == nil || !strings.Contains(err.Error(), "timeout: found 0, expected a positive number of seconds") {
		t.Errorf("no timeout: %v", err)
	}
}

func TestNodeCompare(t *testing.T) {
	t.Parallel()
	nodes := []string{"parasilo-10.r", "gros-3.n", "parasilo-2.r", "gros-21.n"}
	slices.SortFunc(nodes, nodeCompare)
	if want := []string{"gros-3.n", "gros-21.n", "parasilo-2.r", "parasilo-10.r"}; !slices.Equal(nodes, want) {
		t.Errorf("got %q", nodes)
	}
}

func TestDockerSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, want, err string
	}{
		{text: "cluster: parasilo\ndocker: install\n", want: "install"},
		{text: "docker: use\n", want: "use"},
		{text: "cluster: parasilo\n", want: ""},
		{text: "cluster: parasilo\ndocker: isntall\n", err: `g5k.yaml:2:9: g5k.docker: found "isntall", expected install (install Docker Engine where it is missing) or use (the default: only use a daemon already there) (did you mean "install"?)`},
	} {
		tb := testbed(t, tc.text)
		c, err := parseConfig(providers.Request{Settings: tb})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.text, err, tc.err)
			}
			if err := (&Provider{}).CheckSettings(tb, nil); err == nil || err.Error() != tc.err {
				t.Errorf("%q: CheckSettings: %v", tc.text, err)
			}
			continue
		}
		if err != nil || c.Docker != tc.want {
			t.Errorf("%q: docker %q, %v; want %q", tc.text, c.Docker, err, tc.want)
		}
	}
}
