package schema

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// yaml11Cases are plain and quoted scalars with what PyYAML (Ansible's and
// E2Clab's loader) makes of them.
var yaml11Cases = []struct {
	text string
	want any
}{
	{"no", false}, {"No", false}, {"NO", false}, {"off", false}, {"Off", false}, {"OFF", false}, {"false", false}, {"FALSE", false},
	{"yes", true}, {"Yes", true}, {"on", true}, {"ON", true}, {"true", true}, {"True", true},
	{"y", "y"}, {"n", "n"}, {"Y", "Y"}, {"yEs", "yEs"}, {"tRue", "tRue"}, {"nO", "nO"},
	{"0644", 420}, {"00", 0}, {"0_7", 7}, {"-017", -15}, {"0o644", "0o644"}, {"09", "09"}, {"0x1F", 31}, {"0b101", 5},
	{"1_000", 1000}, {"+12", 12}, {"-0", 0}, {"0", 0},
	{"1e3", "1e3"}, {"1.0e+3", 1000.0}, {"1.0e3", "1.0e3"}, {"1.", 1.0}, {".5", 0.5}, {"-1_0.5", -10.5},
	{"2024-01-02", "2024-01-02"}, {"~", nil}, {"null", nil}, {"Null", nil}, {"", nil}, {"nULL", "nULL"},
	{`"no"`, "no"}, {`'0644'`, "0644"}, {"!!str 0644", "0644"}, {"!!str yes", "yes"}, {"!!int '12'", 12},
	{"text", "text"}, {"1.2.3", "1.2.3"}, {"12:30:00x", "12:30:00x"},
}

func decodeVar(t *testing.T, text string) (any, error) {
	t.Helper()
	w, err := DecodeWorkflow("x.yaml", []byte("- hosts: a\n  vars:\n    v: "+text+"\n"))
	if err != nil {
		return nil, err
	}
	return w.Plays[0].Vars["v"], nil
}

func TestYAML11Scalars(t *testing.T) {
	for _, tt := range yaml11Cases {
		got, err := decodeVar(t, tt.text)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v (%v), want %#v", tt.text, got, err, tt.want)
		}
	}
}

// TestYAML11AsPyYAML checks the table against PyYAML itself, where it is
// installed (Debian's python3-yaml comes with ansible-core).
func TestYAML11AsPyYAML(t *testing.T) {
	var docs []string
	for _, tt := range yaml11Cases {
		docs = append(docs, "v: "+tt.text)
	}
	in, _ := json.Marshal(docs)
	cmd := exec.Command(ansiblePython, "-c", `import json, sys, yaml
print(json.dumps([yaml.safe_load(d)["v"] for d in json.load(sys.stdin)], default=str))`)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("PyYAML not available to compare with (python3 -c 'import yaml': %v)", err)
	}
	var want []any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, tt := range yaml11Cases {
		got, err := decodeVar(t, tt.text)
		if err != nil {
			t.Errorf("%s: %v", tt.text, err)
			continue
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(want[i])
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%s: e2c reads %s, PyYAML %s", tt.text, gotJSON, wantJSON)
		}
	}
}

func TestYAML11Refused(t *testing.T) {
	for text, want := range map[string]string{
		"1:30":                 `x.yaml:3:8: play.vars.v: found 1:30, which YAML 1.1 (Ansible, E2Clab) reads as the number 90 (base 60); quote it for the text "1:30"`,
		"-1:30.5":              "reads as the number -90.5 (base 60)",
		".inf":                 "expected a finite number",
		"-.INF":                "expected a finite number",
		".nan":                 "expected a finite number",
		"99999999999999999999": "a whole number beyond 64 bits",
		"!unsafe '{{ x }}'":    "found the tag !unsafe, which e2c does not support",
	} {
		if _, err := decodeVar(t, text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", text, err, want)
		}
	}
}

// TestYAML11Everywhere checks that service keys, workflow_env values and
// module arguments read YAML 1.1 too, and keywords Ansible's booleans.
func TestYAML11Everywhere(t *testing.T) {
	ls, err := DecodeLayersServices("x.yaml", []byte("environment: {g5k: }\nlayers: [{name: a, services: [{name: s, debug: no, env: {fast: on}}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := ls.Layers[0].Services[0]; s.Extra["debug"] != false || s.Env["fast"] != true {
		t.Errorf("service = %+v", s)
	}
	env, err := DecodeWorkflowEnv("x.yaml", []byte("low: {verbose: off, mode: 0755}\n"))
	if err != nil || env["low"].Values["verbose"] != false || env["low"].Values["mode"] != 0o755 {
		t.Errorf("workflow_env = %+v, %v", env, err)
	}
	w, err := DecodeWorkflow("x.yaml", []byte("- hosts: a\n  become: y\n  launch:\n  - copy: {src: a, dest: b, mode: 0644}\n    ignore_errors: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := w.Plays[0]; !p.Become || p.Tasks[Launch][0].Args["mode"] != 420 || !p.Tasks[Launch][0].IgnoreErrors {
		t.Errorf("play = %+v", p)
	}
}
