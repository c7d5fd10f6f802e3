// Package pattern implements Ansible-style host patterns, as E2Clab users
// write them in hosts, service_selector and src fields.
//
// A pattern is a list of terms separated by ':' or ','. A plain term adds the
// entries it matches, "&term" keeps only entries it matches and "!term"
// removes them. As in Ansible, all additions are applied first, then all
// intersections, then all exclusions, whatever the written order; a pattern
// with no plain term starts from all entries. A term is a name ("cloud",
// matched exactly), a shell wildcard ("cloud.flink.*", "edge.producer.[12].*")
// matched against whole names, "all" or "*", or "~regex", matched from the
// start of each name. Matching ignores case.
package pattern

import (
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/e2c-dev/e2c/schema/suggest"
)

// cacheLimit bounds the wildcard results an Index remembers, so a long run
// of distinct patterns cannot grow memory without bound.
const cacheLimit = 4096

// Index holds the entries a pattern selects from. Build it once and reuse it
// for many patterns: it maps every name to its entries, so plain names cost a
// map lookup, and it remembers what each wildcard term matched. An Index is
// safe for concurrent use.
type Index struct {
	n      int
	byName map[string][]int // name -> ascending entries answering to it
	names  []string         // distinct names, sorted
	all    []uint64         // set of every entry

	mu    sync.RWMutex
	cache map[string][]uint64 // wildcard or regex term -> set of entries

	segOnce sync.Once
	segs    []string // distinct dot-separated parts of names, for hints
}

// NewIndex returns an index over entries, where entries[i] lists every name
// entry i answers to. Names are compared in lower case.
func NewIndex(entries [][]string) *Index {
	ix := &Index{
		n:      len(entries),
		byName: make(map[string][]int),
		all:    make([]uint64, (len(entries)+63)/64),
		cache:  make(map[string][]uint64),
	}
	for i, names := range entries {
		ix.all[i/64] |= 1 << (i % 64)
		for _, name := range names {
			name = strings.ToLower(name)
			list := ix.byName[name]
			if len(list) > 0 && list[len(list)-1] == i {
				continue // the entry lists this name twice
			}
			ix.byName[name] = append(list, i)
		}
	}
	ix.names = make([]string, 0, len(ix.byName))
	for name := range ix.byName {
		ix.names = append(ix.names, name)
	}
	sort.Strings(ix.names)
	return ix
}

// Pattern is a compiled host pattern.
type Pattern struct {
	text  string
	terms []term
}

// A term is one ':'- or ','-separated part of a pattern.
type term struct {
	op         byte   // 0 union, '&' intersection, '!' exclusion
	kind       byte   // 'a' all, 'l' literal, 'g' glob, '~' regex
	name       string // lower-cased name or glob; regex source as written
	glob       *glob
	re         *regexp.Regexp
	start, end int // bytes of the name (after op) in the pattern text
}

// Parse compiles a host pattern. Errors quote the pattern and say what was
// expected; the caller adds the position in its file.
func Parse(s string) (*Pattern, error) {
	p := &Pattern{text: s}
	for _, sp := range split(s) {
		t, err := parseTerm(s, sp[0], sp[1])
		if err != nil {
			return nil, fmt.Errorf("host pattern %q: %v", s, err)
		}
		if t != nil {
			p.terms = append(p.terms, *t)
		}
	}
	if len(p.terms) == 0 {
		return nil, fmt.Errorf(`host pattern %q: empty pattern, expected a host or group name such as "cloud.*"`, s)
	}
	return p, nil
}

// split returns the byte spans of the terms of s. Separators inside a
// character class do not split, so "edge.[1,2]" stays one term; an unclosed
// class swallows the rest, for parseTerm to report. In a "~" term, which
// often needs them, separators inside (), {} or after a backslash do not
// split either, so "~(?:fog|edge){1,2}" stays one term.
func split(s string) [][2]int {
	var spans [][2]int
	start, depth, regex := 0, 0, isRegex(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[':
			j := i + 1
			if j < len(s) && (s[j] == '!' || s[j] == '^') {
				j++
			}
			if j < len(s) && s[j] == ']' {
				j++
			}
			if k := strings.IndexByte(s[j:], ']'); k >= 0 {
				i = j + k
			} else {
				i = len(s)
			}
		case !regex:
			if c == ':' || c == ',' {
				spans = append(spans, [2]int{start, i})
				start = i + 1
				regex = isRegex(s[start:])
			}
		case c == '\\':
			i++
		case c == '(' || c == '{':
			depth++
		case c == ')' || c == '}':
			depth = max(depth-1, 0)
		case depth == 0 && (c == ':' || c == ','):
			spans = append(spans, [2]int{start, i})
			start = i + 1
			regex = isRegex(s[start:])
		}
	}
	return append(spans, [2]int{start, len(s)})
}

// isRegex reports whether the term at the start of s is a "~" term.
func isRegex(s string) bool {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	if s != "" && (s[0] == '&' || s[0] == '!') {
		s = strings.TrimLeft(s[1:], " \t\n\r\v\f")
	}
	return strings.HasPrefix(s, "~")
}

// parseTerm parses s[start:end]. It returns nil for a blank term.
func parseTerm(s string, start, end int) (*term, error) {
	trim := func() {
		for start < end && isSpace(s[start]) {
			start++
		}
		for end > start && isSpace(s[end-1]) {
			end--
		}
	}
	trim()
	if start == end {
		return nil, nil
	}
	written := s[start:end]
	t := &term{}
	if c := s[start]; c == '&' || c == '!' {
		t.op = c
		start++
		trim()
		if start == end {
			return nil, fmt.Errorf("%q must be followed by a name", string(c))
		}
		if c2 := s[start]; c2 == '&' || c2 == '!' {
			return nil, fmt.Errorf("term %q: expected a name after %q, found %q", written, string(c), string(c2))
		}
	}
	t.start, t.end = start, end
	text := s[start:end]
	if text[0] == '~' {
		src := text[1:]
		if src == "" {
			return nil, fmt.Errorf(`"~" must be followed by a regular expression`)
		}
		// Compile the source alone first, so the error quotes what the
		// user wrote rather than our anchoring.
		_, err := regexp.Compile(src)
		if err == nil {
			t.re, err = regexp.Compile(`(?i)^(?:` + src + `)`)
		}
		if err != nil {
			return nil, fmt.Errorf("term %q: invalid regular expression: %v", written, err)
		}
		t.kind, t.name = '~', src
		return t, nil
	}
	t.name = strings.ToLower(text)
	switch {
	case t.name == "all" || t.name == "*":
		t.kind = 'a'
	case !strings.ContainsAny(t.name, "*?["):
		t.kind = 'l'
	default:
		g, err := compileGlob(t.name)
		if err != nil {
			return nil, fmt.Errorf("%v in term %q", err, written)
		}
		t.kind, t.glob = 'g', g
	}
	return t, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.text }

// Select returns the indices of the entries the pattern selects, in
// ascending order, or nil if there are none.
func (p *Pattern) Select(ix *Index) []int {
	set := make([]uint64, len(ix.all))
	union := false
	for i := range p.terms {
		if t := &p.terms[i]; t.op == 0 {
			union = true
			list, s := ix.match(t)
			add(set, list, s)
		}
	}
	if !union {
		copy(set, ix.all)
	}
	var tmp []uint64
	for i := range p.terms {
		if t := &p.terms[i]; t.op == '&' {
			list, s := ix.match(t)
			if s == nil {
				if tmp == nil {
					tmp = make([]uint64, len(set))
				} else {
					clear(tmp)
				}
				add(tmp, list, nil)
				s = tmp
			}
			for w := range set {
				set[w] &= s[w]
			}
		}
	}
	for i := range p.terms {
		if t := &p.terms[i]; t.op == '!' {
			list, s := ix.match(t)
			for _, e := range list {
				set[e/64] &^= 1 << (e % 64)
			}
			for w := range s {
				set[w] &^= s[w]
			}
		}
	}
	n := 0
	for _, w := range set {
		n += bits.OnesCount64(w)
	}
	if n == 0 {
		return nil
	}
	out := make([]int, 0, n)
	for i, w := range set {
		for w != 0 {
			out = append(out, i*64+bits.TrailingZeros64(w))
			w &= w - 1
		}
	}
	return out
}

// add adds a list or a set of entries to set.
func add(set []uint64, list []int, s []uint64) {
	for _, e := range list {
		set[e/64] |= 1 << (e % 64)
	}
	for w := range s {
		set[w] |= s[w]
	}
}

// match returns the entries t matches, either as an ascending list (for a
// literal, straight from the map) or as a set. Neither may be modified.
func (ix *Index) match(t *term) ([]int, []uint64) {
	switch t.kind {
	case 'a':
		return nil, ix.all
	case 'l':
		return ix.byName[t.name], nil
	}
	key := string(t.kind) + t.name
	ix.mu.RLock()
	s, ok := ix.cache[key]
	ix.mu.RUnlock()
	if ok {
		return nil, s
	}
	// Test each distinct name once; a glob need only look at the sorted
	// range of names that start with its literal prefix.
	s = make([]uint64, len(ix.all))
	names := ix.names
	if t.glob != nil {
		prefix := t.glob.literalPrefix()
		lo := sort.SearchStrings(names, prefix)
		hi := lo + sort.Search(len(names)-lo, func(i int) bool {
			return !strings.HasPrefix(names[lo+i], prefix)
		})
		names = names[lo:hi]
	}
	for _, name := range names {
		if t.matchName(name) {
			add(s, ix.byName[name], nil)
		}
	}
	ix.mu.Lock()
	if len(ix.cache) >= cacheLimit {
		clear(ix.cache)
	}
	ix.cache[key] = s
	ix.mu.Unlock()
	return nil, s
}

// matchName reports whether t matches one (lower-case) name.
func (t *term) matchName(name string) bool {
	switch t.kind {
	case 'a':
		return true
	case 'l':
		return name == t.name
	case 'g':
		return t.glob.match(name)
	}
	return t.re.MatchString(name)
}

// Hint suggests a correction for a pattern that selects nothing, in the form
// `did you mean "cloud.kafka.*.leader.*"?`, or returns "". It fixes each
// added or intersected term that matches no entry: first by appending ".*",
// which catches a group written without its members, then, for a plain name,
// by the closest existing name.
func (p *Pattern) Hint(ix *Index) string {
	if p.Select(ix) != nil {
		return ""
	}
	type fix struct {
		start, end int
		text       string
	}
	var fixes []fix
	for i := range p.terms {
		t := &p.terms[i]
		if t.op == '!' || t.kind == '~' || !ix.empty(t) {
			continue
		}
		written := p.text[t.start:t.end]
		if star, err := parseTerm(written+".*", 0, len(written)+2); err == nil && star != nil && !ix.empty(star) {
			fixes = append(fixes, fix{t.start, t.end, written + ".*"})
			continue
		}
		switch t.kind {
		case 'l':
			if c := suggest.Closest(t.name, ix.near(t.name)); c != "" {
				fixes = append(fixes, fix{t.start, t.end, c})
			}
		case 'g':
			if c := ix.fixSegment(written); c != "" {
				fixes = append(fixes, fix{t.start, t.end, c})
			}
		}
	}
	if len(fixes) == 0 {
		return ""
	}
	var b strings.Builder
	prev := 0
	for _, f := range fixes {
		b.WriteString(p.text[prev:f.start])
		b.WriteString(f.text)
		prev = f.end
	}
	b.WriteString(p.text[prev:])
	return fmt.Sprintf("did you mean %q?", b.String())
}

// fixSegment corrects one misspelt literal segment of a dotted wildcard
// term, as in "cloud.kafka.*.leadr", returning the corrected term when it
// matches something.
func (ix *Index) fixSegment(written string) string {
	segs := strings.Split(written, ".")
	vocab := ix.segments()
	for i, seg := range segs {
		low := strings.ToLower(seg)
		if strings.ContainsAny(seg, "*?[") {
			continue
		}
		c := suggest.Closest(low, vocab)
		if c == "" || c == low {
			continue
		}
		cand := strings.Join(slices.Concat(segs[:i], []string{c}, segs[i+1:]), ".")
		if t, err := parseTerm(cand, 0, len(cand)); err == nil && t != nil && !ix.empty(t) {
			return cand
		}
	}
	return ""
}

// segments returns the distinct dot-separated parts of every name, sorted.
func (ix *Index) segments() []string {
	ix.segOnce.Do(func() {
		seen := map[string]bool{}
		for _, name := range ix.names {
			for _, seg := range strings.Split(name, ".") {
				if !seen[seg] {
					seen[seg] = true
					ix.segs = append(ix.segs, seg)
				}
			}
		}
		sort.Strings(ix.segs)
	})
	return ix.segs
}

// empty reports whether t matches no entry.
func (ix *Index) empty(t *term) bool {
	list, s := ix.match(t)
	return len(list) == 0 && !slices.ContainsFunc(s, func(w uint64) bool { return w != 0 })
}

// near returns the names whose length in runes is close enough to word's
// for suggest.Closest to accept them. Filtering first keeps a hint for a
// very long word from comparing it with every name.
func (ix *Index) near(word string) []string {
	n, slack := utf8.RuneCountInString(word), len(word)/3
	var out []string
	for _, name := range ix.names {
		if d := utf8.RuneCountInString(name) - n; -slack <= d && d <= slack {
			out = append(out, name)
		}
	}
	return out
}
