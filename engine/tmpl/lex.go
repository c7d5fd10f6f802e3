package tmpl

import (
	"fmt"
	"regexp"
	"strings"
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
	segText segKind = iota
	segRaw          // the body of {% raw %}: text that must not be interpreted
	segExpr
	segStmt
)

type segment struct {
	kind         segKind
	pos          int
	text         string  // segText, segRaw
	toks         []token // segExpr, segStmt; ends with tEnd
	trimL, trimR bool    // "{{-" and "-}}" whitespace control
}

var endRaw = regexp.MustCompile(`\{%-?\s*endraw\s*-?%\}`)

// scan splits src into text and tags the way Jinja's lexer does: the
// earliest "{{", "{%" or "{#" opens a tag. Comments are dropped.
func scan(src string) ([]segment, error) {
	var segs []segment
	i := 0
	for i < len(src) {
		j := openAt(src, i)
		if j < 0 {
			segs = append(segs, segment{kind: segText, pos: i, text: src[i:]})
			break
		}
		if j > i {
			segs = append(segs, segment{kind: segText, pos: i, text: src[i:j]})
		}
		if src[j+1] == '#' {
			k := strings.Index(src[j+2:], "#}")
			if k < 0 {
				return nil, errAt(src, j, `unclosed comment "{#" (missing "#}")`)
			}
			i = j + 2 + k + 2
			continue
		}
		seg := segment{kind: segExpr, pos: j}
		closer := "}}"
		if src[j+1] == '%' {
			seg.kind, closer = segStmt, "%}"
		}
		p := j + 2
		if p < len(src) && src[p] == '-' {
			seg.trimL = true
			p++
		}
		toks, end, trimR, err := lexTag(src, j, p, closer)
		if err != nil {
			return nil, err
		}
		seg.toks, seg.trimR, i = toks, trimR, end
		if seg.kind == segStmt && len(toks) == 2 && toks[0].kind == tName && toks[0].val == "raw" {
			loc := endRaw.FindStringIndex(src[i:])
			if loc == nil {
				return nil, errAt(src, j, `unclosed "raw" block (missing {% endraw %})`)
			}
			segs = append(segs, segment{kind: segRaw, pos: i, text: src[i : i+loc[0]]})
			i += loc[1]
			continue
		}
		segs = append(segs, seg)
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
func lexTag(src string, open, p int, closer string) (toks []token, end int, trimR bool, err error) {
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
			return nil, 0, false, unclosed("")
		}
		if depth == 0 {
			if strings.HasPrefix(src[p:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 2, false, nil
			}
			if src[p] == '-' && strings.HasPrefix(src[p+1:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 3, true, nil
			}
		}
		if isOpener(src, p) { // no expression contains "{{", "{%" or "{#"
			return nil, 0, false, unclosed(fmt.Sprintf("%q at %s", src[p:p+2], where(src, p)))
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
			for p < len(src) && isDigit(src[p]) {
				p++
			}
			kind := tInt
			// After a dot, "xs.0.1" is two indexes, not a float (Jinja does the same).
			if (start == 0 || src[start-1] != '.') && p+1 < len(src) && src[p] == '.' && isDigit(src[p+1]) {
				p++
				for p < len(src) && isDigit(src[p]) {
					p++
				}
				kind = tFloat
			}
			toks = append(toks, token{kind: kind, val: src[start:p], pos: start})
		case c == '\'' || c == '"':
			s, n, ok := lexString(src, p)
			if !ok {
				return nil, 0, false, lexErr(p, "unclosed string literal")
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
				return nil, 0, false, lexErr(p, fmt.Sprintf("unexpected character %q", runeAt(src, p)))
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
					return nil, 0, false, errAt(src, p, `unexpected "}"`)
				}
				return nil, 0, false, unclosed(fmt.Sprintf(`"}" at %s`, where(src, p)))
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

// lexString decodes a quoted literal with Python's escapes; an unknown
// escape keeps its backslash, so regex patterns like '\d+' work as in Jinja.
func lexString(src string, p int) (string, int, bool) {
	q := src[p]
	var b strings.Builder
	for i := p + 1; i < len(src); i++ {
		c := src[i]
		switch {
		case c == q:
			return b.String(), i + 1, true
		case c == '\\' && i+1 < len(src):
			i++
			switch e := src[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
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
