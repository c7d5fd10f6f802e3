package tmpl

// Python's text formats: json.dumps and the % operator.

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// jsonStyle is json.dumps's options: Ansible's to_json uses the defaults
// (keys in their order, ", " and ": "); to_nice_json sorts the keys and
// indents by 4.
type jsonStyle struct {
	indent   int // < 0: none
	sortKeys bool
	item     string
	key      string
	ascii    bool
}

var defaultJSON = jsonStyle{indent: -1, item: ", ", key: ": ", ascii: true}

// writeJSON writes v as json.dumps does; depth is the indentation level.
func writeJSON(b *strings.Builder, v any, st jsonStyle, depth int) error {
	if b.Len() > maxSize {
		return errTooLarge
	}
	if st.indent > 0 && b.Len()+st.indent*(depth+1) > maxSize {
		return errTooLarge // the indentation alone is too large
	}
	newline := func(d int) {
		if st.indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", st.indent*d))
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
		return nil
	case *missing:
		return x.err()
	}
	if isBool(v) {
		b.WriteString(strconv.FormatBool(truthy(v)))
		return nil
	}
	if n, ok := toNum(v); ok {
		switch {
		case n.isInt:
			b.WriteString(strconv.FormatInt(n.i, 10))
		case math.IsNaN(n.f):
			b.WriteString("NaN")
		case math.IsInf(n.f, 1):
			b.WriteString("Infinity")
		case math.IsInf(n.f, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(n.f))
		}
		return nil
	}
	if s, ok := asStr(v); ok {
		writeJSONString(b, s, st.ascii)
		return nil
	}
	if l, err := asList(v); err == nil {
		if len(l) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range l {
			if i > 0 {
				b.WriteString(st.item)
			}
			newline(depth + 1)
			if err := writeJSON(b, e, st, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte(']')
		return nil
	}
	if keys, ok := keysOf(v); ok {
		if len(keys) == 0 {
			b.WriteString("{}")
			return nil
		}
		if st.sortKeys {
			keys = slices.Sorted(slices.Values(keys))
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(st.item)
			}
			newline(depth + 1)
			writeJSONString(b, k, st.ascii)
			b.WriteString(st.key)
			e, _, _ := getKey(v, k)
			if err := writeJSON(b, e, st, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte('}')
		return nil
	}
	return fmt.Errorf("Object of type %s is not JSON serializable", typeName(v))
}

func writeJSONString(b *strings.Builder, s string, ascii bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r >= 0x20 && r < 0x7f, !ascii && r >= 0x7f:
				b.WriteRune(r)
			case r == utf8.RuneError:
				b.WriteString(`\ufffd`)
			case r > 0xffff:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// percent is Python's format % args (printf-style formatting): args is a
// tuple of values, a mapping for "%(key)s", or a single value.
func percent(format string, args any) (string, error) {
	var list []any
	if t, ok := args.(tuple); ok {
		list = t
	} else {
		list = []any{args}
	}
	mapping := isMapping(args)
	next := 0
	used := false
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		var arg any
		haveArg := false
		if i < len(format) && format[i] == '(' {
			end := strings.IndexByte(format[i:], ')')
			if end < 0 {
				return "", fmt.Errorf("incomplete format key")
			}
			if !mapping {
				return "", fmt.Errorf("format requires a mapping")
			}
			key := format[i+1 : i+end]
			v, ok, _ := getKey(args, key)
			if !ok {
				return "", fmt.Errorf("KeyError: %s", pyRepr(key))
			}
			arg, haveArg, used = v, true, true
			i += end + 1
		}
		start := i
		for i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0 {
			i++
		}
		flags := format[start:i]
		start = i
		for i < len(format) && isDigit(format[i]) {
			i++
		}
		width := format[start:i]
		prec := ""
		if i < len(format) && format[i] == '.' {
			start = i
			i++
			for i < len(format) && isDigit(format[i]) {
				i++
			}
			prec = format[start:i]
		}
		if i < len(format) && format[i] == '*' {
			return "", fmt.Errorf(`"*" widths are not supported`)
		}
		for i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++ // length modifiers, which Python ignores
		}
		if i >= len(format) {
			return "", fmt.Errorf("incomplete format")
		}
		verb := format[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if w, _ := strconv.Atoi(width); w > maxSize {
			return "", fmt.Errorf("width %s is beyond e2c's bound of %d", width, maxSize)
		}
		if p, _ := strconv.Atoi(strings.TrimPrefix(prec, ".")); p > maxSize {
			return "", fmt.Errorf("precision %s is beyond e2c's bound of %d", prec, maxSize)
		}
		if !haveArg {
			if next >= len(list) {
				return "", fmt.Errorf("not enough arguments for format string")
			}
			arg = list[next]
			next++
		}
		s, err := formatOne(verb, flags, width, prec, arg)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
		if b.Len() > maxSize {
			return "", errTooLarge
		}
	}
	if next < len(list) && !(mapping && (used || next == 0)) {
		return "", fmt.Errorf("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

// formatOne formats one value for a % conversion.
func formatOne(verb byte, flags, width, prec string, arg any) (string, error) {
	pad := func(s string) string {
		w, _ := strconv.Atoi(width)
		n := utf8.RuneCountInString(s)
		if n >= w {
			return s
		}
		fill := strings.Repeat(" ", w-n)
		if strings.Contains(flags, "-") {
			return s + fill
		}
		return fill + s
	}
	switch verb {
	case 's', 'r', 'a':
		s := pyStr(arg)
		if verb != 's' {
			s = pyRepr(arg)
		}
		if prec != "" {
			p, _ := strconv.Atoi(prec[1:])
			if r := []rune(s); len(r) > p {
				s = string(r[:p])
			}
		}
		return pad(s), nil
	case 'c':
		if s, ok := asStr(arg); ok {
			if utf8.RuneCountInString(s) != 1 {
				return "", fmt.Errorf("%%c requires int or char")
			}
			return pad(s), nil
		}
		n, ok := toNum(arg)
		if !ok || !n.isInt || n.i < 0 || n.i > unicode.MaxRune {
			return "", fmt.Errorf("%%c requires int or char")
		}
		return pad(string(rune(n.i))), nil
	}
	n, ok := toNum(arg)
	if !ok {
		kind := "a real number"
		if strings.IndexByte("oxX", verb) >= 0 {
			kind = "an integer"
		}
		return "", fmt.Errorf("%%%c format: %s is required, not %s", verb, kind, typeName(arg))
	}
	goFlags := strings.ReplaceAll(flags, "#", "")
	switch verb {
	case 'd', 'i', 'u', 'o', 'x', 'X':
		if strings.IndexByte("oxX", verb) >= 0 && !n.isInt {
			return "", fmt.Errorf("%%%c format: an integer is required, not float", verb)
		}
		i := n.i
		if !n.isInt {
			if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
				return "", fmt.Errorf("cannot convert float %s to integer", pyFloat(n.f))
			}
			i = int64(n.f)
		}
		gv := map[byte]byte{'d': 'd', 'i': 'd', 'u': 'd', 'o': 'o', 'x': 'x', 'X': 'X'}[verb]
		digits := strconv.FormatInt(abs64(i), map[byte]int{'d': 10, 'o': 8, 'x': 16, 'X': 16}[gv])
		if gv == 'X' {
			digits = strings.ToUpper(digits)
		}
		if prec != "" {
			p, _ := strconv.Atoi(prec[1:])
			if len(digits) < p {
				digits = strings.Repeat("0", p-len(digits)) + digits
			}
		}
		if strings.Contains(flags, "#") && gv != 'd' {
			digits = map[byte]string{'o': "0o", 'x': "0x", 'X': "0X"}[gv] + digits
		}
		return signPad(i < 0, digits, goFlags, width), nil
	case 'e', 'E', 'f', 'F', 'g', 'G':
		f := n.f
		p := 6
		if prec != "" {
			p, _ = strconv.Atoi(prec[1:])
		}
		var digits string
		switch {
		case math.IsNaN(f):
			digits = "nan"
		case math.IsInf(f, 0):
			digits = "inf"
		default:
			gv := verb
			if gv == 'F' {
				gv = 'f'
			}
			if (gv == 'g' || gv == 'G') && p == 0 {
				p = 1
			}
			digits = strconv.FormatFloat(math.Abs(f), gv, p, 64)
			if strings.Contains(flags, "#") && !strings.Contains(digits, ".") && (gv == 'f' || gv == 'e' || gv == 'E') {
				if k := strings.IndexAny(digits, "eE"); k >= 0 {
					digits = digits[:k] + "." + digits[k:]
				} else {
					digits += "."
				}
			}
		}
		if verb == 'E' || verb == 'F' || verb == 'G' {
			digits = strings.ToUpper(digits)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			goFlags = strings.ReplaceAll(goFlags, "0", "")
		}
		return signPad(math.Signbit(f) && !math.IsNaN(f), digits, goFlags, width), nil
	}
	return "", fmt.Errorf("unsupported format character '%c'", verb)
}

func abs64(i int64) int64 {
	if i < 0 {
		return -i
	}
	return i
}

// signPad puts the sign (or the space or + flag) before digits and pads
// to width: with spaces, or zeros after the sign for the 0 flag.
func signPad(neg bool, digits, flags, width string) string {
	sign := ""
	switch {
	case neg:
		sign = "-"
	case strings.Contains(flags, "+"):
		sign = "+"
	case strings.Contains(flags, " "):
		sign = " "
	}
	w, _ := strconv.Atoi(width)
	n := len(sign) + len(digits)
	switch {
	case n >= w:
		return sign + digits
	case strings.Contains(flags, "-"):
		return sign + digits + strings.Repeat(" ", w-n)
	case strings.Contains(flags, "0"):
		prefix := ""
		for _, p := range []string{"0x", "0X", "0o"} {
			if strings.HasPrefix(digits, p) {
				prefix, digits = p, digits[2:]
			}
		}
		return sign + prefix + strings.Repeat("0", w-n) + digits
	}
	return strings.Repeat(" ", w-n) + sign + digits
}

// strFormat is Python's str.format: "{}", "{0}", "{name}", "{0[key]}",
// "{x.attr}", conversions !r !s !a and format specs such as {:>8}, {:05d}
// or {:.2f}.
func strFormat(format string, args []any, kw *dict) (string, error) {
	var b strings.Builder
	auto := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '}' && i+1 < len(format) && format[i+1] == '}', c == '{' && i+1 < len(format) && format[i+1] == '{':
			b.WriteByte(c)
			i++
			continue
		case c == '}':
			return "", errors.New("Single '}' encountered in format string")
		case c != '{':
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(format[i:], '}')
		if end < 0 {
			return "", errors.New("Single '{' encountered in format string")
		}
		field := format[i+1 : i+end]
		i += end
		if strings.Contains(field, "{") {
			return "", errors.New("nested replacement fields are not supported")
		}
		name, spec, _ := strings.Cut(field, ":")
		name, conv, _ := strings.Cut(name, "!")
		first := name
		if k := strings.IndexAny(name, ".["); k >= 0 {
			first = name[:k]
		}
		var v any
		switch n, err := strconv.Atoi(first); {
		case first == "":
			if auto < 0 {
				return "", errors.New("cannot switch from manual field specification to automatic field numbering")
			}
			if auto >= len(args) {
				return "", fmt.Errorf("Replacement index %d out of range for positional args tuple", auto)
			}
			v = args[auto]
			auto++
		case err == nil:
			if auto > 0 {
				return "", errors.New("cannot switch from automatic field numbering to manual field specification")
			}
			auto = -1
			if n >= len(args) {
				return "", fmt.Errorf("Replacement index %d out of range for positional args tuple", n)
			}
			v = args[n]
		default:
			x, ok := kw.Get(first)
			if !ok {
				return "", fmt.Errorf("KeyError: %s", pyRepr(first))
			}
			v = x
		}
		for rest := name[len(first):]; rest != ""; {
			if rest[0] == '.' {
				// Python's getattr: a dict's keys, a list's items are no
				// attributes, and e2c's values have no others to offer.
				attr, _, _ := strings.Cut(rest[1:], ".")
				attr, _, _ = strings.Cut(attr, "[")
				return "", fmt.Errorf("AttributeError: '%s' object has no attribute %s", typeName(v), pyRepr(attr))
			}
			k := strings.IndexByte(rest, ']')
			if k < 0 {
				return "", errors.New("Missing ']' in format string")
			}
			var key any
			key, rest = rest[1:k], rest[k+1:]
			if n, err := strconv.Atoi(key.(string)); err == nil {
				key = n
			}
			x, ok := item(v, key)
			if !ok {
				return "", fmt.Errorf("%s has no item or attribute %s", typeName(v), pyRepr(key))
			}
			v = x
		}
		switch conv {
		case "", "s":
			if conv == "s" {
				v = pyStr(v)
			}
		case "r", "a":
			v = pyRepr(v)
		default:
			return "", fmt.Errorf("Unknown conversion specifier %s", conv)
		}
		s, err := formatSpec(v, spec)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
		if b.Len() > maxSize {
			return "", errTooLarge
		}
	}
	return b.String(), nil
}

var specRE = regexp.MustCompile(`^(?:(.)?([<>=^]))?([-+ ])?(#)?(0)?([0-9]*)([,_])?(?:\.([0-9]+))?([bcdeEfFgGnosxX%])?$`)

// formatSpec is Python's format(v, spec), the format spec mini-language.
func formatSpec(v any, spec string) (string, error) {
	m := specRE.FindStringSubmatch(spec)
	if m == nil || utf8.RuneCountInString(m[1]) > 1 {
		return "", fmt.Errorf("Invalid format specifier '%s'", spec)
	}
	fill, align, sign, alt, zero, width, group, prec, typ := m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]
	if w, _ := strconv.Atoi(width); w > maxSize {
		return "", fmt.Errorf("width %s is beyond e2c's bound of %d", width, maxSize)
	}
	if p, _ := strconv.Atoi(prec); p > maxSize {
		return "", fmt.Errorf("precision %s is beyond e2c's bound of %d", prec, maxSize)
	}
	if fill == "" {
		fill = " "
	}
	if zero != "" && align == "" {
		fill, align = "0", "="
	}
	var body, signStr string
	n, isNum := toNum(v)
	s, isS := asStr(v)
	switch {
	case spec == "" && (isBool(v) || !isS && !isNum):
		return pyStr(v), nil
	case isS:
		if typ != "" && typ != "s" {
			return "", fmt.Errorf("Unknown format code '%s' for object of type 'str'", typ)
		}
		if prec != "" {
			p, _ := strconv.Atoi(prec)
			if r := []rune(s); len(r) > p {
				s = string(r[:p])
			}
		}
		if align == "" {
			align = "<"
		}
		body = s
	case isNum: // a bool with a spec is formatted as the int it is
		if n.isInt && prec != "" && strings.Contains("dnbcoxX", typ) {
			return "", errors.New("Precision not allowed in integer format specifier")
		}
		neg := n.isInt && n.i < 0 || !n.isInt && math.Signbit(n.f)
		switch {
		case neg:
			signStr = "-"
		case sign == "+":
			signStr = "+"
		case sign == " ":
			signStr = " "
		}
		switch typ {
		case "d", "n", "b", "o", "x", "X", "c":
			if !n.isInt {
				return "", fmt.Errorf("Unknown format code '%s' for object of type 'float'", typ)
			}
			base := map[string]int{"d": 10, "n": 10, "b": 2, "o": 8, "x": 16, "X": 16}[typ]
			if typ == "c" {
				if n.i < 0 || n.i > unicode.MaxRune {
					return "", errors.New("OverflowError: %c arg not in range(0x110000)")
				}
				body = string(rune(n.i))
				signStr = ""
				break
			}
			body = strconv.FormatInt(abs64(n.i), base)
			if typ == "X" {
				body = strings.ToUpper(body)
			}
			if alt != "" && base != 10 {
				body = map[int]string{2: "0b", 8: "0o", 16: "0x"}[base] + body
				if typ == "X" {
					body = "0X" + body[2:]
				}
			}
		case "", "e", "E", "f", "F", "g", "G", "%":
			f := math.Abs(n.f)
			switch {
			case typ == "" && n.isInt:
				body = strconv.FormatInt(abs64(n.i), 10)
			case math.IsInf(f, 0):
				body = "inf"
			case math.IsNaN(f):
				body = "nan"
			case typ == "" && prec == "":
				body = pyFloat(f)
			default:
				p := 6
				if prec != "" {
					p, _ = strconv.Atoi(prec)
				}
				verb := byte(strings.ToLower(typ + "g")[0])
				if typ == "%" {
					f, verb = f*100, 'f'
				}
				if typ == "" {
					verb = 'g' // like g, but keeps a digit after the point
				}
				if verb == 'g' && p == 0 {
					p = 1
				}
				body = strconv.FormatFloat(f, verb, p, 64)
				if typ == "" && !strings.ContainsAny(body, ".e") {
					body += ".0"
				}
				if typ == "%" {
					body += "%"
				}
			}
			if typ == "E" || typ == "F" || typ == "G" {
				body = strings.ToUpper(body)
			}
		default:
			return "", fmt.Errorf("Unknown format code '%s' for object of type '%s'", typ, typeName(v))
		}
		if group != "" {
			body = groupDigits(body, group)
		}
		if align == "" {
			align = ">"
		}
	default:
		return "", fmt.Errorf("unsupported format string passed to %s.__format__", typeName(v))
	}
	w, _ := strconv.Atoi(width)
	pad := w - utf8.RuneCountInString(signStr+body)
	if pad <= 0 {
		return signStr + body, nil
	}
	fills := strings.Repeat(fill, pad)
	switch align {
	case "<":
		return signStr + body + fills, nil
	case "^":
		left := strings.Repeat(fill, pad/2)
		return left + signStr + body + strings.Repeat(fill, pad-pad/2), nil
	case "=":
		return signStr + fills + body, nil
	}
	return fills + signStr + body, nil
}

// groupDigits puts sep between thousands of the integer part of digits.
func groupDigits(digits, sep string) string {
	intEnd := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if intEnd < 0 {
		intEnd = len(digits)
	}
	ip := digits[:intEnd]
	var b strings.Builder
	for i, r := range ip {
		if i > 0 && (len(ip)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	return b.String() + digits[intEnd:]
}
