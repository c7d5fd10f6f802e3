package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

func (r *sshRunner) Put(ctx context.Context, src, dst string, mode fs.FileMode) (PutStats, error) {
	return put(ctx, r.survey, func(fn func(hostFS) error) error { return r.files(ctx, fn) }, nil, src, dst, mode)
}

func (r *sshRunner) Get(ctx context.Context, src, dst string) error {
	return r.files(ctx, func(h hostFS) error { return get(ctx, h, src, dst) })
}

// Close does nothing: the Pool owns the connection.
func (r *sshRunner) Close() error { return nil }

// files calls fn with one sftp client for the whole call (one session, never
// one per file), or with shell commands if the server has no sftp.
func (r *sshRunner) files(ctx context.Context, fn func(hostFS) error) error {
	c, s, release, err := r.session(ctx)
	if err != nil {
		return err
	}
	defer release()
	if !c.noSFTP.Load() {
		cl, err := openSFTP(s)
		if err == nil {
			// On cancel close the session, not the client, whose lock a
			// stalled write may hold.
			stop := context.AfterFunc(ctx, func() { s.Close() })
			err = fn(sftpFS{cl})
			stop()
			cl.Close()
			s.Close()
			return r.wrap(ctx, err)
		}
		c.noSFTP.Store(true)
	}
	s.Close()
	release()
	return r.wrap(ctx, fn(shellFS{r}))
}

func (r *sshRunner) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var he *hostError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &he):
		return err
	}
	return r.h.errorf("%w", err)
}

// surveyScript prints the umask of the host's commands, then, for each
// name read from stdin (one per line, relative to $1), a line of
// statFormat, then the SHA-256 of the regular files as sha256sum writes
// it. Only builtins run per name: one stat and one sha256sum (through
// xargs) do the whole tree. Exit status 4: the host lacks stat -c or
// sha256sum. The names are read first: a command that exits with its input
// unread fails the SSH session (EOF writing stdin).
const surveyScript = `names=$(cat)
printf 'umask %s\n' "$(umask)"
cd -- "$1" 2>/dev/null || exit 0
{ stat -c %s . && command -v sha256sum; } >/dev/null 2>&1 || exit 4
printf '%s\n' "$names" | tr '\n' '\0' | xargs -0 -r ` + statFormat + `2>/dev/null
printf '%s\n' "$names" | while IFS= read -r n; do [ -f "$n" ] && printf '%s\n' "$n"; done |
  tr '\n' '\0' | xargs -0 -r sha256sum -- 2>/dev/null
exit 0`

// survey asks the host, in one command, what it has at names under root.
func (r *sshRunner) survey(ctx context.Context, root string, names []string) (view, error) {
	return surveyWith(func(stdin io.Reader, stdout io.Writer) error {
		return r.wrap(ctx, r.exec(ctx, "sh -c "+Quote(surveyScript)+" sh "+Quote(root), stdin, stdout))
	}, names)
}

// surveyWith runs surveyScript through run and reads its output.
func surveyWith(run func(stdin io.Reader, stdout io.Writer) error, names []string) (view, error) {
	for _, n := range names {
		if strings.Contains(n, "\n") {
			return view{}, nil // one name per line: such a tree is copied whole
		}
	}
	var out bytes.Buffer
	err := run(strings.NewReader(strings.Join(names, "\n")), &out)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == 4 {
		return view{umask: parseUmask(&out)}, nil
	}
	if err != nil {
		return view{}, err
	}
	return parseSurvey(&out), nil
}

// parseUmask reads the first line of surveyScript's output.
func parseUmask(out *bytes.Buffer) fs.FileMode {
	line, _ := out.ReadString('\n')
	if m, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "umask ")), 8, 32); err == nil && strings.HasPrefix(line, "umask ") {
		return fs.FileMode(m)
	}
	return 0o022
}

// parseSurvey reads surveyScript's output. A hash line starts with 64 hex
// digits and two spaces; sha256sum escapes names with a backslash by
// starting the line with one, and such files keep no sum (they are copied).
func parseSurvey(out *bytes.Buffer) view {
	v := view{have: map[string]hostEntry{}, known: true, umask: parseUmask(out)}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 66 && line[64:66] == "  " && isHex(line[:64]) {
			if e, ok := v.have[line[66:]]; ok && e.mode.IsRegular() {
				e.sum = line[:64]
				v.have[line[66:]] = e
			}
			continue
		}
		for _, fi := range parseStat(strings.NewReader(line)) {
			v.have[fi.Name()] = hostEntry{mode: fi.Mode(), size: fi.Size()}
		}
	}
	return v
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func openSFTP(s *ssh.Session) (*sftp.Client, error) {
	w, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	rd, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	return sftp.NewClientPipe(rd, w, sftpOptions...)
}

// sftpOptions are those of every sftp client. Writes go out in packets of
// 16 KiB, not sftp's 32: x/crypto and yamux keep buffers of the largest
// packet a connection carried for as long as it lives, which at 32 KiB
// was most of e2c's memory per host (about 100 KB of 200) for a few
// per cent of CPU more.
var sftpOptions = []sftp.ClientOption{sftp.UseConcurrentWrites(true), sftp.UseFstat(true), sftp.MaxPacket(16 << 10)}

// sftpFS is the host side of Put and Get over one sftp client.
type sftpFS struct{ c *sftp.Client }

func (f sftpFS) mkdir(_ context.Context, dir string) error    { return f.c.Mkdir(dir) }
func (f sftpFS) mkdirAll(_ context.Context, dir string) error { return f.c.MkdirAll(dir) }

func (f sftpFS) write(_ context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error {
	tmp := tempName(name)
	w, err := f.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	err = w.Chmod(perm) // before the data, so a secret is never readable by others
	if err == nil {
		_, err = w.ReadFrom(r)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.c.Chtimes(tmp, mtime, mtime)
	}
	if err == nil {
		err = f.rename(tmp, name)
	}
	if err != nil {
		_ = f.c.Remove(tmp)
	}
	return err
}

// rename replaces name atomically where the server allows it: plain sftp
// rename fails if the target exists.
func (f sftpFS) rename(from, to string) error {
	if _, ok := f.c.HasExtension("posix-rename@openssh.com"); ok {
		return f.c.PosixRename(from, to)
	}
	if err := f.c.Rename(from, to); err == nil {
		return nil
	}
	_ = f.c.Remove(to)
	return f.c.Rename(from, to)
}

func (f sftpFS) chmod(_ context.Context, name string, perm fs.FileMode) error {
	return f.c.Chmod(name, perm)
}

func (f sftpFS) read(_ context.Context, name string, w io.Writer) (fs.FileMode, error) {
	r, err := f.c.Open(name)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return 0, err
	}
	_, err = r.WriteTo(w)
	return fi.Mode().Perm(), err
}

// shellFS is the host side of Put and Get for servers without sftp: one
// short session per operation, with POSIX tools plus stat -c (GNU, busybox).
// Names containing newlines are not supported.
type shellFS struct{ r *sshRunner }

const statFormat = "stat -c '%s %Y %f %n' -- "

func (f shellFS) sh(ctx context.Context, script string, stdin io.Reader, stdout io.Writer) error {
	return f.r.exec(ctx, "sh -c "+Quote(script), stdin, stdout)
}

// notExist maps exit status 3, which the scripts use for a missing path.
func notExist(name string, err error) error {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == 3 {
		return &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return err
}

func (f shellFS) stat(ctx context.Context, name string) (fs.FileInfo, error) {
	var out bytes.Buffer
	err := f.sh(ctx, "[ -e "+Quote(name)+" ] || exit 3; "+statFormat+Quote(name), nil, &out)
	if err != nil {
		return nil, notExist(name, err)
	}
	fis := parseStat(&out)
	if len(fis) != 1 {
		return nil, fmt.Errorf("stat %s: unexpected output %q", name, out.String())
	}
	return fis[0], nil
}

func (f shellFS) mkdir(ctx context.Context, dir string) error {
	return f.sh(ctx, "mkdir -- "+Quote(dir), nil, nil)
}

func (f shellFS) mkdirAll(ctx context.Context, dir string) error {
	return f.sh(ctx, "mkdir -p -- "+Quote(dir), nil, nil)
}

func (f shellFS) write(ctx context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error {
	script := fmt.Sprintf(`t=%s; trap 'rm -f -- "$t"' EXIT; umask 077; `+
		`: > "$t" && chmod %o "$t" && cat > "$t" && TZ=UTC0 touch -t %s "$t" && mv -f -- "$t" %s`,
		Quote(tempName(name)), perm, mtime.UTC().Format("200601021504.05"), Quote(name))
	return f.sh(ctx, script, r, nil)
}

func (f shellFS) chmod(ctx context.Context, name string, perm fs.FileMode) error {
	return f.sh(ctx, fmt.Sprintf("chmod %o -- %s", perm, Quote(name)), nil, nil)
}

func (f shellFS) read(ctx context.Context, name string, w io.Writer) (fs.FileMode, error) {
	fi, err := f.stat(ctx, name)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), f.sh(ctx, "cat -- "+Quote(name), nil, w)
}

// parseStat reads lines of statFormat: size, mtime, raw mode in hex, name.
func parseStat(r io.Reader) []fs.FileInfo {
	var fis []fs.FileInfo
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 4)
		if len(fields) != 4 {
			continue
		}
		size, err1 := strconv.ParseInt(fields[0], 10, 64)
		mtime, err2 := strconv.ParseInt(fields[1], 10, 64)
		raw, err3 := strconv.ParseUint(fields[2], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		mode := fs.FileMode(raw & 0o777)
		switch raw & 0o170000 {
		case 0o040000:
			mode |= fs.ModeDir
		case 0o100000:
		case 0o120000:
			mode |= fs.ModeSymlink
		default:
			mode |= fs.ModeIrregular
		}
		fis = append(fis, shellFileInfo{name: fields[3], size: size, mode: mode, mtime: time.Unix(mtime, 0)})
	}
	return fis
}

type shellFileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i shellFileInfo) Name() string       { return i.name }
func (i shellFileInfo) Size() int64        { return i.size }
func (i shellFileInfo) Mode() fs.FileMode  { return i.mode }
func (i shellFileInfo) ModTime() time.Time { return i.mtime }
func (i shellFileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i shellFileInfo) Sys() any           { return nil }
