package execute

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The line and block editors read the host's file, edit it here exactly as
// Ansible 2.14's lineinfile and blockinfile do (ported line by line), and
// write it back only when the text changed. Regular expressions are Go's
// (RE2): no lookaround nor backreferences in patterns. Python's "$" also
// matches before a line's final newline; lines are matched without it.

// lineinfile makes sure a line is in a file of the host, or is not.
func (c *call) lineinfile() (map[string]any, error) {
	p := c.a.str("path")
	spec, err := c.lineSpec()
	if err != nil {
		return nil, err
	}
	data, found, err := c.readFile(p)
	if err != nil {
		if strings.Contains(err.Error(), "is a directory") {
			return failed(map[string]any{"rc": 256}, "Path %s is a directory !", p)
		}
		return nil, err
	}
	absent := c.a.str("state") == "absent"
	if absent {
		if spec.re == nil && !spec.hasSearch && !c.a.has("line") {
			return failed(nil, "one of line, search_string, or regexp is required with state=absent")
		}
		if !found {
			return map[string]any{"changed": false, "msg": "file not present"}, nil
		}
		out, n := removeLines(readLines(data), spec)
		msg := ""
		if n > 0 {
			msg = fmt.Sprintf("%d line(s) removed", n)
		}
		res := map[string]any{"found": n, "backup": ""}
		return c.saveEdit(res, p, data, bytes.Join(out, nil), found, msg)
	}
	if spec.backrefs && spec.re == nil {
		return failed(nil, "regexp is required with backrefs=true")
	}
	if !c.a.has("line") {
		return failed(nil, "line is required with state=present")
	}
	if !found && !c.a.boolean("create", false) {
		return failed(map[string]any{"rc": 257}, "Destination %s does not exist !", p)
	}
	out, msg, _ := presentLine(readLines(data), spec)
	return c.saveEdit(map[string]any{"backup": ""}, p, data, bytes.Join(out, nil), found, msg)
}

// saveEdit writes after over the host's file when it differs from before
// (a missing file is created, with its folder), applies the task's
// attributes, and returns res with Ansible's changed and msg.
func (c *call) saveEdit(res map[string]any, p string, before, after []byte, found bool, msg string) (map[string]any, error) {
	changed := !found || !bytes.Equal(before, after)
	var attrs bool
	var err error
	switch {
	case changed:
		attrs, err = c.writeFile(p, after, !found)
	case c.modeArg() != "" || c.a.has("owner") || c.a.has("group"):
		var s hostStat
		s, err = c.probe(c.attrsScript(p, false))
		attrs = s.changed()
	}
	if err != nil {
		return failed(res, "%v", err)
	}
	if attrs {
		if changed {
			msg += " and "
		}
		msg += "ownership, perms or SE linux context changed"
	}
	res["changed"], res["msg"] = changed || attrs, msg
	return res, nil
}

// lineSpec holds what lineinfile matches and inserts.
type lineSpec struct {
	line                      string
	re                        *regexp.Regexp // regexp
	search                    string         // search_string
	hasSearch                 bool
	insertAfter, insertBefore string // as written: EOF, BOF or a pattern
	insRE                     *regexp.Regexp
	backrefs, firstmatch      bool
}

func (c *call) lineSpec() (lineSpec, error) {
	s := lineSpec{line: c.a.str("line"), search: c.a.str("search_string"), hasSearch: c.a.has("search_string"),
		insertAfter: c.a.str("insertafter"), insertBefore: c.a.str("insertbefore"),
		backrefs: c.a.boolean("backrefs", false), firstmatch: c.a.boolean("firstmatch", false)}
	var err error
	if c.a.has("regexp") {
		if s.re, err = compile("regexp", c.a.str("regexp")); err != nil {
			return s, err
		}
	}
	if !c.a.has("insertafter") && !c.a.has("insertbefore") {
		s.insertAfter = "EOF"
	}
	switch {
	case s.insertAfter != "" && s.insertAfter != "BOF" && s.insertAfter != "EOF":
		s.insRE, err = compile("insertafter", s.insertAfter)
	case s.insertBefore != "" && s.insertBefore != "BOF":
		s.insRE, err = compile("insertbefore", s.insertBefore)
	}
	return s, err
}

// compile reads a pattern of an argument.
func compile(arg, pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (e2c reads Go's RE2 syntax: Python's lookaround and backreferences are not supported)", arg, err)
	}
	return re, nil
}

// readLines splits data as Python's readlines: after each "\n".
func readLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+1])
		data = data[i+1:]
	}
	return out
}

// bare is a line without its final "\n", as Python's "$" sees it.
func bare(l []byte) []byte { return bytes.TrimSuffix(l, []byte("\n")) }

// trimEOL is Python's rstrip(b'\r\n').
func trimEOL(l []byte) string { return strings.TrimRight(string(l), "\r\n") }

// presentLine is lineinfile's present().
func presentLine(lines [][]byte, s lineSpec) ([][]byte, string, bool) {
	index := [2]int{-1, -1}
	var match []int
	var matchLine []byte
	if s.re != nil {
		for i, l := range lines {
			if m := s.re.FindSubmatchIndex(bare(l)); m != nil {
				index[0], match, matchLine = i, m, bare(l)
				if s.firstmatch {
					break
				}
			}
		}
	}
	if s.hasSearch {
		for i, l := range lines {
			if bytes.Contains(l, []byte(s.search)) {
				index[0], match = i, []int{}
				if s.firstmatch {
					break
				}
			}
		}
	}
	if match == nil {
		for i, l := range lines {
			if s.line == trimEOL(l) {
				index[0] = i
			} else if s.insRE != nil && s.insRE.Match(bare(l)) {
				if s.insertAfter != "" {
					index[1] = i + 1
					if s.firstmatch {
						break
					}
				}
				if s.insertBefore != "" {
					index[1] = i
					if s.firstmatch {
						break
					}
				}
			}
		}
	}
	newLine := []byte(s.line + "\n")
	insert := func(at int) [][]byte {
		out := append([][]byte{}, lines[:at]...)
		out = append(out, newLine)
		return append(out, lines[at:]...)
	}
	endsLine := func(l []byte) bool { return len(l) > 0 && (l[len(l)-1] == '\n' || l[len(l)-1] == '\r') }
	switch {
	case index[0] != -1:
		nl := []byte(s.line)
		if s.backrefs && match != nil && s.re != nil {
			nl = expandTemplate(s.line, s.re, matchLine, match)
		}
		if !bytes.HasSuffix(nl, []byte("\n")) {
			nl = append(nl, '\n')
		}
		if !bytes.Equal(lines[index[0]], nl) {
			lines[index[0]] = nl
			return lines, "line replaced", true
		}
		return lines, "", false
	case s.backrefs:
		return lines, "", false
	case s.insertBefore == "BOF" || s.insertAfter == "BOF":
		return insert(0), "line added", true
	case s.insertAfter == "EOF" || index[1] == -1:
		if len(lines) > 0 && !endsLine(lines[len(lines)-1]) {
			lines = append(lines, []byte("\n"))
		}
		return append(lines, newLine), "line added", true
	case s.insertAfter != "" && index[1] != -1:
		if len(lines) == index[1] {
			if trimEOL(lines[index[1]-1]) != s.line {
				return append(lines, newLine), "line added", true
			}
			return lines, "", false
		}
		if s.line != trimEOL(lines[index[1]]) {
			return insert(index[1]), "line added", true
		}
		return lines, "", false
	}
	return insert(index[1]), "line added", true
}

// removeLines is lineinfile's absent(): it drops the matching lines.
func removeLines(lines [][]byte, s lineSpec) ([][]byte, int) {
	var out [][]byte
	n := 0
	for _, l := range lines {
		var hit bool
		switch {
		case s.re != nil:
			hit = s.re.Match(bare(l))
		case s.hasSearch:
			hit = bytes.Contains(l, []byte(s.search))
		default:
			hit = s.line == trimEOL(l)
		}
		if hit {
			n++
			continue
		}
		out = append(out, l)
	}
	return out, n
}

// expandTemplate is Python's Match.expand: \1 to \99, \g<n>, \g<name>
// and the escapes \n, \t, \r, \f, \v, \a, \b and \\; a group that did not
// take part is empty.
func expandTemplate(t string, re *regexp.Regexp, src []byte, m []int) []byte {
	group := func(i int) []byte {
		if i < 0 || 2*i+1 >= len(m) || m[2*i] < 0 {
			return nil
		}
		return src[m[2*i]:m[2*i+1]]
	}
	var out []byte
	for i := 0; i < len(t); i++ {
		if t[i] != '\\' || i+1 >= len(t) {
			out = append(out, t[i])
			continue
		}
		i++
		switch c := t[i]; {
		case '0' <= c && c <= '9':
			j := i + 1
			if j < len(t) && '0' <= t[j] && t[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(t[i:j])
			out = append(out, group(n)...)
			i = j - 1
		case c == 'g' && i+1 < len(t) && t[i+1] == '<':
			end := strings.IndexByte(t[i:], '>')
			if end < 0 {
				out = append(out, '\\', c)
				continue
			}
			name := t[i+2 : i+end]
			n, err := strconv.Atoi(name)
			if err != nil {
				n = re.SubexpIndex(name)
			}
			out = append(out, group(n)...)
			i += end
		default:
			if e, ok := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', 'f': '\f', 'v': '\v', 'a': '\a', 'b': '\b', '\\': '\\'}[c]; ok {
				out = append(out, e)
			} else {
				out = append(out, '\\', c)
			}
		}
	}
	return out
}

// blockinfile puts a block of lines between markers into a file of the
// host, or removes it.
func (c *call) blockinfile() (map[string]any, error) {
	p := c.a.str("path")
	data, found, err := c.readFile(p)
	if err != nil {
		if strings.Contains(err.Error(), "is a directory") {
			return failed(map[string]any{"rc": 256}, "Path %s is a directory !", p)
		}
		return nil, err
	}
	if !found && !c.a.boolean("create", false) {
		return failed(map[string]any{"rc": 257}, "Path %s does not exist !", p)
	}
	present := c.a.str("state") != "absent"
	if !present && !found {
		return map[string]any{"changed": false, "msg": fmt.Sprintf("File %s not present", p)}, nil
	}
	b := blockSpec{block: c.a.str("block"), marker: "# {mark} ANSIBLE MANAGED BLOCK", begin: "BEGIN", end: "END",
		insertAfter: c.a.str("insertafter"), insertBefore: c.a.str("insertbefore"), present: present}
	if c.a.has("marker") {
		b.marker = c.a.str("marker")
	}
	if c.a.has("marker_begin") {
		b.begin = c.a.str("marker_begin")
	}
	if c.a.has("marker_end") {
		b.end = c.a.str("marker_end")
	}
	if !c.a.has("insertafter") && !c.a.has("insertbefore") {
		b.insertAfter = "EOF"
	}
	after, err := b.apply(data)
	if err != nil {
		return nil, err
	}
	msg := ""
	switch {
	case found && bytes.Equal(data, after):
	case !found:
		msg = "File created"
	case !present || b.block == "":
		msg = "Block removed"
	default:
		msg = "Block inserted"
	}
	return c.saveEdit(map[string]any{}, p, data, after, found, msg)
}

// blockSpec is what blockinfile puts where.
type blockSpec struct {
	block, marker, begin, end string
	insertAfter, insertBefore string
	present                   bool
}

// apply is the edit of blockinfile's main().
func (b blockSpec) apply(original []byte) ([]byte, error) {
	lines := splitKeepEnds(original)
	var insRE *regexp.Regexp
	var err error
	switch {
	case b.insertAfter != "" && b.insertAfter != "EOF":
		insRE, err = compile("insertafter", b.insertAfter)
	case b.insertBefore != "" && b.insertBefore != "BOF":
		insRE, err = compile("insertbefore", b.insertBefore)
	}
	if err != nil {
		return nil, err
	}
	marker0 := []byte(strings.ReplaceAll(b.marker, "{mark}", b.begin) + "\n")
	marker1 := []byte(strings.ReplaceAll(b.marker, "{mark}", b.end) + "\n")
	var blockLines [][]byte
	if b.present && b.block != "" {
		block := b.block
		if !strings.HasSuffix(block, "\n") {
			block += "\n"
		}
		blockLines = append([][]byte{marker0}, splitKeepEnds([]byte(block))...)
		blockLines = append(blockLines, marker1)
	}
	n0, n1 := -1, -1
	for i, l := range lines {
		if bytes.Equal(l, marker0) {
			n0 = i
		}
		if bytes.Equal(l, marker1) {
			n1 = i
		}
	}
	switch {
	case n0 < 0 || n1 < 0:
		n0 = -1
		switch {
		case insRE != nil:
			if multiline(insRE) {
				if m := insRE.FindIndex(original); m != nil {
					at := m[0]
					if b.insertAfter != "" {
						at = m[1]
					}
					n0 = bytes.Count(original[:at], []byte("\n"))
				}
			} else {
				for i, l := range lines {
					if insRE.Match(bare(l)) {
						n0 = i
					}
				}
			}
			if n0 < 0 {
				n0 = len(lines)
			} else if b.insertAfter != "" {
				n0++
			}
		case b.insertBefore != "":
			n0 = 0 // BOF
		default:
			n0 = len(lines) // EOF
		}
	case n0 < n1:
		lines = append(lines[:n0], lines[n1+1:]...)
	default:
		lines = append(lines[:n1], lines[n0+1:]...)
		n0 = n1
	}
	if n0 > 0 && !bytes.HasSuffix(lines[n0-1], []byte("\n")) {
		lines[n0-1] = append(append([]byte{}, lines[n0-1]...), '\n')
	}
	out := append([][]byte{}, lines[:min(n0, len(lines))]...)
	out = append(out, blockLines...)
	out = append(out, lines[min(n0, len(lines)):]...)
	return bytes.Join(out, nil), nil
}

// multiline tells whether a pattern starts by turning on Python's
// MULTILINE flag, (?m).
func multiline(re *regexp.Regexp) bool {
	s := re.String()
	if !strings.HasPrefix(s, "(?") {
		return false
	}
	end := strings.IndexAny(s, ":)")
	return end > 0 && strings.Contains(s[2:end], "m")
}

// splitKeepEnds is bytes.splitlines(True) in Python: lines split after
// "\n", "\r\n" or "\r", each keeping its end.
func splitKeepEnds(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			out = append(out, data)
			break
		}
		end := i + 1
		if data[i] == '\r' && end < len(data) && data[end] == '\n' {
			end++
		}
		out = append(out, data[:end])
		data = data[end:]
	}
	return out
}
