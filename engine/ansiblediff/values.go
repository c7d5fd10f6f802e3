package ansiblediff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Normalisations of registered values, each for something that
// legitimately differs between two runs or two tools. Each hides a
// difference, so each must be one no task list could rely on; the
// README's suite section lists them.
var (
	// dropped are keys of a module result (and of each loop item's) that
	// are not compared:
	//   start, end, delta, elapsed: when the task ran, and for how long;
	//   date, last_modified: the same, as uri's response headers;
	//   invocation: the module's arguments as Ansible parsed them (Ansible
	//     drops it from a registered value, but not from its loop items);
	//   cmd: command gives its argv as a list and shell its line as a
	//     string; what ran shows in its effects, compared;
	//   warnings, deprecations: each tool's advice to the user.
	dropped = []string{"start", "end", "delta", "elapsed", "date", "last_modified", "invocation", "cmd", "warnings", "deprecations"}
	// droppedStat are keys of stat's result that change from one run to
	// the next: the times and where the file lies on the disk.
	droppedStat = []string{"atime", "mtime", "ctime", "inode", "dev"}
	// placeholders are keys whose value names a background job: random,
	// so only their presence is compared.
	placeholders = []string{"ansible_job_id", "results_file"}
	// ansibleTemp is a temporary folder of Ansible's on a host.
	ansibleTemp = regexp.MustCompile(`/root/\.ansible/tmp/ansible-(tmp|moduletmp)-[^/"]+`)
)

// normalise applies the normalisations above to a registered value, and
// replaces the tool's working folder by <working_dir> in every string.
func normalise(v any, workDir string, result bool) any {
	switch v := v.(type) {
	case map[string]any:
		m := maps.Clone(v)
		for k, x := range m {
			m[k] = normalise(x, workDir, false)
		}
		if result {
			for _, k := range dropped {
				delete(m, k)
			}
			for _, k := range placeholders {
				if _, ok := m[k]; ok {
					m[k] = "<" + k + ">"
				}
			}
			if st, ok := m["stat"].(map[string]any); ok {
				for _, k := range droppedStat {
					delete(st, k)
				}
			}
			if items, ok := v["results"].([]any); ok {
				norm := make([]any, len(items))
				for i, it := range items {
					norm[i] = normalise(it, workDir, true)
				}
				m["results"] = norm
			}
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = normalise(x, workDir, false)
		}
		return l
	case string:
		if workDir != "" {
			v = strings.ReplaceAll(v, workDir, "<working_dir>")
		}
		return ansibleTemp.ReplaceAllString(v, "<ansible tmp>")
	}
	return v
}

// decodeJSON reads JSON keeping numbers as written (1 and 1.0 differ in
// Jinja: they render differently).
func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// toJSONValue turns a Go value into what decodeJSON gives for it.
func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, decodeJSON(data, &out)
}

// pick returns the value at path (keys and list indexes, dot-separated)
// under root, and whether it exists.
func pick(root map[string]any, path string) (any, bool) {
	var v any = root
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[k]
			if !ok {
				return nil, false
			}
			v = x
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// diffValues lists how b (e2c) differs from a (Ansible) under path, leaf
// by leaf.
func diffValues(path string, a, b any, ina, inb bool) []string {
	switch {
	case !ina && !inb:
		return nil
	case !inb:
		return []string{fmt.Sprintf("%s: ansible %s, e2c missing", path, render(a))}
	case !ina:
		return []string{fmt.Sprintf("%s: ansible missing, e2c %s", path, render(b))}
	}
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		var out []string
		for _, k := range unionKeys(ma, mb) {
			va, ina := ma[k]
			vb, inb := mb[k]
			out = append(out, diffValues(path+"."+k, va, vb, ina, inb)...)
		}
		return out
	}
	la, oka := a.([]any)
	lb, okb := b.([]any)
	if oka && okb && len(la) == len(lb) {
		var out []string
		for i := range la {
			out = append(out, diffValues(fmt.Sprintf("%s.%d", path, i), la[i], lb[i], true, true)...)
		}
		return out
	}
	if ra, rb := render(a), render(b); ra != rb {
		return []string{fmt.Sprintf("%s: ansible %s, e2c %s", path, ra, rb)}
	}
	return nil
}

// render is a value as JSON, on one line and cut to fit the report.
func render(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	data := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	const max = 160
	if len(data) > max {
		return string(data[:max]) + "..."
	}
	return string(data)
}

// unionKeys is the keys of a and b together, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
