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
// literal's "}}" does not end an expression early, as in Jinja.
func lexTag(src string, open, p int, closer string) (toks []token, end int, trimR bool, err error) {
	depth := 0
	for {
		for p < len(src) && strings.IndexByte(" \t\r\n", src[p]) >= 0 {
			p++
		}
		if p >= len(src) {
			return nil, 0, false, errAt(src, open, fmt.Sprintf("unclosed %q (missing %q)", src[open:open+2], closer))
		}
		if depth == 0 {
			if strings.HasPrefix(src[p:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 2, false, nil
			}
			if src[p] == '-' && strings.HasPrefix(src[p+1:], closer) {
				return append(toks, token{kind: tEnd, pos: p}), p + 3, true, nil
			}
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
			s, n, err := lexString(src, p)
			if err != nil {
				return nil, 0, false, err
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
				return nil, 0, false, errAt(src, p, fmt.Sprintf("unexpected character %q", runeAt(src, p)))
			}
			switch op {
			case "{":
				depth++
			case "}":
				depth--
			}
			p += len(op)
			toks = append(toks, token{kind: tOp, val: op, pos: start})
		}
	}
}

// lexString decodes a quoted literal with Python's escapes; an unknown
// escape keeps its backslash, so regex patterns like '\d+' work as in Jinja.
func lexString(src string, p int) (string, int, error) {
	q := src[p]
	var b strings.Builder
	for i := p + 1; i < len(src); i++ {
		c := src[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
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
	return "", 0, errAt(src, p, "unclosed string literal")
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
