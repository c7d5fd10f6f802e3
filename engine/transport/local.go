package transport

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// killGrace is how long a cancelled command's process group has between TERM
// and KILL.
const killGrace = 3 * time.Second

type localRunner struct {
	dir string
	err error // from creating dir, reported by every call
}

// NewLocal returns a Runner for this machine, without SSH, working in dir:
// commands run there (Command.Dir is relative to it) and relative host-side
// paths (Put's dst, Get's src) are relative to it; the
// caller-side paths (Put's src, Get's dst) are relative to the process's
// working directory, as with SSH. dir is created if missing. Commands run
// with /bin/sh as the current user.
func NewLocal(dir string) Runner {
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	return &localRunner{dir: abs, err: err}
}

func (l *localRunner) Run(ctx context.Context, c Command) (Result, error) {
	if l.err != nil {
		return Result{}, l.err
	}
	script, err := c.script(false)
	if err != nil {
		return Result{}, err
	}
	argv := []string{"/bin/sh", "-s"}
	switch {
	case c.Sudo && c.User != "":
		if u, err := user.Current(); err != nil || u.Username != c.User {
			argv = append([]string{"sudo", "-n", "-u", c.User}, argv...)
		}
	case c.Sudo && os.Geteuid() != 0:
		argv = append([]string{"sudo", "-n"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = l.dir
	// HOME stays the user's: hosts on this machine share its caches (a Go
	// build cache per host would rebuild everything for every host).
	cmd.Stdin = strings.NewReader(script)
	stdout, stderr := newOutput(c.Stdout), newOutput(c.Stderr)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that cancelling kills what the script started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killGrace // if a child ignoring TERM holds the output open

	err = cmd.Run()
	if ctx.Err() != nil {
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		stdout.flush()
		stderr.flush()
		return Result{Code: -1, Stdout: stdout.String(), Stderr: stderr.String()}, ctx.Err()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return result(0, stdout, stderr)
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal()) // as shells report it
		}
		return result(code, stdout, stderr)
	default:
		return Result{}, err
	}
}

// killGroup waits for the group pgid, already sent TERM, to end and kills
// what is left after killGrace.
func killGroup(pgid int) {
	for end := time.Now().Add(killGrace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (l *localRunner) Put(ctx context.Context, src, dst string, mode fs.FileMode) (PutStats, error) {
	if l.err != nil {
		return PutStats{}, l.err
	}
	h := localFS{l.dir}
	return put(ctx, h.survey, func(f func(hostFS) error) error { return f(h) }, nil, src, dst, mode)
}

func (l *localRunner) Get(ctx context.Context, src, dst string) error {
	if l.err != nil {
		return l.err
	}
	return get(ctx, localFS{l.dir}, src, dst)
}

func (l *localRunner) Close() error { return nil }
