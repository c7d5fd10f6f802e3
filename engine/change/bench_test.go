package change

import (
	"testing"

	"github.com/e2c-dev/e2c/schema"
)

// BenchmarkPlans compares the plans of an apply that scales 1000 producers
// to 1032 (the 32 added instances).
func BenchmarkPlans(b *testing.B) {
	producers := func(n string) edit { return edit{schema.LayersServicesFile, "quantity: 4", "quantity: " + n} }
	before := build(b, scenario(b, producers("1000")), nil)
	after := build(b, scenario(b, producers("1032")), before)
	for b.Loop() {
		if d := Plans(before, after); len(d.Added) != 32 {
			b.Fatalf("added %d hosts, want 32", len(d.Added))
		}
	}
}
