package providers_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

// fake is a provider whose block takes one key, size, and which records
// the instances it was asked to check.
type fake struct{ checked *[]string }

func (fake) Reserve(context.Context, providers.Request) (*providers.Reservation, error) {
	return nil, nil
}
func (fake) Release(context.Context, *providers.Reservation, io.Writer) error { return nil }

func (f fake) CheckSettings(tb *schema.Testbed, instances []plan.Instance) error {
	for _, in := range instances {
		*f.checked = append(*f.checked, in.ID())
	}
	var s struct {
		Size int `yaml:"size"`
	}
	return tb.Decode(&s)
}

// TestSetCheck: a set knows only its own providers, and each of them
// checks its own block and the instances placed on its testbed.
func TestSetCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, env, want string
		checked         []string
	}{
		{"valid", "{rack: {size: 2}, other: {}}", "", []string{"a.s.1"}},
		{"own key typo", "{rack: {sise: 2}, other: {}}", `x.yaml:1:22: rack: unknown key "sise" (did you mean "size"?); expected one of: size`, []string{"a.s.1"}},
		{"not in the set", "{rack: {}, other: {}, local: {}}", `x.yaml:1:36: environment: unknown testbed "local"; expected a testbed (other, rack) or one of: job_name, walltime, cluster`, []string{"a.s.1"}},
		{"near miss", "{rak: {}, other: {}}", `x.yaml:1:15: environment: unknown testbed "rak" (did you mean "rack"?); expected a testbed (other, rack) or one of: job_name, walltime, cluster`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var checked []string
			set := providers.Set{"rack": fake{&checked}, "other": fake{new([]string)}}
			ls, err := schema.DecodeLayersServices("x.yaml", []byte("environment: "+c.env+"\nlayers: [{name: a, services: [{name: s}, {name: t, environment: other}]}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := set.Check(ls.Environment, plan.Expand(ls)); err != nil {
				got = err.Error()
			}
			if got != c.want || strings.Join(checked, " ") != strings.Join(c.checked, " ") {
				t.Errorf("got %q, checked %v\nwant %q, checked %v", got, checked, c.want, c.checked)
			}
		})
	}
	if _, err := (providers.Set{"rack": fake{}}).Get("g5k"); err == nil || err.Error() != `no provider for testbed "g5k" (available: rack)` {
		t.Errorf("Get of a testbed not in the set: %v", err)
	}
}
