package ordered

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSetKeepsFirstPlace(t *testing.T) {
	var d Map
	d.Set("zeta", 1)
	d.Set("alpha", 2)
	d.Set("zeta", 3)
	if got := d.Keys(); len(got) != 2 || got[0] != "zeta" || got[1] != "alpha" || d.Len() != 2 {
		t.Fatalf("keys = %v, want [zeta alpha]", got)
	}
	if v, ok := d.Get("zeta"); !ok || v != 3 {
		t.Fatalf("zeta = %v, %v; want 3, true", v, ok)
	}
	if _, ok := d.Get("none"); ok {
		t.Fatal("Get of a missing key found it")
	}
}

func TestMarshalJSONInOrder(t *testing.T) {
	d := Of("zeta", 1, "alpha", []any{1, Of("b", "<x>", "a", nil)}, "mid", map[string]any{"y": 1, "x": 2})
	for _, tc := range []struct {
		name       string
		escapeHTML bool
		want       string
	}{
		{"escaped", true, `{"zeta":1,"alpha":[1,{"b":"\u003cx\u003e","a":null}],"mid":{"x":2,"y":1}}`},
		{"plain", false, `{"zeta":1,"alpha":[1,{"b":"<x>","a":null}],"mid":{"x":2,"y":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(tc.escapeHTML)
			if err := enc.Encode(d); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want+"\n" {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if got, _ := json.Marshal(&Map{}); string(got) != "{}" {
		t.Errorf("empty map = %s, want {}", got)
	}
}

func TestStringLikeAGoMap(t *testing.T) {
	d := Of("zeta", 1, "alpha", []any{1, 2}, "mid", Of("b", "x"))
	item := map[string]any{"key": "k", "value": d}
	if got, want := fmt.Sprint(item), "map[key:k value:map[zeta:1 alpha:[1 2] mid:map[b:x]]]"; got != want {
		t.Errorf("Sprint = %s, want %s", got, want)
	}
}
