package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/agent"
	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/hashicorp/yamux"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// AgentPath is where the pool puts the e2c agent on a host by default,
// relative to the login directory, before "-" and the build's name (see
// AgentFile). The network measurement and the sampler use the same copy.
const AgentPath = ".cache/e2c/e2c-agent"

// AgentFile is the name on the host of the local e2c build: prefix, "-"
// and the first 16 hex digits of its SHA-256. A host that has a build is
// asked only whether it does, not made to hash it, and a build of another
// version gets a name of its own.
func AgentFile(prefix, local string) (string, error) {
	sum, err := localSum(local)
	if err != nil {
		return "", err
	}
	return prefix + "-" + sum[:16], nil
}

// InstallAgent puts the local e2c build on the host as AgentFile(prefix,
// local) unless it is there, removing the other builds beside it, and
// returns its path.
func InstallAgent(ctx context.Context, r Runner, prefix, local string) (string, error) {
	path, err := AgentFile(prefix, local)
	if err != nil {
		return "", err
	}
	_, err = r.Run(ctx, Command{Script: "test -x " + Quote(path)})
	var ee *ExitError
	switch {
	case err == nil:
		return path, nil
	case !errors.As(err, &ee):
		return "", err
	}
	if _, err := r.Put(ctx, local, path, 0o755); err != nil {
		return "", err
	}
	_, err = r.Run(ctx, Command{Script: removeOtherBuilds(prefix, path)})
	return path, err
}

// removeOtherBuilds is the command removing the builds beside path, and
// the unnamed copy of e2c before builds were named.
func removeOtherBuilds(prefix, path string) string {
	return fmt.Sprintf(`for f in %[1]s %[1]s-*; do [ "$f" = %[2]s ] || rm -f "$f"; done`, Quote(prefix), Quote(path))
}

// listBuilds is the script printing the host's machine and the agent
// builds it has beside prefix, one per line.
func listBuilds(prefix string) string {
	return fmt.Sprintf(`uname -m && for f in %s-*; do [ -x "$f" ] && echo "$f"; done; true`, Quote(prefix))
}

// AgentCommand is the command line running `agent args...` of the agent
// at path on a host (relative to the login directory, or absolute).
// E2C_AGENT lets a test binary, copied as the agent, know it is one, and
// E2C_AGENT_PROTOCOL makes an agent that would misunderstand e2c refuse
// to start.
func AgentCommand(path string, args ...string) string {
	if !strings.HasPrefix(path, "/") {
		path = "./" + path
	}
	return fmt.Sprintf("E2C_AGENT=1 E2C_AGENT_PROTOCOL=%d exec %s agent %s", agent.Protocol, Quote(path), strings.Join(args, " "))
}

// agentLine starts the agent's session at path on a host, once the other
// builds are gone if a new one was copied.
func agentLine(prefix, path string, copied bool) string {
	line := AgentCommand(path, "session")
	if copied {
		line = removeOtherBuilds(prefix, path) + "; " + line
	}
	return line
}

// agentRunner is the Runner of an endpoint whose commands and files go
// through the e2c agent (engine/agent) on the host, over one SSH session;
// where the agent cannot run, through plain SSH sessions.
type agentRunner struct {
	ssh  *sshRunner
	find func(goarch string) (string, error)
	path string        // where the agent goes on the host
	lock chan struct{} // held while starting the agent
	s    *agentSession // guarded by lock; nil until started
	why  error         // guarded by lock: why the host uses plain SSH
}

func newAgentRunner(r *sshRunner, find func(string) (string, error), path string) *agentRunner {
	return &agentRunner{ssh: r, find: find, path: path, lock: make(chan struct{}, 1)}
}

// fallback says why the agent is not used (nil: it is, or was not tried).
func (r *agentRunner) fallback() error {
	r.lock <- struct{}{}
	defer func() { <-r.lock }()
	return r.why
}

// session returns the live agent session, starting the agent if there is
// none, or nil if the host uses plain SSH. A connection that cannot be
// made is the host's error, not a reason to give up on the agent.
func (r *agentRunner) session(ctx context.Context) (*agentSession, error) {
	select {
	case r.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.lock }()
	if r.why != nil {
		return nil, nil
	}
	if r.s != nil && !r.s.mux.IsClosed() {
		return r.s, nil
	}
	cn, err := r.ssh.h.get(ctx)
	if err != nil {
		return nil, err
	}
	s, err := r.start(ctx)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && cn.lost():
		return nil, r.ssh.h.errorf("connection lost while starting the agent")
	case err != nil:
		r.why = err
		return nil, nil
	}
	r.s = s
	return s, nil
}

// start copies the agent for the host's architecture unless the host has
// it, and starts it on an SSH session held as long as it runs: two SSH
// sessions when the host has it, with the copy's when not.
func (r *agentRunner) start(ctx context.Context) (*agentSession, error) {
	res, err := r.ssh.Run(ctx, Command{Script: listBuilds(r.path)})
	if err != nil {
		return nil, fmt.Errorf("uname -m: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	machine := lines[0]
	local, err := r.find(arch.Of(machine))
	if err != nil {
		return nil, fmt.Errorf("no agent for %s: %w", machine, err)
	}
	path, err := AgentFile(r.path, local)
	if err != nil {
		return nil, fmt.Errorf("no agent for %s: %w", machine, err)
	}
	copied := !slices.Contains(lines[1:], path)
	if copied {
		if _, err := r.ssh.Put(ctx, local, path, 0o755); err != nil {
			return nil, fmt.Errorf("copy the agent: %w", err)
		}
	}
	_, ss, release, err := r.ssh.session(ctx)
	if err != nil {
		return nil, err
	}
	var stderr lastWords
	in, err1 := ss.StdinPipe()
	out, err2 := ss.StdoutPipe()
	ss.Stderr = &stderr
	err = errors.Join(err1, err2)
	if err == nil {
		err = ss.Start(agentLine(r.path, path, copied))
	}
	if err != nil {
		ss.Close()
		release()
		return nil, err
	}
	mux, err := yamux.Client(sessionConn{out, agent.CoalesceFrames(in), ss}, agent.Config())
	if err == nil {
		// The agent answers once it runs; a missing or unrunnable binary
		// (noexec home) ends the session instead.
		_, err = mux.Ping()
	}
	if err != nil {
		if mux != nil {
			mux.Close()
		}
		ended := make(chan error, 1)
		go func() { ended <- ss.Wait() }()
		select { // for the agent's last words on stderr
		case <-ended:
		case <-time.After(time.Second):
		}
		ss.Close()
		release()
		if l := lastLine(stderr.String()); l != "" {
			err = fmt.Errorf("%w: %s", err, l)
		}
		return nil, fmt.Errorf("start the agent: %w", err)
	}
	s := &agentSession{mux: mux}
	go func() {
		<-mux.CloseChan()
		ss.Close()
		release()
	}()
	return s, nil
}

// lastWords is an agent's stderr, which says why it did not start, if
// anything. x/crypto copies a session's stderr with io.Copy, whose buffer
// (32 KB, per host for the run) ReadFrom spares.
type lastWords struct{ output }

func (w *lastWords) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{&w.output}, r, make([]byte, 512))
}

// sessionConn is an SSH session's stdout and stdin as one connection;
// closing it closes the session, whose end closes the agent's stdin,
// which ends it. Not stdin first: x/crypto's CloseWrite races with a
// Write that yamux's send loop may be doing.
type sessionConn struct {
	io.Reader
	in io.WriteCloser // agent.CoalesceFrames
	s  *ssh.Session
}

func (c sessionConn) Write(p []byte) (int, error) { return c.in.Write(p) }

// Close ends the frames' sending goroutine, then the session: what it
// still held is of no use to an agent that ends with it.
func (c sessionConn) Close() error {
	c.in.Close()
	return c.s.Close()
}

// agentSession is e2c's end of a running agent.
type agentSession struct {
	mux  *yamux.Session
	mu   sync.Mutex
	next uint64 // the last exec's ID
}

// open opens a stream starting with req, then payload, in one frame.
func (s *agentSession) open(req agent.Request, payload ...byte) (*yamux.Stream, error) {
	st, err := s.mux.OpenStream()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(req)
	if _, err := st.Write(append(append(b, '\n'), payload...)); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// errLost says the agent's session ended under a command.
var errLost = errors.New("connection lost while the command ran (not retried)")

// maxArg is the largest script given to sh -c as an argument, below
// Linux's 128 KiB for one.
const maxArg = 100 << 10

// inlineStdin is the largest stdin sent with its exec's request, in one
// frame: scripts, lists of names.
const inlineStdin = 64 << 10

// exec runs req (Op and ID are set here) with stdin, copying its output
// to stdout and stderr, and returns its exit status. When ctx is
// cancelled the agent kills the command's process group and exec
// returns ctx's error.
func (s *agentSession) exec(ctx context.Context, req agent.Request, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s.mu.Lock()
	s.next++
	req.Op, req.ID = agent.OpExec, s.next
	s.mu.Unlock()
	var payload []byte
	if r, ok := stdin.(interface{ Len() int }); ok && r.Len() <= inlineStdin {
		payload, _ = io.ReadAll(stdin)
		stdin = nil
	}
	st, err := s.open(req, payload...)
	if err != nil {
		return -1, err
	}
	defer st.Close()
	if stdin == nil {
		st.Close() // the command's stdin ends; its answer comes back
	} else {
		go func() {
			_, _ = io.Copy(st, stdin)
			st.Close()
		}()
	}
	var e agent.Exit
	done := make(chan error, 1)
	go func() { done <- readAnswer(st, stdout, stderr, &e) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.kill(req.ID)
		select {
		case <-done:
		case <-time.After(killGrace):
		}
		return -1, ctx.Err()
	}
	switch {
	case err != nil:
		return -1, err
	case e.Error != "":
		return -1, errors.New(e.Error)
	}
	return e.Code, nil
}

// readAnswer reads an exec's records (see agent.WriteRecord) into stdout,
// stderr and e, until the Exit.
func readAnswer(r io.Reader, stdout, stderr io.Writer, e *agent.Exit) error {
	// Not through a bufio.Reader: a stream's Read is a copy from the
	// buffer yamux keeps already.
	var h [agent.RecordHeader]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return errLost
		}
		n := int64(binary.BigEndian.Uint32(h[1:]))
		var w io.Writer
		switch h[0] {
		case agent.FDStdout:
			w = stdout
		case agent.FDStderr:
			w = stderr
		case agent.FDExit:
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil || json.Unmarshal(b, e) != nil {
				return errLost
			}
			return nil
		default:
			return fmt.Errorf("agent: a record of kind %d", h[0])
		}
		if w == nil {
			w = io.Discard
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return errLost
		}
	}
}

// cache copies files on the host from its BlobDir (agent.OpCache) and
// tells which it had.
func (s *agentSession) cache(ctx context.Context, files []agent.CacheFile, bundles []string) ([]bool, error) {
	st, err := s.open(agent.Request{Op: agent.OpCache, Files: files, Bundles: bundles})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	defer context.AfterFunc(ctx, func() { st.Close() })()
	var res agent.Cached
	err = json.NewDecoder(st).Decode(&res)
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, err
	case res.Error != "":
		return nil, errors.New(res.Error)
	case len(res.Copied) != len(files):
		return nil, fmt.Errorf("the agent answered for %d files of %d", len(res.Copied), len(files))
	}
	return res.Copied, nil
}

// kill asks the agent to kill the process group of exec id and waits for
// it to be done (TERM, then KILL after killGrace).
func (s *agentSession) kill(id uint64) {
	st, err := s.open(agent.Request{Op: agent.OpKill, ID: id})
	if err != nil {
		return
	}
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(2*killGrace + 2*time.Second))
	var e agent.Exit
	_ = json.NewDecoder(st).Decode(&e)
}

func (r *agentRunner) Run(ctx context.Context, c Command) (Result, error) {
	s, err := r.session(ctx)
	if err != nil {
		return Result{}, err
	}
	if s == nil {
		return r.ssh.Run(ctx, c)
	}
	// Only through sudo does the agent need the script to report its
	// process group: else it is the session the agent started.
	script, err := c.script(c.Sudo)
	if err != nil {
		return Result{}, err
	}
	stdout, stderr := newOutput(c.Stdout), newOutput(c.Stderr)
	var errOut io.Writer = stderr
	req := agent.Request{Cmd: launcher(c.Sudo, c.User), Sudo: c.Sudo, User: c.User}
	if c.Sudo {
		errOut = &pgidFilter{w: stderr, found: make(chan struct{})} // the agent reads the group's line, e2c drops it
	} else {
		// The agent starts each command in a session of its own, as
		// setsid does in launcher, so the script's shell needs nothing
		// before it: sparing the launcher's shells and setsid makes a
		// command more than twice cheaper. Through sudo the launcher
		// is kept as it is.
		req = agent.Request{Argv: []string{"sh", "-s"}}
	}
	var stdin io.Reader = strings.NewReader(script)
	if !c.Sudo && len(script) <= maxArg {
		// As an argument the script needs no pipe: its commands read
		// nothing, as over SSH, where the script's stdin ends with it.
		req, stdin = agent.Request{Argv: []string{"sh", "-c", script}, NoStdin: true}, nil
	}
	code, err := s.exec(ctx, req, stdin, stdout, errOut)
	if pg, ok := errOut.(*pgidFilter); ok {
		pg.flush()
	}
	switch {
	case err == nil:
		return result(code, stdout, stderr)
	case ctx.Err() != nil, errors.Is(err, errLost):
		stdout.flush()
		stderr.flush()
		res := Result{Code: -1, Stdout: stdout.String(), Stderr: stderr.String()}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, r.ssh.h.errorf("%w", err)
	default:
		return Result{}, r.ssh.h.errorf("agent: %w", err)
	}
}

// exec runs cmd, a command line, through the agent s.
func (r *agentRunner) exec(ctx context.Context, s *agentSession, cmd string, stdin io.Reader, stdout io.Writer) error {
	var stderr tail
	code, err := s.exec(ctx, agent.Request{Cmd: cmd}, stdin, stdout, &stderr)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return r.ssh.h.errorf("agent: %w", err)
	case code != 0:
		return &ExitError{Code: code, Stderr: stderr.String()}
	}
	return nil
}

func (r *agentRunner) Put(ctx context.Context, src, dst string, mode fs.FileMode) (PutStats, error) {
	s, err := r.session(ctx)
	if err != nil {
		return PutStats{}, err
	}
	if s == nil {
		return r.ssh.Put(ctx, src, dst, mode)
	}
	survey := func(ctx context.Context, root string, names []string) (view, error) {
		return surveyWith(func(stdin io.Reader, stdout io.Writer) error {
			return r.exec(ctx, s, "sh -c "+Quote(surveyScript)+" sh "+Quote(root), stdin, stdout)
		}, names)
	}
	fromCache := func(ctx context.Context, files []agent.CacheFile, bundles []string) ([]bool, error) {
		return s.cache(ctx, files, bundles)
	}
	return put(ctx, survey, func(fn func(hostFS) error) error { return r.files(ctx, s, fn) }, fromCache, src, dst, mode)
}

func (r *agentRunner) Get(ctx context.Context, src, dst string) error {
	s, err := r.session(ctx)
	if err != nil {
		return err
	}
	if s == nil {
		return r.ssh.Get(ctx, src, dst)
	}
	return r.files(ctx, s, func(h hostFS) error { return get(ctx, h, src, dst) })
}

// files calls fn with an sftp client served by the agent on one stream.
func (r *agentRunner) files(ctx context.Context, s *agentSession, fn func(hostFS) error) error {
	st, err := s.open(agent.Request{Op: agent.OpSFTP})
	if err != nil {
		return r.ssh.wrap(ctx, err)
	}
	defer st.Close()
	cl, err := sftp.NewClientPipe(st, st, sftpOptions...)
	if err != nil {
		return r.ssh.wrap(ctx, err)
	}
	// On cancel end the stream, not the client, whose lock a stalled
	// write may hold.
	stop := context.AfterFunc(ctx, func() {
		_ = st.SetDeadline(time.Now())
		st.Close()
	})
	err = fn(sftpFS{cl})
	stop()
	cl.Close()
	return r.ssh.wrap(ctx, err)
}

// Close does nothing: the Pool owns the connection and the agent.
func (r *agentRunner) Close() error { return nil }

// close ends the agent, which kills what it still runs. An agent being
// started is left to the connection's close, which ends it as well.
func (r *agentRunner) close() {
	select {
	case r.lock <- struct{}{}:
		if r.s != nil {
			r.s.mux.Close()
		}
		<-r.lock
	default:
	}
}

// Streamer is a Runner whose host runs the e2c agent. Stream opens a
// stream to the agent that starts with req, for operations beyond Run,
// Put and Get (spreading files from host to host); the caller speaks the
// operation's protocol on it and closes it. ErrNoAgent: the host uses
// plain SSH sessions.
type Streamer interface {
	Stream(ctx context.Context, req agent.Request) (io.ReadWriteCloser, error)
}

// ErrNoAgent says a host runs its commands over plain SSH sessions.
var ErrNoAgent = errors.New("the host does not run the e2c agent")

func (r *agentRunner) Stream(ctx context.Context, req agent.Request) (io.ReadWriteCloser, error) {
	s, err := r.session(ctx)
	switch {
	case err != nil:
		return nil, err
	case s == nil:
		return nil, fmt.Errorf("%w: %v", ErrNoAgent, r.fallback())
	}
	st, err := s.open(req)
	if err != nil {
		return nil, r.ssh.wrap(ctx, err)
	}
	return st, nil
}
