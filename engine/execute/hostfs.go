package execute

import (
	"bytes"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/transport"
)

// The file modules work through shell scripts on the host, run through
// sudo -n for become: one command reads a file or tells what a path is,
// one writes or changes it. The scripts use POSIX tools and GNU or
// busybox stat -c, and print lines a module reads back: "stat FIELDS",
// "target LINK", "source REAL", "sum HEX", "changed", "msg TEXT".

// prelude defines the shell functions the scripts share.
const prelude = `
# e2c_stat [-L] PATH: what PATH is (the link itself without -L).
e2c_stat() {
  L=; [ "$1" = -L ] && { L=-L; shift; }
  if [ -n "$L" ]; then [ -e "$1" ] || { echo absent; return 0; }
  else [ -e "$1" ] || [ -L "$1" ] || { echo absent; return 0; }; fi
  s=$(stat $L -c '%f:%a:%u:%g:%s:%h:%i:%d:%b:%o:%.9X:%.9Y:%.9Z:%t:%T:%U:%G' -- "$1" 2>/dev/null) ||
  s=$(stat $L -c '%f:%a:%u:%g:%s:%h:%i:%d:%b:%o:%X:%Y:%Z:%t:%T:%U:%G' -- "$1") || return 1
  a=; [ -r "$1" ] && a=r; [ -w "$1" ] && a=${a}w; [ -x "$1" ] && a=${a}x
  printf 'stat %s:%s\n' "$s" "$a"
  if [ -L "$1" ]; then printf 'target %s\n' "$(readlink -- "$1")"; printf 'source %s\n' "$(readlink -f -- "$1")"; fi
}
# e2c_attrs PATH MODE OWNER GROUP RECURSE: sets what is given, as chmod,
# chown and chgrp do, and prints "changed" when something changed.
e2c_attrs() {
  [ -n "$2$3$4" ] || return 0
  R=; [ "$5" = 1 ] && R=-R
  e2c_attrs_now() { if [ -n "$R" ]; then find "$1" -exec stat -c '%a:%u:%g' {} + | cksum; else stat -c '%a:%u:%g' -- "$1"; fi; }
  b=$(e2c_attrs_now "$1") || return 1
  if [ -n "$3" ]; then
    case $3 in *[!0-9]*) id -u -- "$3" >/dev/null 2>&1 || { echo "msg chown failed: failed to look up user $3"; return 5; } ;; esac
    chown $R -- "$3" "$1" || return 1
  fi
  if [ -n "$4" ]; then
    case $4 in *[!0-9]*) getent group -- "$4" >/dev/null 2>&1 || { echo "msg chgrp failed: failed to look up group $4"; return 5; } ;; esac
    chgrp $R -- "$4" "$1" || return 1
  fi
  if [ -n "$2" ]; then chmod $R -- "$2" "$1" || { echo "msg mode must be in octal or symbolic form: $2"; return 5; }; fi
  [ "$b" = "$(e2c_attrs_now "$1")" ] || echo changed
}
# e2c_write PATH: writes stdin to PATH through a temporary file renamed
# over it: an existing file keeps its permissions and owner, a new one gets
# 0666 less the umask. Links are followed to the real file.
e2c_write() {
  p=$1; [ -L "$p" ] && p=$(readlink -f -- "$p")
  t=$(mktemp "$(dirname -- "$p")/.e2c.XXXXXX") || return 1
  if cat > "$t" && if [ -e "$p" ]; then
      chmod "$(stat -c %a -- "$p")" "$t" && { chown "$(stat -c %u:%g -- "$p")" "$t" 2>/dev/null || :; }
    else chmod "$(printf %o $((0666 & ~$(umask))))" "$t"; fi && mv -f -- "$t" "$p"
  then return 0; fi
  rm -f -- "$t"; return 1
}
`

// hostStat is what e2c_stat tells of a path.
type hostStat struct {
	exists              bool
	mode                fs.FileMode // type bits as Go's, with permissions
	perm                uint64      // permission and special bits, as stat %a
	uid, gid            int
	owner, group        string
	size, blocks, bsize int64
	nlink               int
	inode, dev          uint64
	atime, mtime, ctime float64
	major, minor        uint64
	readable, writeable bool
	executable          bool
	target, realPath    string // of a link
	path                string // where a script says it worked
	lines               []string
	sum, mime, charset  string
}

// parseHostOutput reads the lines a script printed: the stat of a path
// and the other lines, kept in order.
func parseHostOutput(out string) (hostStat, error) {
	var s hostStat
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "absent":
		case "stat":
			if err := s.parse(rest); err != nil {
				return s, err
			}
		case "target":
			s.target = rest
		case "source":
			s.realPath = rest
		case "path":
			s.path = rest
		case "sum":
			s.sum = rest
		case "mime":
			s.mime, s.charset, _ = strings.Cut(rest, " ")
		default:
			if l != "" {
				s.lines = append(s.lines, l)
			}
		}
	}
	return s, nil
}

func (s *hostStat) parse(line string) error {
	f := strings.Split(line, ":")
	if len(f) != 18 {
		return fmt.Errorf("unexpected stat output %q", line)
	}
	num := func(i, base int) uint64 {
		n, _ := strconv.ParseUint(f[i], base, 64)
		return n
	}
	float := func(i int) float64 {
		x, _ := strconv.ParseFloat(f[i], 64)
		return x
	}
	raw := num(0, 16)
	s.exists = true
	s.perm = num(1, 8)
	s.mode = fs.FileMode(raw & 0o777)
	switch raw & 0o170000 {
	case 0o040000:
		s.mode |= fs.ModeDir
	case 0o120000:
		s.mode |= fs.ModeSymlink
	case 0o020000:
		s.mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		s.mode |= fs.ModeDevice
	case 0o010000:
		s.mode |= fs.ModeNamedPipe
	case 0o140000:
		s.mode |= fs.ModeSocket
	}
	s.uid, s.gid = int(num(2, 10)), int(num(3, 10))
	s.size, s.nlink = int64(num(4, 10)), int(num(5, 10))
	s.inode, s.dev = num(6, 10), num(7, 10)
	s.blocks, s.bsize = int64(num(8, 10)), int64(num(9, 10))
	s.atime, s.mtime, s.ctime = float(10), float(11), float(12)
	s.major, s.minor = num(13, 16), num(14, 16)
	s.owner, s.group = f[15], f[16]
	s.readable, s.writeable, s.executable = strings.Contains(f[17], "r"), strings.Contains(f[17], "w"), strings.Contains(f[17], "x")
	return nil
}

// state is the path's state as Ansible's file module names it.
func (s hostStat) state() string {
	switch {
	case !s.exists:
		return "absent"
	case s.mode&fs.ModeSymlink != 0:
		return "link"
	case s.mode.IsDir():
		return "directory"
	case s.nlink > 1:
		return "hard"
	}
	return "file"
}

// modeString writes permissions as Ansible's modules report a path's:
// "0644", "04755".
func (s hostStat) modeString() string { return fmt.Sprintf("0%03o", s.perm) }

// addFileKeys adds what Ansible's modules return about a path that exists.
func (s hostStat) addFileKeys(m map[string]any) {
	if !s.exists {
		return
	}
	m["uid"], m["gid"], m["owner"], m["group"] = s.uid, s.gid, s.owner, s.group
	m["mode"], m["size"], m["state"] = s.modeString(), s.size, s.state()
}

// sh runs script on the host with the shell functions of prelude, through
// sudo -n when the task has become.
func (c *call) sh(script string) (transport.Result, error) {
	return c.r.Run(c.ctx, transport.Command{Script: prelude + script, Env: c.t.Environment, Sudo: c.t.Become})
}

// probe returns what a script printed, failing with the message it gave
// (a "msg" line) or its error output.
func (c *call) probe(script string) (hostStat, error) {
	res, err := c.sh(script)
	s, perr := parseHostOutput(res.Stdout)
	if err != nil {
		for _, l := range s.lines {
			if msg, ok := strings.CutPrefix(l, "msg "); ok {
				return s, fmt.Errorf("%s", msg)
			}
		}
		return s, hostError(res, err)
	}
	return s, perr
}

// hostError is the failure of a host command, said by its last line of
// error output when it has one.
func hostError(res transport.Result, err error) error {
	if l := lastLine(res.Stderr); l != "" && exitCode(err) != 0 {
		return fmt.Errorf("%s", l)
	}
	return err
}

// changedLine reports whether a script printed "changed".
func (s hostStat) changed() bool {
	for _, l := range s.lines {
		if l == "changed" {
			return true
		}
	}
	return false
}

// copied reports whether a script printed "copied".
func (s hostStat) copied() bool {
	for _, l := range s.lines {
		if l == "copied" {
			return true
		}
	}
	return false
}

// readFile reads a file of the host, all of it: its output reaches a
// writer (a Result keeps only a tail), with an end marker, since the
// writer is given an unterminated last line with a newline added.
// found is false for a missing file; a directory is an error.
func (c *call) readFile(path string) (data []byte, found bool, err error) {
	var out endMarked
	res, err := c.r.Run(c.ctx, transport.Command{Script: fmt.Sprintf(`p=%s
[ -d "$p" ] && { echo "is a directory" >&2; exit 4; }
[ -e "$p" ] || exit 3
cat -- "$p" && printf %%s %s`, quote(path), endMark), Env: c.t.Environment, Sudo: c.t.Become, Stdout: &out})
	switch exitCode(err) {
	case 0:
	case 3:
		return nil, false, nil
	default:
		return nil, false, hostError(res, err)
	}
	if err != nil {
		return nil, false, err
	}
	data, ok := out.data()
	if !ok {
		return nil, false, fmt.Errorf("reading %s: the output ended early", path)
	}
	return data, true, nil
}

const endMark = "e2c-end"

// endMarked collects output ending in endMark and a newline.
type endMarked struct{ b bytes.Buffer }

func (e *endMarked) Write(p []byte) (int, error) { return e.b.Write(p) }

func (e *endMarked) data() ([]byte, bool) {
	return bytes.CutSuffix(e.b.Bytes(), []byte(endMark+"\n"))
}

// writeFile writes data to path on the host (see e2c_write), creating its
// folder when mkdir is set, then applies the task's mode, owner and group;
// it reports whether the attributes changed.
func (c *call) writeFile(path string, data []byte, mkdir bool) (attrsChanged bool, err error) {
	script := ""
	if mkdir {
		script = fmt.Sprintf("mkdir -p -- \"$(dirname -- %s)\" || exit 1\n", quote(path))
	}
	script += printBytes(data) + " | e2c_write " + quote(path) + " || exit 1\n" + c.attrsScript(path, false)
	s, err := c.probe(script)
	return s.changed(), err
}

// attrsScript applies the task's mode, owner and group to path.
func (c *call) attrsScript(path string, recurse bool) string { return c.attrsFor(quote(path), recurse) }

// attrsFor applies the task's mode, owner and group to the path a shell
// expression gives.
func (c *call) attrsFor(expr string, recurse bool) string {
	r := "0"
	if recurse {
		r = "1"
	}
	return fmt.Sprintf("e2c_attrs %s %s %s %s %s || exit $?\n", expr, quote(c.modeArg()), quote(c.a.str("owner")), quote(c.a.str("group")), r)
}

// modeArg is the task's mode for chmod: octal, or symbolic as written. A
// number is the mode YAML read (0644 is octal there), as in Ansible.
func (c *call) modeArg() string {
	switch v := c.a["mode"].(type) {
	case nil:
		return ""
	case int:
		return fmt.Sprintf("%04o", v)
	case float64:
		return fmt.Sprintf("%04o", int(v))
	}
	return c.a.str("mode")
}

// printBytes is a shell command writing exactly data: printf's format
// escapes carry the bytes a shell word cannot hold (NUL).
func printBytes(data []byte) string {
	if bytes.IndexByte(data, 0) < 0 {
		return "printf '%s' " + quote(string(data))
	}
	var b strings.Builder
	for _, c := range data {
		switch {
		case c == 0:
			b.WriteString(`\000`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '%':
			b.WriteString("%%")
		default:
			b.WriteByte(c)
		}
	}
	return "printf " + quote(b.String())
}
