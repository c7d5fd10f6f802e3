package ansiblediff

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Case is one behaviour, from a file of testdata/: a header document
// (what it tests and how to compare), then "---" and a play, without its
// hosts: its tasks (and vars, environment...) are what both tools run.
//
//	about: with_items flattens one level
//	files: {run.sh: {mode: "0755", content: "echo hi\n"}}
//	---
//	tasks:
//	- shell: echo {{ item }} >> /opt/items
//	  with_items: [[1, 2], [3], 4]
type Case struct {
	Name string // the file's name without .yml
	File string
	// About says what behaviour the case checks (a line of issue 11).
	About string `yaml:"about"`
	// Files are written into the working folder (ARTIFACTS_DIR for e2c,
	// the playbook's folder for Ansible) before the run: the sources of
	// copy, template, script...
	Files map[string]File `yaml:"files"`
	// Deliberate, when set, is why e2c differs from Ansible here on
	// purpose: the case is skipped with that reason (and the README's
	// "Differences from Ansible" says so).
	Deliberate string `yaml:"deliberate"`
	// Needs are what the case needs of this machine: programs on PATH,
	// Ansible collections (ansible.posix), systemd (running as init) or
	// docker (a daemon that answers). Without them it is skipped.
	Needs []string `yaml:"needs"`
	// Compare, when set, limits the comparison of the values the tasks
	// register or set to these paths (r.rc, r.results.0.stdout): for a
	// result whose other keys are each tool's own wording (an error
	// message). By default every such value is compared whole.
	Compare []string `yaml:"compare"`
	// Secret is a string that neither tool may print (no_log).
	Secret string `yaml:"secret"`
	// Cleanup is a shell command run on this machine after each tool, to
	// undo what the case changes outside the hosts' own folders (users).
	Cleanup string `yaml:"cleanup"`

	play      string   // the play, as written
	playLine  int      // the line of the case file the play starts on
	registers []string // the names tasks register
	facts     []string // the names set_fact sets
}

// File is a file of a case: its content (written as text, or as base64
// for binary files such as archives) and mode (default 0644).
type File struct {
	Content string
	Mode    fs.FileMode
}

func (f *File) UnmarshalYAML(n *yaml.Node) error {
	f.Mode = 0o644
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&f.Content)
	}
	var v struct {
		Content string `yaml:"content"`
		Base64  string `yaml:"base64"`
		Mode    string `yaml:"mode"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	f.Content = v.Content
	if v.Base64 != "" {
		data, err := base64.StdEncoding.DecodeString(v.Base64)
		if err != nil {
			return fmt.Errorf("line %d: base64: %w", n.Line, err)
		}
		f.Content = string(data)
	}
	if v.Mode != "" {
		m, err := strconv.ParseUint(v.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("line %d: mode %q is not octal", n.Line, v.Mode)
		}
		f.Mode = fs.FileMode(m)
	}
	return nil
}

// playbookName is the Ansible side's playbook, beside the case's files.
const playbookName = "e2c-diff-playbook.yml"

// LoadCases reads every case of dir (*.yml), in name order.
func LoadCases(dir string) ([]*Case, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		return nil, err
	}
	var cases []*Case
	var errs []error
	for _, name := range names {
		c, err := loadCase(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cases = append(cases, c)
	}
	return cases, errors.Join(errs...)
}

func loadCase(file string) (*Case, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c := &Case{Name: strings.TrimSuffix(filepath.Base(file), ".yml"), File: file}
	i := bytes.Index(data, []byte("\n---\n"))
	if i < 0 {
		return nil, fmt.Errorf("%s: no \"---\" line between the header and the play", file)
	}
	head, play := data[:i+1], data[i+5:]
	dec := yaml.NewDecoder(bytes.NewReader(head))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%s: header: %w", file, err)
	}
	if c.About == "" {
		return nil, fmt.Errorf("%s: the header has no \"about\"", file)
	}
	for name := range c.Files {
		if name == playbookName || filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return nil, fmt.Errorf("%s: files: %q must be a relative path inside the working folder, not %s", file, name, playbookName)
		}
	}
	c.play = string(play)
	c.playLine = bytes.Count(head, []byte("\n")) + 2
	var doc yaml.Node
	if err := yaml.Unmarshal(play, &doc); err != nil {
		return nil, fmt.Errorf("%s: play: %w", file, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the play must be a mapping with tasks", file, c.playLine)
	}
	tasks := value(doc.Content[0], "tasks")
	if tasks == nil || tasks.Kind != yaml.SequenceNode || !strings.Contains("\n"+c.play, "\ntasks:") {
		return nil, fmt.Errorf("%s:%d: the play needs a list of tasks under \"tasks:\", at the start of a line", file, c.playLine)
	}
	c.walk(tasks)
	return c, nil
}

// walk collects the names tasks register or set, blocks included.
func (c *Case) walk(tasks *yaml.Node) {
	for _, t := range tasks.Content {
		if t.Kind != yaml.MappingNode {
			continue
		}
		for _, k := range []string{"block", "rescue", "always"} {
			if b := value(t, k); b != nil && b.Kind == yaml.SequenceNode {
				c.walk(b)
			}
		}
		if r := value(t, "register"); r != nil && !slices.Contains(c.registers, r.Value) {
			c.registers = append(c.registers, r.Value)
		}
		for _, m := range []string{"set_fact", "ansible.builtin.set_fact"} {
			f := value(t, m)
			if f == nil {
				continue
			}
			var keys []string
			switch f.Kind {
			case yaml.MappingNode:
				for i := 0; i < len(f.Content); i += 2 {
					keys = append(keys, f.Content[i].Value)
				}
			case yaml.ScalarNode: // free form: a=1 b=2
				for _, w := range strings.Fields(f.Value) {
					if k, _, ok := strings.Cut(w, "="); ok {
						keys = append(keys, k)
					}
				}
			}
			for _, k := range keys {
				if k != "cacheable" && !slices.Contains(c.facts, k) {
					c.facts = append(c.facts, k)
				}
			}
		}
	}
}

// value is the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// headerLines is how many lines each tool's file has before the play.
const headerLines = 2

// playbook is the Ansible side's file: the play, for every host.
func (c *Case) playbook() string {
	return "- hosts: all\n  gather_facts: false\n" + indent(c.play)
}

// workflow is e2c's workflow.yaml: the same play, its tasks in launch, on
// the same lines as in the playbook so that both tools' positions match.
func (c *Case) workflow() string {
	play := strings.Replace("\n"+c.play, "\ntasks:", "\nlaunch:", 1)[1:]
	return "- hosts: all\n  # (the playbook's gather_facts)\n" + indent(play)
}

// indentWidth is how far each tool's file indents the play's lines.
const indentWidth = 2

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" && l != "\n" {
			lines[i] = strings.Repeat(" ", indentWidth) + l
		}
	}
	return strings.Join(lines, "")
}

// caseLine is the line of the case file that line n of a tool's file
// (playbook or workflow) comes from.
func (c *Case) caseLine(n int) int { return n - headerLines - 1 + c.playLine }

// vars are the variables compared: those the tasks register or set.
func (c *Case) vars() []string { return append(slices.Clone(c.registers), c.facts...) }
