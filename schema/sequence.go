package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// maxSequence bounds the items a with_sequence makes.
const maxSequence = 1 << 20

var sequenceShortcut = regexp.MustCompile(`(?i)^((0?x?[0-9a-f]+)-)?(0?x?[0-9a-f]+)(/(0?x?[0-9a-f]+))?(:(.+))?$`)

// Sequence is Ansible's with_sequence (the sequence lookup of
// ansible-core 2.14): "start=1 end=10 stride=2 format=n%02d", count= in
// place of end, or the shortcut "[start-]end[/stride][:format]". Its
// items are text, as in Ansible ("1", "2", ...).
func Sequence(term string) ([]any, error) {
	start, stride, format := 1, 1, "%d"
	var end, count *int
	set := func(name, s string, into **int) error {
		v, err := pyInt(s)
		if err != nil {
			return fmt.Errorf("can't parse %s=%s as integer", name, s)
		}
		*into = &v
		return nil
	}
	if m := sequenceShortcut.FindStringSubmatch(term); m != nil {
		var s, st *int
		if m[2] != "" {
			if err := set("start", m[2], &s); err != nil {
				return nil, err
			}
			start = *s
		}
		if err := set("end", m[3], &end); err != nil {
			return nil, err
		}
		if m[5] != "" {
			if err := set("stride", m[5], &st); err != nil {
				return nil, err
			}
			stride = *st
		}
		if m[6] != "" {
			format = m[7]
		}
	} else {
		options, raw, err := parseKV(term, false)
		if err != nil {
			return nil, err
		}
		if raw != "" {
			options["_raw_params"] = raw
		}
		for _, k := range []string{"start", "end", "count", "stride"} {
			s, ok := options[k]
			if !ok {
				continue
			}
			delete(options, k)
			var v *int
			if err := set(k, s, &v); err != nil {
				return nil, err
			}
			switch k {
			case "start":
				start = *v
			case "end":
				end = v
			case "count":
				count = v
			case "stride":
				stride = *v
			}
		}
		if f, ok := options["format"]; ok {
			format = f
			delete(options, "format")
		}
		if len(options) > 0 {
			keys := make([]string, 0, len(options))
			for k := range options {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return nil, fmt.Errorf("unrecognized arguments to with_sequence: %s", strings.Join(keys, ", "))
		}
	}
	switch {
	case count == nil && end == nil:
		return nil, fmt.Errorf("must specify count or end in with_sequence")
	case count != nil && end != nil:
		return nil, fmt.Errorf("can't specify both count and end in with_sequence")
	case count != nil && *count != 0:
		e := start + *count*stride - 1
		end = &e
	case count != nil:
		start, stride, end = 0, 0, new(int)
	}
	switch {
	case stride > 0 && *end < start:
		return nil, fmt.Errorf("to count backwards make stride negative")
	case stride < 0 && *end > start:
		return nil, fmt.Errorf("to count forward don't make stride negative")
	case strings.Count(format, "%") != 1:
		return nil, fmt.Errorf("bad formatting string: %s", format)
	}
	out := []any{}
	if stride == 0 {
		return out, nil
	}
	if n := (*end-start)/stride + 1; n > maxSequence {
		return nil, fmt.Errorf("%d items; e2c makes at most %d", n, maxSequence)
	}
	for i := start; stride > 0 && i <= *end || stride < 0 && i >= *end; i += stride {
		s, err := pyFormat(format, i)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// pyInt is Python's int(s, 0): 0x, 0o and 0b prefixes, underscores
// between digits, and no leading zeros in decimals.
func pyInt(s string) (int, error) {
	t := strings.TrimSpace(s)
	body := strings.ToLower(strings.TrimLeft(t, "+-"))
	if len(body) > 1 && body[0] == '0' && strings.Trim(body, "0_") != "" && !strings.ContainsAny(body[1:2], "xob") {
		return 0, fmt.Errorf("invalid literal %q", s)
	}
	if strings.HasPrefix(body, "_") || strings.HasSuffix(body, "_") || strings.Contains(body, "__") {
		return 0, fmt.Errorf("invalid literal %q", s)
	}
	v, err := strconv.ParseInt(t, 0, 64)
	return int(v), err
}

var printfVerb = regexp.MustCompile(`^%([#0\- +]*)(\d*)(\.\d*)?[hlL]?([diouxXeEfFgGcrsa])`)

// pyFormat is Python's format % i, for a format with one conversion.
func pyFormat(format string, i int) (string, error) {
	at := strings.IndexByte(format, '%')
	m := printfVerb.FindStringSubmatch(format[at:])
	if m == nil {
		return "", fmt.Errorf("problem formatting %d with %q", i, format)
	}
	spec := "%" + m[1] + m[2] + m[3]
	var s string
	switch verb := m[4]; verb {
	case "d", "i", "u":
		s = fmt.Sprintf(spec+"d", i)
	case "o", "x", "X", "c":
		s = fmt.Sprintf(spec+verb, i)
		if verb == "o" && strings.Contains(m[1], "#") {
			s = strings.Replace(s, "0", "0o", 1)
		}
	case "e", "E", "f", "F", "g", "G":
		s = fmt.Sprintf(spec+verb, float64(i))
	default: // s, r, a: str(i)
		s = fmt.Sprintf(spec+"s", strconv.Itoa(i))
	}
	return format[:at] + s + format[at+len(m[0]):], nil
}
