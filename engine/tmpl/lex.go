package tmpl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

type tokKind int

const (
	tEnd tokKind = iota // the closing "}}" or "%}"
	tName
	tInt
	tFloat
	tStr
	tOp
)

// token is one lexeme inside "{{ }}" or "{% %}". For strings val is the
// decoded value; pos is the byte offset in the user's template.
type token struct {
	kind tokKind
	val  string
	pos  int
}

type segKind int

const (
	segText    segKind = iota
	segRaw             // the body of {% raw %}: text that must not be interpreted
	segExpr            // {{ }}
	segStmt            // {% %}
	segComment         // {# #}, which renders nothing
)

type segment struct {
	kind         segKind
	pos          int
	text         string  // segText, segRaw
	toks         []token // segExpr, segStmt; ends with tEnd
	trimL, trimR bool    // "{%-" and "-%}" whitespace control
	keepR        bool    // "+%}": no trim_blocks after this tag
}

// Jinja's number literals: 1_000, 0x1f, 0o17, 0b101; 1.5, 1e3, 2.5E-3.
var (
	intRE   = regexp.MustCompile(`^(?i:0b(_?[01])+|0o(_?[0-7])+|0x(_?[0-9a-f])+|[1-9](_?[0-9])*|0(_?0)*)`)
	floatRE = regexp.MustCompile(`^(?i:([0-9]+_)*[0-9]+((\.([0-9]+_)*[0-9]+)?e[+-]?([0-9]+_)*[0-9]+|\.([0-9]+_)*[0-9]+))`)
)

var endRaw = regexp.MustCompile(`\{%([-+]?)\s*endraw\s*([-+]?)%\}`)

// scan splits src into text and tags the way Jinja's lexer does: the
// earliest "{{", "{%" or "{#" opens a tag. Whitespace control is applied as
// Ansible configures Jinja: "-" strips all whitespace on its side of a tag,
// and (trim_blocks) the first newline after a block or comment tag is
// removed unless the tag ends in "+%}"; lstrip_blocks is off.
//
// With literal, as Ansible templates a task's field, backslashes in the
// string literals of "{{ }}" are plain characters (Ansible doubles them
// before Jinja reads them).
func scan(src string, literal bool) ([]segment, error) {
	var segs []segment
	lead := 0 // what to strip from the next text: 1 one newline, 2 all whitespace
	text := func(pos int, t string) {
		switch {
		case lead == 2:
			rest := strings.TrimLeftFunc(t, isSpace)
			pos, t = pos+len(t)-len(rest), rest
		case lead == 1 && strings.HasPrefix(t, "\r\n"):
			pos, t = pos+2, t[2:]
		case lead == 1 && (strings.HasPrefix(t, "\n") || strings.HasPrefix(t, "\r")):
			pos, t = pos+1, t[1:]
		}
		lead = 0
		if t != "" {
			segs = append(segs, segment{kind: segText, pos: pos, text: t})
		}
	}
	// after sets what follows a tag: "-" strips, block tags trim a newline.
	after := func(trimR, keepR, block bool) {
		switch {
		case trimR:
			lead = 2
		case block && !keepR:
			lead = 1
		default:
			lead = 0
		}
	}
	// before strips the text before a tag opened with "-".
	before := func(trimL bool) {
		if n := len(segs); trimL && n > 0 && segs[n-1].kind == segText {
			segs[n-1].text = strings.TrimRightFunc(segs[n-1].text, isSpace)
		}
	}
	i := 0
	for i < len(src) {
		j := openAt(src, i)
		if j < 0 {
			text(i, src[i:])
			break
		}
		if j > i {
			text(i, src[i:j])
		} else {
			lead = 0 // tag follows tag: nothing to strip
		}
		p := j + 2
		trimL := p < len(src) && src[p] == '-'
		if p < len(src) && (src[p] == '-' || src[p] == '+' && src[j+1] != '{') {
			p++
		}
		before(trimL)
		if src[j+1] == '#' {
			k := strings.Index(src[p:], "#}")
			if k < 0 {
				return nil, errAt(src, j, `unclosed comment "{#" (missing "#}")`)
			}
			end := p + k
			mod := byte(0)
			if end > p {
				mod = src[end-1]
			}
			segs = append(segs, segment{kind: segComment, pos: j})
			i = end + 2
			after(mod == '-', mod == '+', true)
			continue
		}
		seg := segment{kind: segExpr, pos: j, trimL: trimL}
		closer := "}}"
		if src[j+1] == '%' {
			seg.kind, closer = segStmt, "%}"
		}
		toks, end, mod, err := lexTag(src, j, p, closer, literal && seg.kind == segExpr)
		if err != nil {
			return nil, err
		}
		seg.toks, seg.trimR, seg.keepR, i = toks, mod == '-', mod == '+', end
		if seg.kind == segStmt && len(toks) == 2 && toks[0].kind == tName && toks[0].val == "raw" {
			loc := endRaw.FindStringSubmatchIndex(src[i:])
			if loc == nil {
				return nil, errAt(src, j, `unclosed "raw" block (missing {% endraw %})`)
			}
			body, pos := src[i:i+loc[0]], i
			if seg.trimR {
				rest := strings.TrimLeftFunc(body, isSpace)
				pos, body = pos+len(body)-len(rest), rest
			}
			if loc[3] > loc[2] && src[i+loc[2]] == '-' {
				body = strings.TrimRightFunc(body, isSpace)
			}
			segs = append(segs, segment{kind: segRaw, pos: pos, text: body})
			closeMod := byte(0)
			if loc[5] > loc[4] {
				closeMod = src[i+loc[4]]
			}
			i += loc[1]
			after(closeMod == '-', closeMod == '+', true)
			continue
		}
		segs = append(segs, seg)
		after(seg.trimR, seg.keepR, seg.kind == segStmt)
	}
	return segs, nil
}

// openAt returns the offset of the first tag opener at or after i, or -1.
func openAt(src string, i int) int {
	for {
		k := strings.IndexByte(src[i:], '{')
		if k < 0 || i+k+1 >= len(src) {
			return -1
		}
		i += k
		if c := src[i+1]; c == '{' || c == '%' || c == '#' {
			return i
		}
		i++
	}
}

// lexTag tokenizes from p up to closer. Braces are counted so that a dict
// literal's "}}" does not end an expression early, as in Jinja. A tag that
// runs into the end of the text, a lone "}" or another tag is reported as
// unclosed, at its opener.
func lexTag(src string, open, p int, closer string, literal bool) (toks []token, end int, mod byte, err error) {
	unclosed := func(found string) error {
		msg := fmt.Sprintf("unclosed %q (missing %q)", src[open:open+2], closer)
		if found != "" {
			msg = fmt.Sprintf("unclosed %q (missing %q; found %s)", src[open:open+2], closer, found)
		}
		return errAt(src, open, msg)
	}
	// lexErr is an error at pos, or the unclosed tag when no closer comes
	// before the next tag: then the text after the opener was never meant
	// as an expression.
	lexErr := func(pos int, msg string) error {
		c, o := strings.Index(src[pos:], closer), openAt(src, pos)
		if c < 0 || o >= 0 && o < pos+c {
			return unclosed("")
		}
		return errAt(src, pos, msg)
	}
	depth := 0
	for {
		for p < len(src) && strings.IndexByte(" \t\r\n", src[p]) >= 0 {
			p++
		}
		if p >= len(src) {
			return nil, 0, 0, unclosed("")
		}
		if depth == 0 {
			if strings.HasPrefix(src[p:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 2, 0, nil
			}
			if (src[p] == '-' || src[p] == '+' && closer == "%}") && strings.HasPrefix(src[p+1:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 3, src[p], nil
			}
		}
		if isOpener(src, p) { // no expression contains "{{", "{%" or "{#"
			return nil, 0, 0, unclosed(fmt.Sprintf("%q at %s", src[p:p+2], where(src, p)))
		}
		c := src[p]
		start := p
		switch {
		case isIdentStart(c):
			for p < len(src) && isIdentChar(src[p]) {
				p++
			}
			toks = append(toks, token{kind: tName, val: src[start:p], pos: start})
		case isDigit(c):
			kind := tInt
			n := len(intRE.FindString(src[p:]))
			// After a dot, "xs.0.1" is two indexes, not a float (Jinja does the same).
			if f := floatRE.FindString(src[p:]); f != "" && (start == 0 || src[start-1] != '.') {
				kind, n = tFloat, len(f)
			}
			p += n
			toks = append(toks, token{kind: kind, val: strings.ReplaceAll(src[start:p], "_", ""), pos: start})
		case c == '\'' || c == '"':
			s, n, ok := lexString(src, p, literal)
			if !ok {
				return nil, 0, 0, lexErr(p, "unclosed string literal")
			}
			p = n
			toks = append(toks, token{kind: tStr, val: s, pos: start})
		default:
			op := ""
			for _, o := range []string{"**", "//", "==", "!=", "<=", ">="} {
				if strings.HasPrefix(src[p:], o) {
					op = o
					break
				}
			}
			if op == "" && strings.IndexByte("+-*/%~|.,:()[]{}<>=", c) >= 0 {
				op = string(c)
			}
			if op == "" {
				return nil, 0, 0, lexErr(p, fmt.Sprintf("unexpected character %q", runeAt(src, p)))
			}
			switch {
			case op == "{":
				depth++
			case op == "}" && depth > 0:
				depth--
			case op == "}":
				// A "}" that closes nothing: a stray one before the closer,
				// or half of a closer mistyped.
				rest := strings.TrimLeft(src[p+1:], " \t\r\n")
				if strings.HasPrefix(rest, closer) || strings.HasPrefix(rest, "-"+closer) {
					return nil, 0, 0, errAt(src, p, `unexpected "}"`)
				}
				return nil, 0, 0, unclosed(fmt.Sprintf(`"}" at %s`, where(src, p)))
			}
			p += len(op)
			toks = append(toks, token{kind: tOp, val: op, pos: start})
		}
	}
}

// isOpener reports whether a tag opens at p.
func isOpener(src string, p int) bool {
	return src[p] == '{' && p+1 < len(src) && strings.IndexByte("{%#", src[p+1]) >= 0
}

// where names byte offset pos of src for a message: "line 2, column 5".
func where(src string, pos int) string {
	e := errAt(src, pos, "")
	return fmt.Sprintf("line %d, column %d", e.Line, e.Col)
}

// lexString decodes a quoted literal as Jinja does (Python's
// unicode-escape: \n, \x41, \u00e9, octal...); an unknown escape keeps its
// backslash, so regex patterns like '\d+' work as in Jinja. Line breaks
// inside the literal are read as "\n". With literal, a backslash is a
// plain character and the first quote ends the string, which is what
// Jinja reads once Ansible has doubled every backslash.
func lexString(src string, p int, literal bool) (string, int, bool) {
	q := src[p]
	var b strings.Builder
	for i := p + 1; i < len(src); i++ {
		c := src[i]
		switch {
		case c == q:
			return b.String(), i + 1, true
		case c == '\r':
			b.WriteByte('\n')
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
		case c == '\\' && i+1 < len(src) && !literal:
			i++
			if r, n := escape(src[i:]); n > 0 {
				if r >= 0 {
					b.WriteRune(r)
				}
				i += n - 1
				continue
			}
			b.WriteByte('\\')
			b.WriteByte(src[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// escape decodes the escape sequence at the start of s (after its
// backslash), returning the character (-1 for none) and the bytes it used,
// or 0 bytes for an escape Python does not know.
func escape(s string) (rune, int) {
	if r, ok := map[byte]rune{'n': '\n', 't': '\t', 'r': '\r', '\\': '\\', '\'': '\'', '"': '"',
		'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v', '\n': -1}[s[0]]; ok {
		return r, 1 // -1 for a backslash before a line break, which joins the lines
	}
	digits := func(n int, base int) (rune, int) {
		if len(s) < 1+n {
			return 0, 0
		}
		v, err := strconv.ParseUint(s[1:1+n], base, 32)
		if err != nil || v > unicode.MaxRune {
			return 0, 0
		}
		return rune(v), 1 + n
	}
	switch s[0] {
	case 'x':
		return digits(2, 16)
	case 'u':
		return digits(4, 16)
	case 'U':
		return digits(8, 16)
	}
	n := 0
	for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
		n++
	}
	if n == 0 {
		return 0, 0
	}
	v, _ := strconv.ParseUint(s[:n], 8, 32)
	return rune(v), n
}

func isIdentStart(c byte) bool { return c == '_' || c|0x20 >= 'a' && c|0x20 <= 'z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

func runeAt(s string, p int) rune {
	for _, r := range s[p:] {
		return r
	}
	return 0
}
