package ansiblediff

import (
	"fmt"
	"slices"
	"strings"
)

// compare lists how e2c's result differs from Ansible's, Ansible's being
// the reference: the outcome per host, the files left on each host, the
// working folder (fetched files), the values tasks registered or set, and
// whether a secret was printed. None is a same result.
func (c *Case) compare(a, e *result, aWork, eWork string) []string {
	if e.refused != "" {
		return []string{"e2c refuses the case: " + oneLine(e.refused)}
	}
	var out []string
	for _, h := range Hosts {
		ha, he := a.hosts[h], e.hosts[h]
		if ha.failed != he.failed || ha.line != he.line {
			out = append(out, fmt.Sprintf("%s: ansible %s, e2c %s", h, ha.outcome(), he.outcome()))
		}
	}
	for _, h := range Hosts {
		out = append(out, diffTrees(h+":/opt/", a.hosts[h].files, e.hosts[h].files)...)
	}
	out = append(out, diffTrees("working folder: ", a.work, e.work)...)
	for _, h := range Hosts {
		va := c.comparable(a.hosts[h].vars, aWork)
		ve := c.comparable(e.hosts[h].vars, eWork)
		for _, path := range slices.Sorted(keys(va, ve)) {
			x, inx := va[path]
			y, iny := ve[path]
			out = append(out, diffValues(h+": "+path, x, y, inx, iny)...)
		}
	}
	if c.Secret != "" {
		for _, r := range []struct {
			tool string
			res  *result
		}{{"ansible", a}, {"e2c", e}} {
			if strings.Contains(r.res.output, c.Secret) {
				out = append(out, r.tool+" prints the secret")
			}
		}
	}
	return out
}

// comparable is what is compared of a host's variables: each registered
// value normalised (set_fact values are the user's own, compared as they
// are, but for the working folder's path), or the case's Compare paths.
func (c *Case) comparable(vars map[string]any, work string) map[string]any {
	norm := map[string]any{}
	for name, v := range vars {
		norm[name] = normalise(v, work, slices.Contains(c.registers, name))
	}
	if len(c.Compare) == 0 {
		return norm
	}
	picked := map[string]any{}
	for _, path := range c.Compare {
		if v, ok := pick(norm, path); ok {
			picked[path] = v
		}
	}
	return picked
}

// oneLine joins the lines of a message with "; ", without a heading such
// as "3 problems:".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" && !(strings.HasSuffix(l, "problems:") || strings.HasSuffix(l, "failures:")) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

func keys(ms ...map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
