package schema

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
)

// Ansible's key=value module arguments (copy: src=a dest=b), and the
// options it takes out of a free-form command line (shell: pwd chdir=/tmp),
// read as ansible/parsing/splitter.py does in ansible-core 2.14.

// freeFormOptions are the words Ansible takes out of a shell or command
// line as options when written key=value; the others stay in the command.
var freeFormOptions = []string{"creates", "removes", "chdir", "executable", "warn", "stdin", "stdin_add_newline", "strip_empty_ends"}

// parseKV is Ansible's parse_kv: the key=value words of s as options, and
// the other words joined as they were written. With freeForm (shell,
// command) only freeFormOptions are options.
func parseKV(s string, freeForm bool) (options map[string]string, raw string, err error) {
	words, err := splitArgs(s)
	if err != nil {
		return nil, "", err
	}
	options = map[string]string{}
	var rest []string
	for _, word := range words {
		x := decodeEscapes(word)
		pos := equalsAt(x)
		switch {
		case pos < 0 && strings.Contains(x, "="): // only escaped ones
			rest = append(rest, strings.ReplaceAll(x, `\=`, "="))
		case pos < 0:
			rest = append(rest, word)
		case freeForm && !contains(freeFormOptions, x[:pos]):
			rest = append(rest, word)
		default:
			options[strings.TrimSpace(x[:pos])] = unquote(strings.TrimSpace(x[pos+1:]))
		}
	}
	return options, joinArgs(rest), nil
}

// equalsAt is the first '=' after the first character that no backslash
// escapes, or -1.
func equalsAt(x string) int {
	for i := 1; i < len(x); i++ {
		if x[i] == '=' && x[i-1] != '\\' {
			return i
		}
	}
	return -1
}

var escapes = regexp.MustCompile(`\\U[0-9a-fA-F]{8}|\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\[\\'"abfnrtv]`)

// decodeEscapes is _decode_escapes (Python's unicode-escape of each
// escape sequence; \N{name} is left as written).
func decodeEscapes(s string) string {
	return escapes.ReplaceAllStringFunc(s, func(e string) string {
		if u, err := strconv.Unquote(`"` + e + `"`); err == nil {
			return u
		}
		if e == `\'` {
			return "'"
		}
		return e
	})
}

// unquote is ansible.parsing.quoting.unquote: one pair of matching outer
// quotes removed.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] && s[len(s)-2] != '\\' {
		return s[1 : len(s)-1]
	}
	return s
}

// joinArgs is join_args: words joined by a space, except after a newline.
func joinArgs(words []string) string {
	var b strings.Builder
	for _, w := range words {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

var errUnbalanced = errors.New("unbalanced quotes or {{ }}, {% %}, {# #} (Ansible could not split these arguments either)")

// splitArgs is split_args: words split on spaces and newlines, keeping
// together what is inside quotes or Jinja2 blocks, with the spaces and
// newlines that separated them kept at the end of each word.
func splitArgs(args string) ([]string, error) {
	var params []string
	var quote byte
	printDepth, blockDepth, commentDepth := 0, 0, 0
	lines := strings.Split(args, "\n")
	for li, line := range lines {
		tokens := strings.Split(line, " ")
		continuation := false
		for idx, token := range tokens {
			if token == "" && idx != 0 {
				if len(params) > 0 {
					params[len(params)-1] += " "
				}
				continue
			}
			if token == `\` && quote == 0 {
				continuation = true
				continue
			}
			wasQuoted := quote != 0
			quote = quoteState(token, quote)
			quoted := quote != 0
			inJinja := printDepth > 0 || blockDepth > 0 || commentDepth > 0
			appended := false
			switch {
			case quoted && !wasQuoted && !inJinja:
				params = append(params, token)
				appended = true
			case inJinja || quoted || wasQuoted:
				switch {
				case len(params) == 0:
					params = append(params, token)
				case idx == 0 && wasQuoted:
					params[len(params)-1] += token
				case len(tokens) > 1:
					spacer := ""
					if idx > 0 {
						spacer = " "
					}
					params[len(params)-1] += spacer + token
				default:
					params[len(params)-1] += "\n" + token
				}
				appended = true
			}
			for _, b := range []struct {
				depth       *int
				open, close string
			}{{&printDepth, "{{", "}}"}, {&blockDepth, "{%", "%}"}, {&commentDepth, "{#", "#}"}} {
				prev := *b.depth
				*b.depth = jinjaDepth(token, prev, b.open, b.close)
				if *b.depth != prev && !appended {
					params = append(params, token)
					appended = true
				}
			}
			if printDepth == 0 && blockDepth == 0 && commentDepth == 0 && quote == 0 && !appended && token != "" {
				params = append(params, token)
			}
		}
		if len(lines) > 1 && li != len(lines)-1 && !continuation && len(params) > 0 {
			params[len(params)-1] += "\n"
		}
	}
	if printDepth > 0 || blockDepth > 0 || commentDepth > 0 || quote != 0 {
		return nil, errUnbalanced
	}
	return params, nil
}

// quoteState is _get_quote_state: the quote still open after token.
func quoteState(token string, quote byte) byte {
	for i := 0; i < len(token); i++ {
		c := token[i]
		if (c == '"' || c == '\'') && (i == 0 || token[i-1] != '\\') {
			switch {
			case quote == 0:
				quote = c
			case c == quote:
				quote = 0
			}
		}
	}
	return quote
}

// jinjaDepth is _count_jinja2_blocks.
func jinjaDepth(token string, depth int, open, close string) int {
	if o, c := strings.Count(token, open), strings.Count(token, close); o != c {
		depth = max(depth+o-c, 0)
	}
	return depth
}
