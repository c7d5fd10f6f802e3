package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// module describes the arguments a task module takes, with Ansible's names.
type module struct {
	args     []string
	required []string
	// freeForm modules take their main argument as plain text, into
	// "cmd"; the options (freeFormOptions) written key=value in it are
	// taken out, as Ansible does (shell: make chdir=src creates=bin/app).
	freeForm  bool
	oneOf     []string            // exactly one of these
	anyOf     []string            // at least one of these
	exclusive [][]string          // at most one of each group
	bools     []string            // arguments normalised to booleans (validate_checksum: no)
	choices   map[string][]string // the values an argument may take, when written as is
	aliases   map[string]string   // other names Ansible accepts: alias -> argument
	anyKeys   bool                // set_fact: any variable name is an argument
}

// fileArgs are the arguments of the modules that create files, as
// Ansible's add_file_common_args.
var fileArgs = []string{"mode", "owner", "group"}

func withFileArgs(args ...string) []string { return append(args, fileArgs...) }

var commandOpts = []string{"chdir", "creates", "removes", "executable", "stdin", "stdin_add_newline", "strip_empty_ends"}

// Modules e2c runs.
var modules = map[string]module{
	"debug":   {args: []string{"msg", "var"}, exclusive: [][]string{{"msg", "var"}}},
	"shell":   {args: append([]string{"cmd"}, commandOpts...), required: []string{"cmd"}, freeForm: true, bools: []string{"stdin_add_newline", "strip_empty_ends"}},
	"command": {args: append([]string{"cmd", "argv"}, commandOpts...), oneOf: []string{"cmd", "argv"}, freeForm: true, bools: []string{"stdin_add_newline", "strip_empty_ends"}},
	"raw":     {args: []string{"cmd", "executable"}, required: []string{"cmd"}, freeForm: true},
	"script":  {args: []string{"cmd", "chdir", "creates", "removes", "executable"}, required: []string{"cmd"}, freeForm: true},
	"copy": {args: withFileArgs("src", "content", "dest", "force"), required: []string{"dest"}, oneOf: []string{"src", "content"},
		bools: []string{"force"}},
	"template": {args: withFileArgs("src", "dest", "force"), required: []string{"src", "dest"}, bools: []string{"force"}},
	"fetch": {args: []string{"src", "dest", "flat", "validate_checksum", "fail_on_missing"}, required: []string{"src", "dest"},
		bools: []string{"flat", "validate_checksum", "fail_on_missing"}},
	"wait_for": {args: []string{"host", "port", "path", "timeout", "delay", "state"}, oneOf: []string{"port", "path"},
		choices: map[string][]string{"state": {"started", "stopped", "present", "absent"}}},
	"file": {args: withFileArgs("path", "state", "src", "recurse", "force", "follow"), required: []string{"path"},
		aliases: map[string]string{"dest": "path", "name": "path"}, bools: []string{"recurse", "force", "follow"},
		choices: map[string][]string{"state": {"file", "directory", "link", "hard", "touch", "absent"}}},
	"lineinfile": {args: withFileArgs("path", "line", "regexp", "search_string", "state", "insertafter", "insertbefore", "create", "backrefs", "firstmatch"),
		required: []string{"path"}, aliases: map[string]string{"dest": "path", "destfile": "path", "name": "path", "regex": "regexp", "value": "line"},
		exclusive: [][]string{{"insertbefore", "insertafter"}, {"regexp", "search_string"}, {"backrefs", "search_string"}},
		bools:     []string{"create", "backrefs", "firstmatch"}, choices: map[string][]string{"state": {"present", "absent"}}},
	"blockinfile": {args: withFileArgs("path", "block", "marker", "marker_begin", "marker_end", "state", "insertafter", "insertbefore", "create"),
		required: []string{"path"}, aliases: map[string]string{"dest": "path", "destfile": "path", "name": "path", "content": "block"},
		exclusive: [][]string{{"insertbefore", "insertafter"}}, bools: []string{"create"}, choices: map[string][]string{"state": {"present", "absent"}}},
	"stat": {args: []string{"path", "follow", "get_checksum", "checksum_algorithm", "get_mime", "get_attributes"}, required: []string{"path"},
		aliases: map[string]string{"dest": "path", "name": "path", "checksum": "checksum_algorithm", "checksum_algo": "checksum_algorithm",
			"mime": "get_mime", "mime_type": "get_mime", "mime-type": "get_mime", "attr": "get_attributes", "attributes": "get_attributes"},
		bools:   []string{"follow", "get_checksum", "get_mime", "get_attributes"},
		choices: map[string][]string{"checksum_algorithm": {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}}},
	"set_fact": {args: []string{"cacheable"}, anyKeys: true, bools: []string{"cacheable"}},
	"assert": {args: []string{"that", "fail_msg", "success_msg", "quiet"}, required: []string{"that"},
		aliases: map[string]string{"msg": "fail_msg"}, bools: []string{"quiet"}},
	"fail": {args: []string{"msg"}},
	"get_url": {args: withFileArgs("url", "dest", "checksum", "force", "timeout", "headers", "validate_certs"), required: []string{"url", "dest"},
		bools: []string{"force", "validate_certs"}},
	"uri": {args: []string{"url", "method", "body", "body_format", "headers", "status_code", "return_content", "dest", "timeout", "validate_certs", "follow_redirects"},
		required: []string{"url"}, bools: []string{"return_content", "validate_certs"},
		choices: map[string][]string{"body_format": {"raw", "json"}, "follow_redirects": {"all", "none", "safe", "yes", "no"}}},
	"unarchive": {args: withFileArgs("src", "dest", "remote_src", "creates"), required: []string{"src", "dest"}, bools: []string{"remote_src"}},
	"synchronize": {args: []string{"src", "dest", "mode", "delete"}, required: []string{"src", "dest"}, bools: []string{"delete"},
		choices: map[string][]string{"mode": {"push", "pull"}}},
	"apt": {args: []string{"name", "state", "update_cache", "cache_valid_time", "deb", "purge", "install_recommends"},
		aliases: map[string]string{"package": "name", "pkg": "name", "update-cache": "update_cache", "install-recommends": "install_recommends"},
		anyOf:   []string{"name", "deb", "update_cache"}, bools: []string{"update_cache", "purge", "install_recommends"},
		choices: map[string][]string{"state": {"present", "absent", "latest", "installed", "removed"}}},
	"package": {args: []string{"name", "state"}, required: []string{"name", "state"},
		choices: map[string][]string{"state": {"present", "absent", "latest", "installed", "removed"}}},
	"systemd": {args: []string{"name", "state", "enabled", "daemon_reload"},
		aliases: map[string]string{"service": "name", "unit": "name", "daemon-reload": "daemon_reload"},
		anyOf:   []string{"name", "daemon_reload"}, bools: []string{"enabled", "daemon_reload"},
		choices: map[string][]string{"state": {"started", "stopped", "restarted", "reloaded"}}},
	"service": {args: []string{"name", "state", "enabled"}, required: []string{"name"}, bools: []string{"enabled"},
		choices: map[string][]string{"state": {"started", "stopped", "restarted", "reloaded"}}},
	"user": {args: []string{"name", "state", "uid", "group", "groups", "append", "shell", "home", "create_home", "system", "comment", "remove"},
		required: []string{"name"}, aliases: map[string]string{"user": "name", "createhome": "create_home"},
		bools: []string{"append", "create_home", "system", "remove"}, choices: map[string][]string{"state": {"present", "absent"}}},
}

// moduleAliases are other names of modules, as Ansible routes them.
var moduleAliases = map[string]string{
	"systemd_service":           "systemd",
	"ansible.posix.synchronize": "synchronize",
}

// refused are modules real task lists use that e2c does not run, and why.
var refused = map[string]string{
	"community.docker.docker_container": "containers come with the services of layers_services.yaml (issue 12), not as a task module yet",
	"docker_container":                  "containers come with the services of layers_services.yaml (issue 12), not as a task module yet",
}

// Sets lists the variables the task gives its host when it runs: its
// register name and, for set_fact, the facts it sets.
func (t Task) Sets() []string {
	var names []string
	if t.Register != "" {
		names = append(names, t.Register)
	}
	if t.Module == "set_fact" {
		for _, k := range slices.Sorted(maps.Keys(t.Args)) {
			if k != "cacheable" {
				names = append(names, k)
			}
		}
	}
	return names
}

// ModuleNames lists the supported modules, sorted.
func ModuleNames() []string { return slices.Sorted(maps.Keys(modules)) }

// moduleName accepts Ansible's fully qualified module names and aliases.
func moduleName(key string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(key, "ansible.builtin."), "ansible.legacy.")
	if a, ok := moduleAliases[name]; ok {
		return a
	}
	return name
}

// unknownModule says why key is neither a module nor a keyword.
func unknownModule(key string) string {
	if why, ok := refused[moduleName(key)]; ok {
		return fmt.Sprintf("task: module %q is not supported: %s", key, why)
	}
	return fmt.Sprintf("task: unknown module or keyword %q%s; supported modules: %s; task keywords: %s", key,
		suggest.Hint(moduleName(key), append(ModuleNames(), taskKeys...)), strings.Join(ModuleNames(), ", "), strings.Join(taskKeys, ", "))
}

// ModuleBool reads a boolean as Ansible's modules do: a boolean, 0 or 1,
// or text as ParseBool reads it.
func ModuleBool(v any) (value, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x == 1, x == 0 || x == 1
	case float64:
		return x == 1, x == 0 || x == 1
	case string:
		return ParseBool(x)
	}
	return false, false
}

// argReader collects the arguments of a call of a module, checking each
// as it comes, and recording its position in t as "args.<argument>"
// (aliases give the argument's own name).
type argReader struct {
	d     *decoder
	name  string
	spec  module
	t     Node
	args  map[string]any
	given map[string]bool // in all sources
	seen  map[string]bool // in the current source (args: or the module's own)
}

func (d *decoder) argReader(name string, t Node) *argReader {
	return &argReader{d: d, name: name, spec: modules[name], t: t, args: map[string]any{}, given: map[string]bool{}}
}

// allowed lists the argument names and aliases the module takes.
func (r *argReader) allowed() []string {
	return slices.Concat(r.spec.args, slices.Sorted(maps.Keys(r.spec.aliases)))
}

func (r *argReader) set(key string, at Pos, value any, n *yaml.Node) {
	if a, ok := r.spec.aliases[key]; ok {
		key = a
	}
	if r.seen[key] {
		r.d.errs.At(at, "%s: %s is given twice (under another of its names)", r.name, key)
	}
	r.seen[key], r.given[key] = true, true
	r.t.keys["args."+key] = at
	r.args[key] = value
	s, literal := value.(string)
	if n != nil && n.Kind == yaml.ScalarNode && !isNull(n) {
		s, literal = n.Value, true
	}
	if !literal || strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		return // a template: checked when it runs
	}
	if contains(r.spec.bools, key) {
		b, ok := ModuleBool(s)
		if !ok {
			r.d.errs.At(at, "%s.%s: found %q, expected a boolean (yes, no, true, false, 1, 0)", r.name, key, s)
		}
		r.args[key] = b
	}
	if choices := r.spec.choices[key]; choices != nil && !contains(choices, s) {
		r.d.errs.At(at, "%s.%s: unknown value %q%s; expected one of: %s", r.name, key, s, suggest.Hint(s, choices), strings.Join(choices, ", "))
	}
}

// mapping reads arguments written as a mapping.
func (r *argReader) mapping(v *yaml.Node) {
	r.seen = map[string]bool{}
	keys := r.allowed()
	if r.spec.anyKeys {
		keys = nil
	}
	fs, _ := r.d.fields(v, r.name, keys)
	for _, g := range fs {
		r.set(g.key, r.d.pos(g.v), r.d.value(g.v, r.name+"."+g.key), g.v)
	}
}

// text reads arguments written as text: key=value pairs, and for the
// free-form modules (shell, command, ...) the command line with Ansible's
// options (chdir=, creates=, ...) taken out of it, so that they never run
// as part of it.
func (r *argReader) text(text string, v *yaml.Node) {
	r.seen = map[string]bool{}
	at := r.d.pos(v)
	options, raw, err := parseKV(text, r.spec.freeForm)
	if err != nil {
		r.d.errorf(v, "%s: %v", r.name, err)
		return
	}
	switch {
	case raw != "" && r.spec.freeForm:
		r.set("cmd", at, raw, nil)
	case raw != "":
		r.d.errorf(v, "%s: %q is not a key=value pair; write the arguments as key=value pairs or as a mapping (%s)", r.name, raw, strings.Join(r.spec.args, ", "))
	}
	allowed := r.allowed()
	for _, k := range slices.Sorted(maps.Keys(options)) {
		if !r.spec.anyKeys && !contains(allowed, k) || r.spec.freeForm && k == "cmd" {
			r.d.errorf(v, "%s: unknown argument %q (from %s=... in %q)%s; e2c's %s takes: %s", r.name, k, k, text,
				suggest.Hint(k, allowed), r.name, strings.Join(r.spec.args, ", "))
			continue
		}
		r.set(k, at, options[k], nil)
	}
}

// check reports what the arguments as a whole lack or have too much of.
func (r *argReader) check(at Pos) {
	spec, name := r.spec, r.name
	if spec.anyKeys {
		for _, k := range slices.Sorted(maps.Keys(r.args)) {
			if k != "cacheable" && !identRE.MatchString(k) {
				r.d.errs.At(r.t.At("args."+k), "%s: %q is not a valid variable name (letters, digits and '_', not starting with a digit)", name, k)
			}
		}
	}
	missing := false
	for _, k := range spec.required {
		if !r.given[k] {
			r.d.errs.At(at, "%s: missing required key %q", name, k)
			missing = true
		}
	}
	count := func(keys []string) (n int) {
		for _, k := range keys {
			if r.given[k] {
				n++
			}
		}
		return n
	}
	if len(spec.oneOf) > 0 && count(spec.oneOf) != 1 && !missing {
		r.d.errs.At(at, "%s: expected exactly one of %s", name, strings.Join(spec.oneOf, ", "))
	}
	if len(spec.anyOf) > 0 && count(spec.anyOf) == 0 {
		r.d.errs.At(at, "%s: expected at least one of %s", name, strings.Join(spec.anyOf, ", "))
	}
	for _, group := range spec.exclusive {
		if count(group) > 1 {
			r.d.errs.At(at, "%s: %s cannot be given together", name, strings.Join(group, " and "))
		}
	}
}
