package pattern

import (
	"fmt"
	"unicode/utf8"
)

// A glob is a compiled shell wildcard pattern. It is kept as the runs of
// fixed-width items between stars, because such runs can be placed leftmost
// without backtracking, so matching never goes exponential.
type glob struct {
	chunks [][]item // len(chunks) = number of stars + 1
}

// An item matches exactly one rune: a literal, any rune ('?'), or a class.
type item struct {
	kind   byte   // 'l' literal, '?' any rune, '[' class
	r      rune   // the literal
	neg    bool   // class is negated with '!' or '^'
	ranges []rune // class as lo, hi pairs
}

// compileGlob compiles an fnmatch-style pattern. The error says what is
// wrong with the pattern; the caller names the term and the whole pattern.
func compileGlob(p string) (*glob, error) {
	g := &glob{chunks: [][]item{nil}}
	for i := 0; i < len(p); {
		r, w := utf8.DecodeRuneInString(p[i:])
		last := len(g.chunks) - 1
		switch r {
		case '*':
			g.chunks = append(g.chunks, nil)
			i += w
		case '?':
			g.chunks[last] = append(g.chunks[last], item{kind: '?'})
			i += w
		case '[':
			it, n, err := compileClass(p[i+w:])
			if err != nil {
				return nil, err
			}
			g.chunks[last] = append(g.chunks[last], it)
			i += w + n
		default:
			g.chunks[last] = append(g.chunks[last], item{kind: 'l', r: r})
			i += w
		}
	}
	return g, nil
}

// compileClass parses a character class whose opening '[' has been
// consumed, following Python's fnmatch: a leading '!' (or '^') negates, a
// ']' right after the opening is literal, and '-' first or last is literal.
// It returns the bytes consumed, including the closing ']'.
func compileClass(p string) (item, int, error) {
	it := item{kind: '['}
	j := 0
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		it.neg = true
		j++
	}
	for first := true; ; first = false {
		if j >= len(p) {
			return it, 0, fmt.Errorf(`unclosed "["`)
		}
		lo, w := utf8.DecodeRuneInString(p[j:])
		if lo == ']' && !first {
			return it, j + w, nil
		}
		j += w
		hi := lo
		if j+1 < len(p) && p[j] == '-' && p[j+1] != ']' {
			var w2 int
			hi, w2 = utf8.DecodeRuneInString(p[j+1:])
			j += 1 + w2
			if hi < lo {
				return it, 0, fmt.Errorf("character class has empty range %q", string(lo)+"-"+string(hi))
			}
		}
		it.ranges = append(it.ranges, lo, hi)
	}
}

func (it *item) match(r rune) bool {
	switch it.kind {
	case 'l':
		return r == it.r
	case '?':
		return true
	}
	in := false
	for k := 0; k < len(it.ranges); k += 2 {
		if it.ranges[k] <= r && r <= it.ranges[k+1] {
			in = true
			break
		}
	}
	return in != it.neg
}

// matchChunk reports whether chunk matches a prefix of s, and its length in
// bytes.
func matchChunk(chunk []item, s string) (int, bool) {
	n := 0
	for k := range chunk {
		if n >= len(s) {
			return 0, false
		}
		r, w := utf8.DecodeRuneInString(s[n:])
		if !chunk[k].match(r) {
			return 0, false
		}
		n += w
	}
	return n, true
}

// match reports whether the glob matches the whole of s.
func (g *glob) match(s string) bool {
	first := g.chunks[0]
	n, ok := matchChunk(first, s)
	if !ok {
		return false
	}
	if len(g.chunks) == 1 {
		return n == len(s)
	}
	s = s[n:]
	// Each middle chunk goes at its leftmost place: that leaves the most
	// room for the chunks after it.
	for _, chunk := range g.chunks[1 : len(g.chunks)-1] {
		for i := 0; ; {
			if n, ok := matchChunk(chunk, s[i:]); ok {
				s = s[i+n:]
				break
			}
			if i >= len(s) {
				return false
			}
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
	}
	// The last chunk must match a suffix of exactly its width in runes.
	last := g.chunks[len(g.chunks)-1]
	i := len(s)
	for range last {
		if i == 0 {
			return false
		}
		_, w := utf8.DecodeLastRuneInString(s[:i])
		i -= w
	}
	_, ok = matchChunk(last, s[i:])
	return ok
}

// literalPrefix is the text every match must start with, which lets the
// index consider only the names in one sorted range.
func (g *glob) literalPrefix() string {
	var b []byte
	for _, it := range g.chunks[0] {
		if it.kind != 'l' {
			break
		}
		b = utf8.AppendRune(b, it.r)
	}
	return string(b)
}
