package schema

import (
	"maps"
	"slices"
)

// module describes the arguments a task module takes.
type module struct {
	args     []string
	required []string
	freeForm bool     // takes its main argument as plain text, into "cmd"
	oneOf    []string // exactly one of these
	bools    []string // arguments normalised to booleans (validate_checksum: no)
}

// Modules e2c runs, with Ansible's argument names.
var modules = map[string]module{
	"debug":    {args: []string{"msg", "var"}, oneOf: []string{"msg", "var"}},
	"shell":    {args: []string{"cmd", "chdir", "creates", "removes"}, required: []string{"cmd"}, freeForm: true},
	"command":  {args: []string{"cmd", "chdir", "creates", "removes"}, required: []string{"cmd"}, freeForm: true},
	"copy":     {args: []string{"src", "dest", "mode"}, required: []string{"src", "dest"}},
	"fetch":    {args: []string{"src", "dest", "flat", "validate_checksum", "fail_on_missing"}, required: []string{"src", "dest"}, bools: []string{"flat", "validate_checksum", "fail_on_missing"}},
	"template": {args: []string{"src", "dest", "mode"}, required: []string{"src", "dest"}},
	"wait_for": {args: []string{"host", "port", "path", "timeout", "delay", "state"}, oneOf: []string{"port", "path"}},
}

// ModuleNames lists the supported modules, sorted.
func ModuleNames() []string { return slices.Sorted(maps.Keys(modules)) }
