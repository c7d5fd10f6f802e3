package schema

import (
	"reflect"
	"strings"
	"testing"
)

func TestSlicePick(t *testing.T) {
	tests := []struct {
		slice string
		n     int
		want  []int
	}{
		{"0", 3, []int{0}},
		{"0", 0, nil},
		{"-1", 3, []int{2}},
		{"5", 3, nil},
		{"1:", 3, []int{1, 2}},
		{"1:", 1, nil},
		{":", 2, []int{0, 1}},
		{":2", 3, []int{0, 1}},
		{"-2:", 3, []int{1, 2}},
		{"0:-1", 3, []int{0, 1}},
	}
	for _, tt := range tests {
		sl, err := ParseSlice(tt.slice)
		if err != nil {
			t.Fatalf("ParseSlice(%q): %v", tt.slice, err)
		}
		if got := sl.Pick(tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q.Pick(%d) = %v, want %v", tt.slice, tt.n, got, tt.want)
		}
	}
	for _, bad := range []string{"", "a", "1:b", "first"} {
		if _, err := ParseSlice(bad); err == nil {
			t.Errorf("ParseSlice(%q) accepted", bad)
		}
	}
}

func TestDecodeServiceDefErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"name: x\nsubservices:\n- {name: a}\n- {name: a}\n", `x.yaml:4:10: subservice "a" is already defined at line 3`},
		{"name: x\nsubservices:\n- {name: a, hosts: first}\n", `x.yaml:3:20: hosts: found "first", expected machine positions`},
		{"name: x\nport: 70000\n", "x.yaml:2:7: port: found 70000, expected a whole number from 1 to 65535"},
		{"name: x\nprot: 80\n", `unknown key "prot" (did you mean "port"?)`},
		{"description: no name\n", `missing required key "name"`},
	}
	for _, tt := range tests {
		_, err := DecodeServiceDef("x.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeServiceDef(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
