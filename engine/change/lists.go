package change

import (
	"fmt"
	"strings"
)

// order lists the keys of before and after in one order: after's, each key
// only in before just ahead of the first kept key that followed it in before
// (at the end if none). Keys are unique in each list.
func order(before, after []string) []string {
	inAfter := map[string]bool{}
	for _, k := range after {
		inAfter[k] = true
	}
	at := map[string]int{}
	for i, k := range before {
		at[k] = i
	}
	out := make([]string, 0, len(after))
	next := 0 // the first key of before not placed yet
	removedUpTo := func(j int) {
		for ; next < j; next++ {
			if !inAfter[before[next]] {
				out = append(out, before[next])
			}
		}
	}
	for _, k := range after {
		if j, ok := at[k]; ok && j >= next {
			removedUpTo(j)
			next = j + 1
		}
		out = append(out, k)
	}
	removedUpTo(len(before))
	return out
}

// named keys a list by name, the nth item of a name written again named
// "name #n".
func named[T any](list []T, name func(T) string) ([]string, map[string]T) {
	names := make([]string, 0, len(list))
	byName := map[string]T{}
	seen := map[string]int{}
	for _, x := range list {
		n := name(x)
		if seen[n]++; seen[n] > 1 {
			n = fmt.Sprintf("%s #%d", n, seen[n])
		}
		names = append(names, n)
		byName[n] = x
	}
	return names, byName
}

// notIn lists the elements of list that are not in other, in list's order.
func notIn(list, other []string) []string {
	in := make(map[string]bool, len(other))
	for _, x := range other {
		in[x] = true
	}
	var out []string
	for _, x := range list {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// delta writes names added, removed and changed as "+a, -b, ~c"; past four
// of one kind, the first three and how many more.
func delta(added, removed []string, changed ...string) string {
	var parts []string
	for _, g := range []struct {
		sign  string
		names []string
	}{{"+", added}, {"-", removed}, {"~", changed}} {
		for i, n := range g.names {
			if i == 3 && len(g.names) > 4 {
				parts = append(parts, fmt.Sprintf("%s%d more", g.sign, len(g.names)-3))
				break
			}
			parts = append(parts, g.sign+n)
		}
	}
	return strings.Join(parts, ", ")
}

// appendDelta adds "label +a, -b" to what when the lists hold different
// names (an order alone is no change).
func appendDelta(what []string, label string, before, after []string) []string {
	if s := delta(notIn(after, before), notIn(before, after)); s != "" {
		what = append(what, label+" "+s)
	}
	return what
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
