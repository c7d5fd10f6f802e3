package pattern

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// cctvKeys are the service hosts of the E2Clab cctv example, in plan order.
var cctvKeys = []string{
	"cloud.flink.1.job_manager.1",              // 0
	"cloud.flink.1.task_manager.1",             // 1
	"cloud.kafka.2.zookeeper.1",                // 2
	"cloud.kafka.2.leader.1",                   // 3
	"fog.mosquitto.1.1",                        // 4
	"fog.mosquitto.2.1",                        // 5
	"fog.mosquitto.3.1",                        // 6
	"fog.mosquitto.4.1",                        // 7
	"edge.producer.1.1",                        // 8
	"edge.producer.2.1",                        // 9
	"edge.producer.3.1",                        // 10
	"edge.producer.4.1",                        // 11
	"edge.producer.5.1",                        // 12
	"edge.producer.6.1",                        // 13
	"edge.producer.7.1",                        // 14
	"edge.producer.8.1",                        // 15
	"experiment_manager.metrics_collector.1.1", // 16
}

// cctvIndex gives each key the names the engine gives it: the key, its
// dot-prefixes, layer, service, L_S and L_S_M ids, and the role
// "monitoring" on the flink and kafka hosts.
func cctvIndex() *Index {
	layers := map[string]int{}
	services := map[string]int{}
	var entries [][]string
	for i, key := range cctvKeys {
		parts := strings.Split(key, ".")
		layer, service := parts[0], parts[1]
		if _, ok := layers[layer]; !ok {
			layers[layer] = len(layers) + 1
		}
		if _, ok := services[layer+"."+service]; !ok {
			services[layer+"."+service] = len(services) + 1
		}
		l, s := layers[layer], services[layer+"."+service]
		names := []string{key}
		for j := 1; j < len(parts); j++ {
			names = append(names, strings.Join(parts[:j], "."))
		}
		names = append(names, layer, service,
			fmt.Sprintf("%d_%d", l, s), fmt.Sprintf("%d_%d_%d", l, s, i+1))
		if i < 4 {
			names = append(names, "monitoring")
		}
		entries = append(entries, names)
	}
	return NewIndex(entries)
}

func seq(lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

var selectTests = []struct {
	pattern string
	want    []int
}{
	{"cloud", seq(0, 3)},
	{"cloud.flink", seq(0, 1)},
	{"cloud.kafka.2.leader.1", []int{3}},
	{"mosquitto", seq(4, 7)},
	{"1_2", seq(2, 3)},
	{"2_3_6", []int{5}},
	{"monitoring", seq(0, 3)},
	{"*", seq(0, 16)},
	{"all", seq(0, 16)},
	{"ALL", seq(0, 16)},
	{"cloud.flink.*.job_manager", []int{0}},
	{"cloud.kafka.*.leader.*", []int{3}},
	{"*.mosquitto.*", seq(4, 7)},
	{"edge.producer.[12].*", []int{8, 9}},
	{"edge.producer.[!3-8].1", []int{8, 9}},
	{"edge.producer.[^2-8].1", []int{8}},
	{"fog.mosquitto.[!3]", []int{4, 5, 7}},
	{"fog.mosquitto.?", seq(4, 7)},
	{"edge.producer.?.?", seq(8, 15)},
	{"edge.producer.??", nil},
	{"*zoo*", []int{2}},
	{"cloud.*.1", seq(0, 3)}, // "cloud.flink.1" and every key ending in ".1"
	{"cloud.flink.1.*_manager", seq(0, 1)},
	{"cloud*.flink*", seq(0, 1)},
	{"*o*o*o*", []int{2, 4, 5, 6, 7}}, // three o: cloud.kafka.2.zookeeper, fog.mosquitto
	{"*.[fk]*.*.[jl]*", []int{0, 3}},
	{"fog:edge.producer.1", seq(4, 8)},
	{"fog,edge.producer.1", seq(4, 8)},
	{" fog , edge.producer.1 ,, ", seq(4, 8)},
	{"edge.producer.[1,2].1", []int{8, 9}}, // ',' inside [] does not split
	{"edge.producer.[1:2].1", []int{8, 9}},
	{"edge.producer.[]1].1", []int{8}},

	// Union, then intersection, then exclusion, whatever the order.
	{"cloud:&monitoring:!cloud.kafka", seq(0, 1)},
	{"cloud:!cloud.kafka:&monitoring", seq(0, 1)},
	{"&monitoring:cloud:!cloud.kafka", seq(0, 1)},
	{"&monitoring:!cloud.kafka:cloud", seq(0, 1)},
	{"!cloud.kafka:cloud:&monitoring", seq(0, 1)},
	{"!cloud.kafka:&monitoring:cloud", seq(0, 1)},
	{"!cloud:cloud", nil},         // exclusion after union
	{"&fog:cloud:fog", seq(4, 7)}, // intersection after both unions
	{"cloud:&*.kafka.*:&monitoring", seq(2, 3)},
	{"cloud:&cloud.flink:&cloud.kafka", nil},
	{"all:!~edge:!fog.*", []int{0, 1, 2, 3, 16}},

	// No union term starts from all entries.
	{"!edge", append(seq(0, 7), 16)},
	{"!edge:!fog:!cloud", []int{16}},
	{"&cloud", seq(0, 3)},
	{"&cloud:!monitoring", nil},

	// Regular expressions match from the start, ignoring case.
	{"~edge\\.producer\\.[45]", seq(11, 12)},
	{"~roducer", nil},         // anchored: no name starts with "roducer"
	{"~producer", seq(8, 15)}, // the service name
	{"~.*producer\\.8", []int{15}},
	{"~FOG", seq(4, 7)},
	{"~(?:fog|experiment_manager)$", append(seq(4, 7), 16)},
	{"!~^edge", append(seq(0, 7), 16)},
	{"cloud:&~.*zoo", []int{2}},
	{"~\\d_\\d_1[0-2]$", []int{9, 10, 11}},
	{"fog:~(?:edge|cloud)\\.(?:p|k)", seq(2, 15)},
	{"~edge.producer.(1|2):~(?:fog|cloud)\\.(?:m|k)", []int{2, 3, 4, 5, 6, 7, 8, 9}},
	{"~edge\\.producer\\.[3-9]{1,2}\\.1$,!~.*r\\.[4-8]\\:?", []int{10}},

	// Upper case input.
	{"Cloud.Flink.*", seq(0, 1)},
	{"CLOUD.KAFKA.2.LEADER.1", []int{3}},
	{"EDGE.PRODUCER.[A-Z1]*", []int{8}}, // "[A-Z1]" lower-cases to "[a-z1]"

	// No match.
	{"nothing", nil},
	{"cloud.flink.*.nothing", nil},
	{"~nothing", nil},
	{"cloud.flink.1.job_manager.1.1", nil},
}

func TestSelect(t *testing.T) {
	ix := cctvIndex()
	for _, tt := range selectTests {
		p, err := Parse(tt.pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.pattern, err)
			continue
		}
		if p.String() != tt.pattern {
			t.Errorf("Parse(%q).String() = %q", tt.pattern, p.String())
		}
		// Twice: the second call is served from the cache.
		for range 2 {
			if got := p.Select(ix); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%q selects %v, want %v", tt.pattern, got, tt.want)
				break
			}
		}
	}
}

func TestNewIndex(t *testing.T) {
	// Names are lower-cased, and a name listed twice (the layer is also
	// the first dot-prefix) is kept once.
	ix := NewIndex([][]string{{"Cloud.Flink.1", "CLOUD", "cloud"}, {"cloud", "cloud"}})
	if got, want := ix.byName["cloud"], []int{0, 1}; !slices.Equal(got, want) {
		t.Errorf(`entries named "cloud" = %v, want %v`, got, want)
	}
	if got, want := ix.names, []string{"cloud", "cloud.flink.1"}; !slices.Equal(got, want) {
		t.Errorf("names = %q, want %q", got, want)
	}
	for _, s := range []string{"cloud.flink.1", "Cloud.*.1", "~cloud\\.f"} {
		if got := mustParse(t, s).Select(ix); !slices.Equal(got, []int{0}) {
			t.Errorf("%q selects %v, want [0]", s, got)
		}
	}
}

func TestSelectConcurrent(t *testing.T) {
	ix := cctvIndex()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, tt := range selectTests {
				p, err := Parse(tt.pattern)
				if err != nil {
					continue
				}
				if got := p.Select(ix); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%q selects %v, want %v", tt.pattern, got, tt.want)
				}
			}
		})
	}
	wg.Wait()
}

func TestSelectEmptyIndex(t *testing.T) {
	ix := NewIndex(nil)
	for _, s := range []string{"all", "!edge", "cloud.*", "~x", "&x"} {
		if got := mustParse(t, s).Select(ix); got != nil {
			t.Errorf("%q on an empty index selects %v", s, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", `host pattern "": empty pattern, expected a host or group name such as "cloud.*"`},
		{" : , ", `host pattern " : , ": empty pattern, expected a host or group name such as "cloud.*"`},
		{"cloud.[12", `host pattern "cloud.[12": unclosed "[" in term "cloud.[12"`},
		{"fog:!edge.[!", `host pattern "fog:!edge.[!": unclosed "[" in term "!edge.[!"`},
		{"edge.[]", `host pattern "edge.[]": unclosed "[" in term "edge.[]"`},
		{"edge.[9-1]", `host pattern "edge.[9-1]": character class has empty range "9-1" in term "edge.[9-1]"`},
		{"a:!", `host pattern "a:!": "!" must be followed by a name`},
		{"a,& ", `host pattern "a,& ": "&" must be followed by a name`},
		{"&!edge", `host pattern "&!edge": term "&!edge": expected a name after "&", found "!"`},
		{"a:~", `host pattern "a:~": "~" must be followed by a regular expression`},
		{"!~", `host pattern "!~": "~" must be followed by a regular expression`},
		{"~a(, fog", "host pattern \"~a(, fog\": term \"~a(, fog\": invalid regular expression: error parsing regexp: missing closing ): `a(, fog`"},
		{"~edge(", "host pattern \"~edge(\": term \"~edge(\": invalid regular expression: error parsing regexp: missing closing ): `edge(`"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pattern)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error", tt.pattern, p)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error:\n got %s\nwant %s", tt.pattern, err, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	cctv := cctvIndex()
	keysOnly := NewIndex([][]string{{"cloud.kafka.2.leader.1"}, {"fog.mosquitto.1.1"}})
	tests := []struct {
		ix      *Index
		pattern string
		want    string
	}{
		{keysOnly, "cloud.kafka.*.leader", `did you mean "cloud.kafka.*.leader.*"?`},
		{keysOnly, "Fog.Mosquitto", `did you mean "Fog.Mosquitto.*"?`},
		{keysOnly, "fog.mosquitto.1.1", ""}, // selects something
		{cctv, "cloud.kafka.1.leadr.1", `did you mean "cloud.kafka.2.leader.1"?`},
		{cctv, "Cloud.Flnik", `did you mean "cloud.flink"?`},
		{cctv, "cloud:&monitorng:!cloud.kafka", `did you mean "cloud:&monitoring:!cloud.kafka"?`},
		{cctv, "fgo , edgee", `did you mean "fog , edge"?`},
		{cctv, "!cloud.flnik:&cloud.kafka.*.leader:&fog", ""}, // no term is wrong
		{cctv, "xyzzy", ""},
		{cctv, "cloud.*.nothing", ""},
		{cctv, "cloud.kafka.*.leadr", `did you mean "cloud.kafka.*.leader"?`},
		{cctv, "edge.prodcuer.[12].*", `did you mean "edge.producer.[12].*"?`},
		{cctv, "~nothing", ""},
		{cctv, "cloud", ""},
		{cctv, "cloud:clod", ""}, // selects something, though "clod" is wrong
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.pattern).Hint(tt.ix); got != tt.want {
			t.Errorf("Hint(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func mustParse(t testing.TB, s string) *Pattern {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// reference selects entries the slow, obvious way: test every term against
// every name of every entry. It checks the index, the sets and the cache.
func reference(p *Pattern, entries [][]string) []int {
	matches := func(t *term, names []string) bool {
		return slices.ContainsFunc(names, t.matchName) || t.kind == 'a'
	}
	var out []int
	for i, names := range entries {
		names = lower(names)
		in, union := false, false
		for j := range p.terms {
			if t := &p.terms[j]; t.op == 0 {
				union = true
				in = in || matches(t, names)
			}
		}
		in = in || !union
		for j := range p.terms {
			t := &p.terms[j]
			if t.op == '&' && !matches(t, names) || t.op == '!' && matches(t, names) {
				in = false
			}
		}
		if in {
			out = append(out, i)
		}
	}
	return out
}

func lower(names []string) []string {
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = strings.ToLower(name)
	}
	return out
}

// globRegexp translates a glob without classes into a regular expression,
// as Python's fnmatch does, to check the glob matcher against.
func globRegexp(g string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range g {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func FuzzParse(f *testing.F) {
	for _, tt := range selectTests {
		f.Add(tt.pattern)
	}
	for _, s := range []string{"", "cloud.[12", "a:!", "~(", "&!x", "[z-a]", "é*.?", "a**b*?c"} {
		f.Add(s)
	}
	var entries [][]string
	for _, key := range cctvKeys[:9] {
		parts := strings.Split(key, ".")
		names := []string{key, parts[0], parts[1]}
		for j := 2; j < len(parts); j++ {
			names = append(names, strings.Join(parts[:j], "."))
		}
		entries = append(entries, names)
	}
	entries = append(entries, []string{"ÉTÉ.ß.1"}, nil)
	ix := NewIndex(entries)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		got := p.Select(ix)
		for k, i := range got {
			if i < 0 || i >= len(entries) || k > 0 && got[k-1] >= i {
				t.Fatalf("%q selects %v: not ascending, unique and in range", s, got)
			}
		}
		if want := reference(p, entries); !slices.Equal(got, want) {
			t.Fatalf("%q selects %v, reference %v", s, got, want)
		}
		p.Hint(ix)
		for _, tt := range p.terms {
			if tt.kind != 'g' || strings.Contains(tt.name, "[") {
				continue
			}
			re := globRegexp(tt.name)
			for _, names := range entries {
				for _, name := range lower(names) {
					if got, want := tt.glob.match(name), re.MatchString(name); got != want {
						t.Fatalf("glob %q on %q: %v, fnmatch %v", tt.name, name, got, want)
					}
				}
			}
		}
	})
}

// benchEntries is a plan of 10,000 entries named like the engine names
// them: key, four dot-prefixes, layer, service, two ids and roles.
func benchEntries() [][]string {
	layers := []string{"cloud", "fog", "edge", "core", "lab"}
	entries := make([][]string, 0, 10000)
	for i := range 10000 {
		l, s, m := i%5, (i/5)%20, i/100
		layer, service := layers[l], fmt.Sprintf("svc%d", s)
		prefix := fmt.Sprintf("%s.%s.%d", layer, service, s+1)
		key := fmt.Sprintf("%s.worker.%d", prefix, m+1)
		names := []string{key, layer, layer + "." + service, prefix, prefix + ".worker",
			service, fmt.Sprintf("%d_%d", l+1, s+1), fmt.Sprintf("%d_%d_%d", l+1, s+1, m+1), "worker"}
		if m%10 == 0 {
			names = append(names, "monitoring")
		}
		entries = append(entries, names)
	}
	return entries
}

func BenchmarkSelect(b *testing.B) {
	ix := NewIndex(benchEntries())
	for _, bb := range []struct{ name, pattern string }{
		{"literal", "edge.svc7"},
		{"wildcard", "*.svc1?.*.worker.*"},
		{"prefix-wildcard", "cloud.svc3.*"},
		{"intersection", "cloud:&monitoring:!cloud.svc0"},
	} {
		p := mustParse(b, bb.pattern)
		if len(p.Select(ix)) == 0 {
			b.Fatalf("%q selects nothing", bb.pattern)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Select(ix)
			}
		})
		// Cold: the wildcard results are recomputed every time.
		b.Run(bb.name+"-cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix.mu.Lock()
				clear(ix.cache)
				ix.mu.Unlock()
				p.Select(ix)
			}
		})
	}
}
