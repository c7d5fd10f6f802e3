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
	var st PutStats
	err := r.files(ctx, func(h hostFS) (err error) {
		st, err = put(ctx, h, src, dst, mode)
		return err
	})
	return st, err
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
	return sftp.NewClientPipe(rd, w, sftp.UseConcurrentWrites(true), sftp.UseFstat(true))
}

// sftpFS is the host side of Put and Get over one sftp client.
type sftpFS struct{ c *sftp.Client }

func (f sftpFS) stat(_ context.Context, name string) (fs.FileInfo, error) { return f.c.Stat(name) }

func (f sftpFS) list(_ context.Context, dir string) (map[string]fs.FileInfo, error) {
	fis, err := f.c.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m := make(map[string]fs.FileInfo, len(fis))
	for _, fi := range fis {
		m[fi.Name()] = fi
	}
	return m, nil
}

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
	return f.r.exec(ctx, "sh -c "+quote(script), stdin, stdout)
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
	err := f.sh(ctx, "[ -e "+quote(name)+" ] || exit 3; "+statFormat+quote(name), nil, &out)
	if err != nil {
		return nil, notExist(name, err)
	}
	fis := parseStat(&out)
	if len(fis) != 1 {
		return nil, fmt.Errorf("stat %s: unexpected output %q", name, out.String())
	}
	return fis[0], nil
}

func (f shellFS) list(ctx context.Context, dir string) (map[string]fs.FileInfo, error) {
	var out bytes.Buffer
	q := quote(dir)
	err := f.sh(ctx, "cd -- "+q+" 2>/dev/null || { [ -e "+q+" ] && { echo 'not a directory' >&2; exit 4; }; exit 3; }; "+
		statFormat+"* .[!.]* ..?* 2>/dev/null; exit 0", nil, &out)
	if err != nil {
		return nil, notExist(dir, err)
	}
	m := map[string]fs.FileInfo{}
	for _, fi := range parseStat(&out) {
		m[fi.Name()] = fi
	}
	return m, nil
}

func (f shellFS) mkdir(ctx context.Context, dir string) error {
	return f.sh(ctx, "mkdir -- "+quote(dir), nil, nil)
}

func (f shellFS) mkdirAll(ctx context.Context, dir string) error {
	return f.sh(ctx, "mkdir -p -- "+quote(dir), nil, nil)
}

func (f shellFS) write(ctx context.Context, name string, r io.Reader, perm fs.FileMode, mtime time.Time) error {
	script := fmt.Sprintf(`t=%s; trap 'rm -f -- "$t"' EXIT; umask 077; `+
		`: > "$t" && chmod %o "$t" && cat > "$t" && TZ=UTC0 touch -t %s "$t" && mv -f -- "$t" %s`,
		quote(tempName(name)), perm, mtime.UTC().Format("200601021504.05"), quote(name))
	return f.sh(ctx, script, r, nil)
}

func (f shellFS) read(ctx context.Context, name string, w io.Writer) (fs.FileMode, error) {
	fi, err := f.stat(ctx, name)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Perm(), f.sh(ctx, "cat -- "+quote(name), nil, w)
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
