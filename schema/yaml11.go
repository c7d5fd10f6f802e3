package schema

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Ansible and E2Clab read scenario files with PyYAML, which follows YAML
// 1.1: `enabled: no` is false there, `mode: 0644` is 420 and `port: 09` is
// the text "09". yaml.v3 follows YAML 1.2 (no is a string, 09 a float), so
// plain scalars are resolved here with PyYAML's own patterns instead
// (yaml.resolver.Resolver), for a value to mean what it means to them.
var (
	yaml11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yaml11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
)

var errTooBig = errors.New("beyond 64 bits")

// plain reports whether a scalar was written without quotes, block style
// or an explicit tag: only those are resolved to other types than text.
func plain(n *yaml.Node) bool {
	return n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
}

// scalar reads a scalar as PyYAML does: nil, bool, int, float64 or
// string. A value e2c refuses (see yaml11) is reported and kept as text.
func (d *decoder) scalar(n *yaml.Node, what string) any {
	v, err := yaml11(n)
	if err != nil {
		d.errorf(n, "%s: %v", what, err)
		return n.Value
	}
	return v
}

// yaml11 resolves a scalar node as PyYAML's SafeLoader would. It refuses
// what would not mean the same in e2c: sexagesimal numbers (1:30 is 90 in
// YAML 1.1, which no one writing a duration means; quoted, it is the text
// for both), infinities and NaN (the plan is JSON), integers beyond 64
// bits, and tags other than YAML's own (Ansible's !unsafe and !vault).
// Timestamps stay text as written (a date renders the same in Ansible).
func yaml11(n *yaml.Node) (any, error) {
	s := n.Value
	tag := ""
	switch {
	case n.Style&yaml.TaggedStyle != 0:
		tag = n.Tag
	case plain(n):
		switch {
		case yaml11Null.MatchString(s):
			return nil, nil
		case yaml11Bool.MatchString(s):
			tag = "!!bool"
		case yaml11Int.MatchString(s):
			tag = "!!int"
		case yaml11Float.MatchString(s):
			tag = "!!float"
		}
	}
	switch tag {
	case "", "!!str", "!!timestamp":
		return s, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		switch strings.ToLower(s) { // PyYAML's bool constructor
		case "yes", "true", "on":
			return true, nil
		case "no", "false", "off":
			return false, nil
		}
		return nil, fmt.Errorf("found %q tagged !!bool, expected true or false", s)
	case "!!int":
		return yaml11Integer(s)
	case "!!float":
		return yaml11Number(s)
	}
	return nil, fmt.Errorf("found the tag %s, which e2c does not support (only YAML's own: !!str, !!int, !!float, !!bool, !!null)", n.Tag)
}

// yaml11Integer is PyYAML's construct_yaml_int.
func yaml11Integer(s string) (any, error) {
	v := strings.ReplaceAll(s, "_", "")
	neg := strings.HasPrefix(v, "-")
	v = strings.TrimLeft(v, "+-")
	if strings.Contains(v, ":") {
		return nil, sexagesimal(s)
	}
	base := 10
	switch {
	case strings.HasPrefix(v, "0b"):
		base, v = 2, v[2:]
	case strings.HasPrefix(v, "0x"):
		base, v = 16, v[2:]
	case len(v) > 1 && v[0] == '0':
		base = 8
	}
	x, err := strconv.ParseUint(v, base, 64)
	switch {
	case errors.Is(err, strconv.ErrRange), x > math.MaxInt64:
		return nil, fmt.Errorf("found %s, a whole number %w", s, errTooBig)
	case err != nil:
		return nil, fmt.Errorf("found %s, expected a whole number", s)
	}
	if neg {
		return -int(x), nil
	}
	return int(x), nil
}

// yaml11Number is PyYAML's construct_yaml_float.
func yaml11Number(s string) (any, error) {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	if strings.Contains(v, ":") {
		return nil, sexagesimal(s)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("found %s, expected a finite number (e2c's plan is JSON, which has no infinities)", s)
	}
	return f, nil
}

func sexagesimal(s string) error {
	total, neg := 0.0, strings.HasPrefix(s, "-")
	for _, part := range strings.Split(strings.TrimLeft(strings.ReplaceAll(s, "_", ""), "+-"), ":") {
		n, _ := strconv.ParseFloat(part, 64)
		total = total*60 + n
	}
	if neg {
		total = -total
	}
	return fmt.Errorf("found %s, which YAML 1.1 (Ansible, E2Clab) reads as the number %s (base 60); quote it for the text %q, or write the number",
		s, strconv.FormatFloat(total, 'f', -1, 64), s)
}
