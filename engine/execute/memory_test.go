package execute

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/tmpl"
)

// TestMemoryAcrossSteps: what a step registered reads the same in the next
// one, which loads it from state.json: mappings in order, integers as int.
func TestMemoryAcrossSteps(t *testing.T) {
	m := &Memory{
		Registered: map[string]map[string]any{"h": {
			"conf": ordered.Of("zeta", 1, "alpha", []any{1.5, ordered.Of("b", "x", "a", "y")}),
			"r":    map[string]any{"rc": 0, "stdout": "ok"},
		}},
		Jobs: Jobs{"h": {"job-1"}},
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Memory
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{
		"{{ conf | to_json }}":      `{"zeta": 1, "alpha": [1.5, {"b": "x", "a": "y"}]}`,
		"{{ r.rc }} {{ r.stdout }}": "0 ok",
	} {
		tpl, err := tmpl.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.Render(back.Registered["h"]); err != nil || got != want {
			t.Errorf("%s after the round trip = %q, %v; want %q", src, got, err, want)
		}
	}
	if !reflect.DeepEqual(back.Jobs, m.Jobs) {
		t.Errorf("jobs = %v, want %v", back.Jobs, m.Jobs)
	}
	var empty Memory
	if err := json.Unmarshal([]byte(`{}`), &empty); err != nil || empty.Registered != nil || empty.Jobs != nil {
		t.Errorf("empty memory = %+v, %v", empty, err)
	}
	if err := json.Unmarshal([]byte(`{"registered": {"h": {"x": [1,}}}`), &empty); err == nil {
		t.Error("broken JSON read without an error")
	}
}
