// Package servicedef finds the definition of a service by name: the
// scenario's own services/ folder first, then the definitions shipped with
// e2c. A service without a definition is a plain service (hosts only).
package servicedef

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"

	"github.com/e2c-dev/e2c/schema"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtin returns the definitions shipped with e2c, by name.
func Builtin() map[string]*schema.ServiceDef {
	defs := map[string]*schema.ServiceDef{}
	files, _ := fs.Glob(builtinFS, "builtin/*.yaml")
	for _, f := range files {
		data, _ := builtinFS.ReadFile(f)
		def, err := schema.DecodeServiceDef(path.Join("(built-in)", path.Base(f)), data)
		if err != nil {
			panic(fmt.Sprintf("built-in service definition %s: %v", f, err)) // a bug in e2c itself
		}
		defs[def.Name] = def
	}
	return defs
}

// Registry maps lower-case service names to definitions.
type Registry map[string]*schema.ServiceDef

// New returns the built-in definitions overridden by the scenario's own.
func New(scenario []*schema.ServiceDef) Registry {
	r := Registry(Builtin())
	for _, d := range scenario {
		r[d.Name] = d
	}
	return r
}

// Names lists the defined services, sorted.
func (r Registry) Names() []string { return slices.Sorted(maps.Keys(r)) }
