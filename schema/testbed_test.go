package schema

import (
	"encoding/json"
	"testing"
	"time"
)

// settings is a provider's own type, as Decode reads it.
type settings struct {
	Node
	Cluster  string            `yaml:"cluster"`
	Types    []string          `yaml:"job_type"`
	Walltime Walltime          `yaml:"walltime"`
	Labels   map[string]string `yaml:"labels"`
	Hosts    []struct {
		Node
		Address string `yaml:"address"`
	} `yaml:"hosts"`
}

// TestTestbedDecode: the block is read into the provider's type, and each
// problem is reported at its position with a hint for a near miss.
func TestTestbedDecode(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"valid", "{cluster: c, job_type: deploy, walltime: '01:30:00', labels: {a: 1}, hosts: [{address: h}]}", ""},
		{"empty", "", ""},
		{"unknown key", "{clustr: c}", `x.yaml:1:2: tb: unknown key "clustr" (did you mean "cluster"?); expected one of: cluster, job_type, walltime, labels, hosts`},
		{"nested unknown key", "hosts:\n- {adress: h}", `x.yaml:2:4: tb.hosts: unknown key "adress" (did you mean "address"?); expected one of: address`},
		{"not a mapping", "[a, b]", "x.yaml:1:1: tb: found a list, expected a mapping"},
		{"bad walltime", "{walltime: 90}", `x.yaml:1:12: tb.walltime: found "90", expected HH:MM:SS such as "01:30:00" (hours may exceed 23)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb, err := TestbedBlock("x.yaml", "tb", c.text)
			if err != nil {
				t.Fatal(err)
			}
			var s settings
			got := ""
			if err := tb.Decode(&s); err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if c.name == "valid" && (s.Cluster != "c" || len(s.Types) != 1 || time.Duration(s.Walltime) != 90*time.Minute ||
				s.Labels["a"] != "1" || s.Hosts[0].Address != "h" || s.At("hosts") != (Pos{"x.yaml", 1, 77}) || !s.Has("labels")) {
				t.Errorf("decoded %+v, hosts at %v", s, s.At("hosts"))
			}
		})
	}
}

// TestTestbedData: the run's record keeps the block as written, an empty
// block as {}.
func TestTestbedData(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"{cluster: c, job_type: [a], monitor: {zeta: 1, alpha: 2}}", `{"cluster":"c","job_type":["a"],"monitor":{"zeta":1,"alpha":2}}`},
		{"", `{}`},
		{"{}", `{}`},
	} {
		tb, err := TestbedBlock("x.yaml", "tb", c.text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := json.Marshal(tb.Data()); err != nil || string(got) != c.want {
			t.Errorf("%q: data %s (%v), want %s", c.text, got, err, c.want)
		}
	}
	if got, _ := json.Marshal((&Testbed{Name: "local"}).Data()); string(got) != "{}" {
		t.Errorf("a block built by hand: %s, want {}", got)
	}
}
