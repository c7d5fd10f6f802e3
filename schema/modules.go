package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/suggest"
	"gopkg.in/yaml.v3"
)

// module describes the arguments a task module takes, with Ansible's names.
type module struct {
	args     []string
	required []string
	// freeForm modules take their main argument as plain text, into
	// "cmd"; the options of freeOpts written key=value in it are taken
	// out, as Ansible does (shell: make chdir=src creates=bin/app).
	freeForm  bool
	freeOpts  []string
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
	"shell":   {args: append([]string{"cmd"}, commandOpts...), required: []string{"cmd"}, freeForm: true, freeOpts: commandOpts, bools: []string{"stdin_add_newline", "strip_empty_ends"}},
	"command": {args: append([]string{"cmd", "argv"}, commandOpts...), oneOf: []string{"cmd", "argv"}, freeForm: true, freeOpts: commandOpts, bools: []string{"stdin_add_newline", "strip_empty_ends"}},
	"raw":     {args: []string{"cmd", "executable"}, required: []string{"cmd"}, freeForm: true, freeOpts: []string{"executable"}},
	"script": {args: []string{"cmd", "chdir", "creates", "removes", "executable"}, required: []string{"cmd"}, freeForm: true,
		freeOpts: []string{"chdir", "creates", "removes", "executable"}},
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

// ModuleBool reads a boolean as Ansible's modules do: true, yes, on, y,
// t, 1 and their opposites, in any case.
func ModuleBool(v any) (value, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x == 1, x == 0 || x == 1
	case float64:
		return x == 1, x == 0 || x == 1
	case string:
		switch strings.ToLower(x) {
		case "true", "yes", "on", "y", "t", "1":
			return true, true
		case "false", "no", "off", "n", "f", "0":
			return false, true
		}
	}
	return false, false
}

// moduleArgs reads the arguments of a call of module name, recording each
// one's position in t as "args.<argument>" (aliases give the argument's
// own name).
func (d *decoder) moduleArgs(name string, v *yaml.Node, t Node) map[string]any {
	spec := modules[name]
	args := map[string]any{}
	given := map[string]bool{}
	set := func(key string, at Pos, value any, n *yaml.Node) {
		if a, ok := spec.aliases[key]; ok {
			key = a
		}
		if given[key] {
			d.errs.At(at, "%s: %s is given twice (under another of its names)", name, key)
		}
		given[key] = true
		t.keys["args."+key] = at
		args[key] = value
		s, literal := value.(string)
		if n != nil && n.Kind == yaml.ScalarNode && !isNull(n) {
			s, literal = n.Value, true
		}
		if !literal || strings.Contains(s, "{{") || strings.Contains(s, "{%") {
			return // a template: checked when it runs
		}
		if contains(spec.bools, key) {
			b, ok := ModuleBool(s)
			if !ok {
				d.errs.At(at, "%s.%s: found %q, expected a boolean (yes, no, true, false, 1, 0)", name, key, s)
			}
			args[key] = b
		}
		if choices := spec.choices[key]; choices != nil && !contains(choices, s) {
			d.errs.At(at, "%s.%s: unknown value %q%s; expected one of: %s", name, key, s, suggest.Hint(s, choices), strings.Join(choices, ", "))
		}
	}
	allowed := slices.Concat(spec.args, slices.Sorted(maps.Keys(spec.aliases)))
	switch {
	case spec.freeForm && v.Kind == yaml.ScalarNode && !isNull(v):
		opts, rest := parseKV(v.Value, spec.freeOpts)
		for _, o := range opts {
			set(o.key, d.pos(v), o.value, nil)
		}
		set("cmd", d.pos(v), rest, nil)
	case v.Kind == yaml.ScalarNode && !isNull(v):
		opts, rest := parseKV(v.Value, nil)
		if strings.TrimSpace(rest) != "" {
			d.errorf(v, "%s: found %q, expected key=value arguments (%s) or a mapping", name, rest, strings.Join(spec.args, ", "))
			break
		}
		for _, o := range opts {
			if !spec.anyKeys && !contains(allowed, o.key) {
				d.errorf(v, "%s: unknown argument %q%s; expected one of: %s", name, o.key, suggest.Hint(o.key, allowed), strings.Join(spec.args, ", "))
				continue
			}
			set(o.key, d.pos(v), o.value, nil)
		}
	case v.Kind == yaml.MappingNode:
		keys := allowed
		if spec.anyKeys {
			keys = nil
		}
		fs, _ := d.fields(v, name, keys)
		for _, g := range fs {
			set(g.key, d.pos(g.v), d.value(g.v, name+"."+g.key), g.v)
		}
	case isNull(v):
	default:
		form := "a mapping of arguments"
		if spec.freeForm {
			form = "a command line or " + form
		}
		d.errorf(v, "%s: found %s, expected %s (%s)", name, describe(v), form, strings.Join(spec.args, ", "))
		return args
	}
	if spec.anyKeys {
		for k := range args {
			if k != "cacheable" && !identRE.MatchString(k) {
				d.errs.At(t.At("args."+k), "%s: %q is not a valid variable name (letters, digits and '_', not starting with a digit)", name, k)
			}
		}
	}
	at := d.pos(v)
	for _, k := range spec.required {
		if !given[k] {
			d.errs.At(at, "%s: missing required key %q", name, k)
		}
	}
	count := func(keys []string) (n int) {
		for _, k := range keys {
			if given[k] {
				n++
			}
		}
		return n
	}
	if len(spec.oneOf) > 0 && count(spec.oneOf) != 1 {
		d.errs.At(at, "%s: expected exactly one of %s", name, strings.Join(spec.oneOf, ", "))
	}
	if len(spec.anyOf) > 0 && count(spec.anyOf) == 0 {
		d.errs.At(at, "%s: expected at least one of %s", name, strings.Join(spec.anyOf, ", "))
	}
	for _, group := range spec.exclusive {
		if count(group) > 1 {
			d.errs.At(at, "%s: %s cannot be given together", name, strings.Join(group, " and "))
		}
	}
	return args
}

// option is a key=value word of a module's text.
type option struct{ key, value string }

// parseKV reads key=value words as Ansible's parse_kv does: words split on
// blanks outside quotes and outside {{ }}, {% %} and {# #}; a value's
// outer quotes are removed. With only set, the other words (and the keys
// not in only) stay in rest, as written: the free form of a command, whose
// text is kept whole when it has no option.
func parseKV(s string, only []string) (opts []option, rest string) {
	var b strings.Builder
	last := 0
	for _, w := range splitArgs(s) {
		word := s[w[0]:w[1]]
		k, v, ok := cutUnescaped(word, '=')
		if !ok || k == "" || only != nil && !contains(only, k) {
			continue
		}
		opts = append(opts, option{strings.TrimSpace(k), unquote(strings.TrimSpace(v))})
		b.WriteString(s[last:w[0]])
		last = w[1]
	}
	b.WriteString(s[last:])
	if len(opts) == 0 {
		return nil, s
	}
	return opts, strings.TrimSpace(b.String())
}

// splitArgs returns the start and end of the words of s: runs of
// characters separated by blanks outside quotes and Jinja blocks.
func splitArgs(s string) [][2]int {
	var words [][2]int
	start := -1
	var quote byte
	depth := 0 // open {{, {% or {#
	for i := 0; i < len(s); i++ {
		c := s[i]
		blank := c == ' ' || c == '\t' || c == '\n' || c == '\r'
		if quote == 0 && depth == 0 && blank {
			if start >= 0 {
				words = append(words, [2]int{start, i})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case i+1 < len(s) && c == '{' && strings.IndexByte("{%#", s[i+1]) >= 0:
			depth++
			i++
		case depth > 0 && i+1 < len(s) && strings.IndexByte("}%#", c) >= 0 && s[i+1] == '}':
			depth--
			i++
		case depth == 0 && (c == '"' || c == '\''):
			quote = c
		}
	}
	if start >= 0 {
		words = append(words, [2]int{start, len(s)})
	}
	return words
}

// cutUnescaped cuts s at the first sep not preceded by a backslash.
func cutUnescaped(s string, sep byte) (before, after string, ok bool) {
	for i := 1; i < len(s); i++ {
		if s[i] == sep && s[i-1] != '\\' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// unquote removes matching outer quotes.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}
