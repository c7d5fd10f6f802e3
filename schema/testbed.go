package schema

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Testbed is one testbed block of the environment, such as g5k: {...}. The
// schema knows only that the block exists, where, and what was written: the
// provider of that name reads it with Decode into its own settings type (at
// validate, through its CheckSettings), so that its mistakes are reported
// with positions and hints like the rest of the scenario.
type Testbed struct {
	Name    string
	NamePos Pos // where the block's name was written
	Pos     Pos // where its value starts
	raw     *yaml.Node
	file    string
}

// TestbedBlock decodes text as the block of testbed name, as if written in
// file: for providers' tests and tools that build settings by hand.
func TestbedBlock(file, name, text string) (*Testbed, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	tb := &Testbed{Name: name, file: file}
	if root := d.parse([]byte(text)); root != nil {
		*tb = d.testbed(name, Pos{File: file, Line: 1, Col: 1}, root)
	}
	return tb, errs.Err()
}

func (d *decoder) testbed(name string, at Pos, v *yaml.Node) Testbed {
	return Testbed{Name: name, NamePos: at, Pos: d.pos(v), raw: v, file: d.file}
}

// Data is the block as plain data, for the run's record: an empty map when
// nothing (or no mapping) was written. Its problems are Decode's to report.
func (tb *Testbed) Data() map[string]any {
	if tb.raw == nil || resolve(tb.raw).Kind != yaml.MappingNode {
		return map[string]any{}
	}
	d := &decoder{file: tb.file, errs: &Errors{}}
	return d.mapping(tb.raw, tb.Name)
}

// Decode reads the block into v, a pointer to a struct. Each field with a
// `yaml:"key"` tag reads that key; any other key is an error with the
// closest known one as a hint. Field types: string (numbers and booleans
// are read as written), bool (YAML 1.1 words too), int, float64, []string
// (one string or a list), Walltime, map[string]string, any (plain data),
// nested structs and slices and pointers of them, and any type whose
// pointer is an encoding.TextUnmarshaler (its error is reported at the
// value). A field of type Node is filled with the positions of the
// mapping's keys, for the provider's own checks. Every problem is
// returned at once, as a list of *Error.
func (tb *Testbed) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("schema: Testbed.Decode needs a pointer to a struct")
	}
	if tb.raw == nil || isNull(tb.raw) {
		return nil
	}
	var errs Errors
	d := &decoder{file: tb.file, errs: &errs}
	d.into(tb.raw, rv.Elem(), tb.Name)
	return errs.Err()
}

var (
	nodeType      = reflect.TypeFor[Node]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// into decodes n into the settable value v; what names it in messages.
func (d *decoder) into(n *yaml.Node, v reflect.Value, what string) {
	n = resolve(n)
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalType) {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errorf(n, "%s: found %s, expected a string", what, describe(n))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errorf(n, "%s: %v", what, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.into(n, p.Elem(), what)
		v.Set(p)
	case reflect.Struct:
		d.structInto(n, v, what)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			v.Set(reflect.ValueOf(d.strings(n, what)).Convert(v.Type()))
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: found %s, expected a list", what, describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.into(c, out.Index(i), what)
		}
		v.Set(out)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			panic("schema: Testbed.Decode reads only map[string]string")
		}
		v.Set(reflect.ValueOf(d.stringMap(n, what)).Convert(v.Type()))
	case reflect.String:
		v.SetString(d.str(n, what))
	case reflect.Bool:
		v.SetBool(d.boolean(n, what))
	case reflect.Int:
		v.SetInt(int64(d.integer(n, what, -1<<31, 1<<31-1)))
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, "%s: found %s, expected a number", what, describe(n))
		}
		v.SetFloat(f)
	case reflect.Interface:
		if x := d.value(n, what); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		panic("schema: Testbed.Decode cannot read a " + v.Type().String())
	}
}

func (d *decoder) structInto(n *yaml.Node, v reflect.Value, what string) {
	t := v.Type()
	byKey := map[string]int{}
	keys := []string{} // not nil: a struct without keys accepts none
	nodeField := -1
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == nodeType {
			nodeField = i
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		byKey[key] = i
		keys = append(keys, key)
	}
	fs, node := d.fields(n, what, keys)
	if nodeField >= 0 {
		v.Field(nodeField).Set(reflect.ValueOf(node))
	}
	for _, f := range fs {
		d.into(f.v, v.Field(byKey[f.key]), what+"."+f.key)
	}
}

// Walltime is a duration written HH:MM:SS, with any number of hours.
type Walltime time.Duration

// UnmarshalText reads HH:MM:SS (see ParseWalltime).
func (w *Walltime) UnmarshalText(b []byte) error {
	d, err := ParseWalltime(string(b))
	*w = Walltime(d)
	return err
}

func (w Walltime) String() string {
	d := time.Duration(w)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}
