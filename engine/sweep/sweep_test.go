package sweep

import (
	"reflect"
	"strings"
	"testing"
)

func TestPoints(t *testing.T) {
	s, err := Parse([]byte(`parameters:
  network.networks.0.delay: [10ms, 50ms]
  layers_services.layers.fog.services.gateway.quantity: [1, 2, 3]
exclude:
- {network.networks.0.delay: 50ms, layers_services.layers.fog.services.gateway.quantity: "3"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ParseParam("workflow_env.default.rate=100,200"); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Points()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	// 3 x 2 x 2 = 12, less the 2 excluded (quantity 3 with 50 ms).
	want := []string{
		"01-quantity=1_delay=10ms_rate=100", "02-quantity=1_delay=10ms_rate=200", "03-quantity=1_delay=50ms_rate=100", "04-quantity=1_delay=50ms_rate=200",
		"05-quantity=2_delay=10ms_rate=100", "06-quantity=2_delay=10ms_rate=200", "07-quantity=2_delay=50ms_rate=100", "08-quantity=2_delay=50ms_rate=200",
		"09-quantity=3_delay=10ms_rate=100", "10-quantity=3_delay=10ms_rate=200",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("points\n got %q\nwant %q", names, want)
	}
	for _, bad := range []Spec{
		{Parameters: map[string][]string{"layers.fog.quantity": {"1"}}},
		{Parameters: map[string][]string{"network.networks.0.rate": {}}},
		{Parameters: map[string][]string{"network.networks.0.rate": {"1gbit"}}, Exclude: []map[string]string{{"network.x": "1"}}},
	} {
		if _, err := bad.Points(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := Parse([]byte("parametres: {}\n")); err == nil {
		t.Error("a misspelt key was accepted")
	}
}

func TestApply(t *testing.T) {
	files := map[string][]byte{
		"layers_services.yaml": []byte("environment: {local: {}}\nlayers:\n- name: fog\n  services:\n  - name: gateway\n    repeat: 1\n- name: edge\n  services: [{name: producer}]\n"),
		"network.yaml":         []byte("networks:\n- {src: fog, dst: edge, delay: 20ms}\n"),
	}
	got, err := Apply(files, Point{Params: map[string]string{
		"layers_services.layers.fog.services.gateway.quantity": "2", // added
		"layers_services.layers.EDGE.services.0.repeat":        "3",
		"network.networks.0.delay":                             "50ms",
		"workflow_env.low.rate":                                "100", // a new file
	}})
	if err != nil {
		t.Fatal(err)
	}
	ls := string(got["layers_services.yaml"])
	for _, want := range []string{"- name: gateway\n          repeat: 1\n          quantity: 2\n", "{name: producer, repeat: 3}"} {
		if !strings.Contains(ls, want) {
			t.Errorf("layers_services.yaml lacks %q:\n%s", want, ls)
		}
	}
	if n := string(got["network.yaml"]); !strings.Contains(n, "delay: 50ms") {
		t.Errorf("network.yaml:\n%s", n)
	}
	if w := string(got["workflow_env.yaml"]); w != "low:\n    rate: 100\n" {
		t.Errorf("workflow_env.yaml: %q", w)
	}
	if string(files["network.yaml"]) != "networks:\n- {src: fog, dst: edge, delay: 20ms}\n" {
		t.Error("Apply changed its input")
	}
	for path, want := range map[string]string{
		"layers_services.layers.cloud.services.0.quantity": `no element named "cloud"`,
		"network.networks.3.delay":                         "index 3 out of a list of 1",
		"network.nets.0.delay":                             `no key "nets"`,
		"layers_services.layers.fog":                       "is a whole element",
	} {
		if _, err := Apply(files, Point{Params: map[string]string{path: "1"}}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}

func TestShortNames(t *testing.T) {
	got := shortNames([]string{"layers_services.layers.edge.services.producer.repeat", "layers_services.layers.fog.services.gateway.repeat", "network.networks.0.delay"})
	if want := []string{"producer.repeat", "gateway.repeat", "0.delay"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
