package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/agent"
	"golang.org/x/crypto/ssh"
)

// sshRunner is the Runner of one pooled endpoint.
type sshRunner struct{ h *hostConn }

// launcher is the command line given to the login shell. It starts `sh -s`
// in a new session (setsid -w forks when needed and waits, so the exit status
// is kept), making the script the leader of a process group that a cancelled
// Run can kill as a whole: without a PTY, closing the SSH session kills
// nothing. Where setsid lacks -w (busybox) the script runs without it.
func launcher(sudo bool, user string) string {
	s := "S=; " + sudoAs(sudo, user)
	s += "if setsid -w true </dev/null >/dev/null 2>&1; then exec $S setsid -w sh -s; fi; exec $S sh -s"
	return "sh -c " + Quote(s)
}

// killer is the command line that ends the process group pgid: TERM, up to
// 3s for it to go, then KILL. dash's kill takes no "--", hence -TERM -pgid.
func killer(pgid int, sudo bool, user string) string {
	s := "S=; " + sudoAs(sudo, user)
	s += fmt.Sprintf("$S kill -TERM -%[1]d 2>/dev/null || $S kill -TERM %[1]d 2>/dev/null; "+
		"i=0; while $S kill -0 -%[1]d 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; "+
		"$S kill -KILL -%[1]d 2>/dev/null; exit 0", pgid)
	return "sh -c " + Quote(s)
}

// sudoAs sets S to the sudo command that runs as user (root if ""),
// unless the login user is that user already.
func sudoAs(sudo bool, user string) string {
	switch {
	case sudo && user != "":
		return fmt.Sprintf(`[ "$(id -un)" = %[1]s ] || S="sudo -n -u "%[1]s; `, Quote(user))
	case sudo:
		return `[ "$(id -u)" = 0 ] || S='sudo -n'; `
	}
	return ""
}

func (r *sshRunner) Run(ctx context.Context, c Command) (Result, error) {
	script, err := c.script(true)
	if err != nil {
		return Result{}, err
	}
	cn, s, release, err := r.session(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	stdout, stderr := newOutput(c.Stdout), newOutput(c.Stderr)
	pg := &pgidFilter{w: stderr, found: make(chan struct{})}
	// Not s.Stdin: x/crypto would pipe it through a copy of its own.
	in, err := s.StdinPipe()
	s.Stdout, s.Stderr = agent.SmallCopies{Writer: stdout}, agent.SmallCopies{Writer: pg}
	if err == nil {
		err = s.Start(launcher(c.Sudo, c.User))
	}
	if err != nil {
		s.Close()
		return Result{}, r.h.errorf("start: %w", err)
	}
	go func() {
		_, _ = io.WriteString(in, script)
		in.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()

	select {
	case err = <-done:
	case <-ctx.Done():
		r.kill(ctx, cn, s, pg, done, c)
		pg.flush()
		stdout.flush()
		stderr.flush()
		return Result{Code: -1, Stdout: stdout.String(), Stderr: stderr.String()}, ctx.Err()
	}
	pg.flush()
	var ee *ssh.ExitError
	var me *ssh.ExitMissingError
	switch {
	case err == nil:
		return result(0, stdout, stderr)
	case errors.As(err, &ee):
		return result(ee.ExitStatus(), stdout, stderr)
	case cn.lost():
		stdout.flush()
		stderr.flush()
		return Result{Code: -1, Stdout: stdout.String(), Stderr: stderr.String()},
			r.h.errorf("connection lost while the command ran (not retried)")
	case errors.As(err, &me):
		return result(-1, stdout, stderr)
	default:
		return Result{}, r.h.errorf("%w", err)
	}
}

// lost tells whether the connection died, allowing a moment for the news
// to arrive: a session cut by a broken link often ends first.
func (c *conn) lost() bool {
	select {
	case <-c.dead:
		return true
	case <-time.After(200 * time.Millisecond):
		return false
	}
}

// kill ends a cancelled command by killing its process group from a fresh
// session, then closes its own. That order matters: sshd counts a closed
// session against MaxSessions until its process ends. Kills take one lane
// per connection beyond the session slots, so that cancelling commands
// holding every slot cannot deadlock, nor exceed sshd's limit.
func (r *sshRunner) kill(ctx context.Context, cn *conn, s *ssh.Session, pg *pgidFilter, done <-chan error, c Command) {
	finished := false
	select { // the process group comes first on stderr; it may still be on its way
	case <-pg.found:
	case <-done:
		finished = true
	case <-time.After(2 * time.Second):
	}
	if pgid, ok := pg.get(); ok && !finished {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*killGrace)
		select {
		case cn.kills <- struct{}{}:
			if ks, err := newSession(kctx, cn); err == nil {
				_ = r.execOn(kctx, ks, killer(pgid, c.Sudo, c.User), nil, nil)
			}
			<-cn.kills
		case <-kctx.Done():
		}
		cancel()
	}
	s.Close()
	if !finished {
		select {
		case <-done:
		case <-time.After(killGrace):
		}
	}
}

// session opens a session on the host's connection, dialling if needed. If
// the connection turns out to be broken, it is re-dialled once: no command
// has started yet, so retrying is safe.
func (r *sshRunner) session(ctx context.Context) (*conn, *ssh.Session, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	redialled := false
	for {
		c, err := r.h.get(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		select {
		case c.sessions <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-c.dead:
			if !redialled {
				redialled = true
				continue
			}
			return nil, nil, nil, r.h.errorf("connection lost")
		}
		s, err := newSession(ctx, c)
		if err == nil {
			var once sync.Once
			return c, s, func() { once.Do(func() { <-c.sessions }) }, nil
		}
		<-c.sessions
		var oce *ssh.OpenChannelError
		switch {
		case ctx.Err() != nil:
			return nil, nil, nil, ctx.Err()
		case errors.As(err, &oce):
			return nil, nil, nil, r.h.errorf("open session: %w (is the server's MaxSessions below %d?)", err, cap(c.sessions))
		case redialled:
			return nil, nil, nil, r.h.errorf("open session: %w", err)
		}
		redialled = true
		c.Close()
		<-c.dead
	}
}

// newSession opens a session on c, retrying for a while if the server
// refuses: sshd frees a finished session a moment after its close and counts
// it against MaxSessions meanwhile.
func newSession(ctx context.Context, c *conn) (*ssh.Session, error) {
	for refused := 1; ; refused++ {
		s, err := c.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || refused == 40 {
			return s, err
		}
		select {
		case <-time.After(time.Duration(min(refused, 10)) * 5 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// exec runs cmd, a command line for the login shell, in a session of its own.
func (r *sshRunner) exec(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) error {
	_, s, release, err := r.session(ctx)
	if err != nil {
		return err
	}
	defer release()
	return r.execOn(ctx, s, cmd, stdin, stdout)
}

// execOn runs cmd in the session s and closes it.
func (r *sshRunner) execOn(ctx context.Context, s *ssh.Session, cmd string, stdin io.Reader, stdout io.Writer) error {
	defer s.Close()
	var stderr tail
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, &stderr
	defer context.AfterFunc(ctx, func() { s.Close() })()
	err := s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ee):
		return &ExitError{Code: ee.ExitStatus(), Stderr: stderr.String()}
	case err != nil:
		return r.h.errorf("%w", err)
	}
	return nil
}

// pgidFilter takes the line reporting the script's process group out of
// stderr and passes the rest on.
type pgidFilter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	pgid  int
	done  bool          // the marker was seen, or will not come
	found chan struct{} // closed when the marker was seen
}

func (f *pgidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return f.w.Write(p)
	}
	f.buf = append(f.buf, p...)
	for !f.done {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			if len(f.buf) > 4096 {
				f.done = true
				_, _ = f.w.Write(f.buf)
				f.buf = nil
			}
			break
		}
		if rest, ok := bytes.CutPrefix(f.buf[:i], []byte(pgidMarker)); ok {
			f.pgid, _ = strconv.Atoi(string(rest))
			f.done = true
			close(f.found)
			i++ // drop the line
		} else {
			_, _ = f.w.Write(f.buf[:i+1])
			i++
		}
		f.buf = f.buf[i:]
		if f.done && len(f.buf) > 0 {
			_, _ = f.w.Write(f.buf)
			f.buf = nil
		}
	}
	return len(p), nil
}

func (f *pgidFilter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		_, _ = f.w.Write(f.buf)
		f.buf = nil
	}
}

func (f *pgidFilter) get() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pgid, f.pgid > 0
}
