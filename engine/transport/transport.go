// Package transport runs commands and copies files on hosts, over SSH or on
// this machine, behind one interface.
//
// Over SSH a Pool keeps one connection per host for a whole run, shares one
// connection per bastion, bounds sessions per connection, puts a deadline on
// every handshake and sends keepalives, so that thousands of tasks on hundreds
// of hosts cost a handful of handshakes.
package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Command is a POSIX sh script to run on a host.
type Command struct {
	Script string            // sent on stdin to `sh -s`, wrapped in a function so the shell reads it whole before running any of it
	Env    map[string]string // exported before the script, values single-quoted; names must match ^[A-Za-z_][A-Za-z0-9_]*$
	Dir    string            // working directory; "" = the runner's default directory
	Sudo   bool              // run through `sudo -n` (fails instead of prompting), keeping Env and Dir
	User   string            // with Sudo, the user to run as (`sudo -n -u User`) instead of root
	Stdout io.Writer         // optional: receives the output as it arrives, in whole lines (a last unterminated line gets a newline)
	Stderr io.Writer         // optional: like Stdout; the two may be written concurrently
}

// Result of a command that ran. Stdout and Stderr keep at most the last 64 KiB
// each: full output belongs in the writers of Command, not in memory.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// ExitError is returned by Run when the command ran and exited non-zero, or
// when the remote closed without an exit status (Code -1).
type ExitError struct {
	Code   int
	Stderr string // tail, for messages
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exit status %d", e.Code)
	if e.Code == -1 {
		msg += " (the remote sent none)"
	}
	if l := lastLine(e.Stderr); l != "" {
		msg += ": " + l
	}
	return msg
}

// PutStats says what a Put transferred.
type PutStats struct {
	Copied, Skipped int
	Chmodded        int    // files already there whose permissions alone were set
	FromCache       int    // of Copied, those copied on the host from its BlobDir, not sent
	Bytes           int64  // sent
	Path            string // where src went: dst, or dst/<name of src> for a file put into a directory
}

// Modes of Put beyond plain permissions.
const (
	// KeepMode copies as Ansible's copy does without mode: a file written
	// over one on the host keeps that file's permissions, a new one gets
	// 0666 less the umask of the host's commands, and permissions play no
	// part in telling which files are already there.
	KeepMode fs.FileMode = 0
	// SourceMode gives each file its source's permissions (rsync -p).
	SourceMode fs.FileMode = fs.ModeIrregular
)

// Connector gives the Runner of a host, by its name in the plan.
type Connector func(ctx context.Context, host string) (Runner, error)

// Runner runs commands and moves files on one host. Safe for concurrent use.
type Runner interface {
	// Run runs c. A non-zero exit gives the Result and an *ExitError. When
	// ctx is cancelled the command's process group is killed (TERM, then
	// KILL) and Run returns ctx's error.
	Run(ctx context.Context, c Command) (Result, error)
	// Put copies the local file or directory src to dst on the host: a
	// file to the file dst (or into dst if that is a directory on the
	// host), a directory to the directory dst, mirroring src's tree (files
	// on the host that src lacks are left alone). Missing parents are
	// created. Files whose content is already on the host (by SHA-256,
	// computed there) are not sent, as Ansible's copy does; with
	// permissions as mode, those of other permissions get them (counted
	// as Chmodded). One command surveys the whole tree, and the host's
	// sftp is opened only if something is left to do (hosts without
	// sha256sum or stat -c get every file). Copied files get src's
	// modification time. mode is KeepMode (Ansible's default), SourceMode,
	// or permissions given to every file; new directories get 0755 (less
	// the host's umask), existing ones keep theirs. Each file is written to
	// a temporary name in its directory and renamed, so nobody reads a
	// half file; a cancelled Put may leave such temporary files
	// (.NAME.e2c-*). Links in src are followed for files; special files
	// and linked directories are skipped.
	Put(ctx context.Context, src, dst string, mode fs.FileMode) (PutStats, error)
	// Get copies the remote file src to the local file dst, creating dst's
	// parents and writing through a temporary file and a rename.
	Get(ctx context.Context, src, dst string) error
	Close() error
}

// maxTail bounds the output kept in a Result.
const maxTail = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pgidMarker starts the line by which a remote script reports its process
// group, so that a cancelled Run can kill it from a fresh session.
const pgidMarker = "e2c-pgid:"

// script returns the text fed to `sh -s`. The body is wrapped in a function:
// the shell then parses all of it before running any of it, so a script cut
// short or with a late syntax error does nothing instead of half its work.
func (c Command) script(reportPgid bool) (string, error) {
	var b strings.Builder
	if reportPgid {
		fmt.Fprintf(&b, "printf '%s%%s\\n' \"$$\" >&2\n", pgidMarker)
	}
	names := make([]string, 0, len(c.Env))
	for k := range c.Env {
		if !envName.MatchString(k) {
			// Names only: values may be secrets.
			return "", fmt.Errorf("transport: invalid environment variable name %q", k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "export %s=%s\n", k, Quote(c.Env[k]))
	}
	if c.Dir != "" {
		fmt.Fprintf(&b, "cd -- %s || exit 1\n", Quote(c.Dir))
	}
	b.WriteString("__e2c_main() {\n:\n")
	b.WriteString(c.Script)
	if !strings.HasSuffix(c.Script, "\n") {
		b.WriteString("\n")
	}
	b.WriteString("}\n__e2c_main\n")
	return b.String(), nil
}

// Quote returns s as one POSIX shell word.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// tail keeps the last maxTail bytes written to it. It trims only when twice
// that size, so each byte is copied at most about twice.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2*maxTail {
		t.b = append(t.b[:0], t.b[len(t.b)-maxTail:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	if len(t.b) > maxTail {
		return string(t.b[len(t.b)-maxTail:])
	}
	return string(t.b)
}

// lineWriter passes only whole lines to w, so output of many hosts written to
// one log never interleaves half lines. A line longer than maxTail is passed
// in pieces rather than held without bound; errors of w are ignored, since a
// broken log must not stop a command.
type lineWriter struct {
	w   io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		_, _ = l.w.Write(l.buf[:i+1])
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	} else if len(l.buf) >= maxTail {
		_, _ = l.w.Write(l.buf)
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// flush ends a last unterminated line with a newline.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		_, _ = l.w.Write(append(l.buf, '\n'))
		l.buf = nil
	}
}

// output collects one stream of a command: a tail for the Result and,
// optionally, the caller's writer in whole lines. It is locked because a
// cancelled Run may give up waiting for the stream to end.
type output struct {
	mu    sync.Mutex
	tail  tail
	lines *lineWriter
}

func newOutput(w io.Writer) *output {
	o := &output{}
	if w != nil {
		o.lines = &lineWriter{w: w}
	}
	return o
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.tail.Write(p)
	if o.lines != nil {
		_, _ = o.lines.Write(p)
	}
	return len(p), nil
}

func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lines != nil {
		o.lines.flush()
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tail.String()
}

// result builds the outcome of a finished command with exit code code.
func result(code int, stdout, stderr *output) (Result, error) {
	stdout.flush()
	stderr.flush()
	r := Result{Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
	if code != 0 {
		return r, &ExitError{Code: code, Stderr: r.Stderr}
	}
	return r, nil
}
