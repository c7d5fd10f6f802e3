// Package agent is e2c's end on a host for a whole run: one process,
// started over one SSH session, that runs commands and serves files on
// streams multiplexed over that session's stdin and stdout. A command then
// costs a stream, not a new sshd session with its login shell.
//
// The streams are github.com/hashicorp/yamux: a small, well-kept library
// (the multiplexing of Consul, Nomad and Terraform's plugins) with flow
// control per stream, so that one command's output cannot starve the
// others, and half-closes, so that a command's stdin can end while its
// output flows.
//
// Each stream e2c opens starts with one line of JSON, a Request: exec runs
// a command line as sshd runs a session's command (sh -c, in a session of
// its own) or a program with its arguments, its stdin the rest of the
// stream, its stdout, stderr and Exit back as records on the same stream
// (a command costs one stream, a few frames); kill ends the process group
// of a running exec; sftp serves files on the stream; spread and feed
// receive a file and relay it to other hosts (spread.go); cache copies
// files from what spreads left (cache.go). When its stdin closes (e2c
// gone), the agent kills what it is still running and exits.
package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/pkg/sftp"
)

// Operations of a Request.
const (
	OpExec = "exec"
	OpKill = "kill"
	OpSFTP = "sftp"
	// OpSpread receives a file into Path and serves it to other hosts'
	// agents while it arrives; OpFeed gives a spread its bytes from e2c.
	OpSpread = "spread"
	OpFeed   = "feed"
)

// Request begins every stream e2c opens, as one line of JSON. An exec's
// stdin follows it on the stream; a kill is answered by an Exit once the
// group is gone.
type Request struct {
	Op   string   `json:"op"`
	ID   uint64   `json:"id,omitempty"`   // exec: names it for a kill; kill: the exec to kill
	Cmd  string   `json:"cmd,omitempty"`  // exec: the command line, run by sh -c
	Argv []string `json:"argv,omitempty"` // exec: the program and its arguments, run as they are, instead of Cmd
	Sudo bool     `json:"sudo,omitempty"` // exec: the command runs through sudo -n (as User), so its group is killed through it too
	User string   `json:"user,omitempty"`
	// NoStdin: exec's stdin is /dev/null, not the stream (which then
	// carries none): no pipe to feed.
	NoStdin bool `json:"no_stdin,omitempty"`

	Path  string `json:"path,omitempty"`  // spread: where the file goes (relative to the login directory)
	Size  int64  `json:"size,omitempty"`  // spread: its size in bytes
	Sum   string `json:"sum,omitempty"`   // spread: its SHA-256, in hex
	Token string `json:"token,omitempty"` // spread: what peers must present; feed: the spread fed
	Addr  string `json:"addr,omitempty"`  // spread: the host's address peers reach it at, listened on

	Files   []CacheFile `json:"files,omitempty"`   // cache: what to copy
	Bundles []string    `json:"bundles,omitempty"` // cache: the tar files to look into
}

// An exec's answer is records: a header of RecordHeader bytes, the
// record's kind (FDStdout, FDStderr, or FDExit: the Exit as JSON, the
// last record) and its length (big-endian), then that many bytes.
const (
	FDExit       = 0
	FDStdout     = 1
	FDStderr     = 2
	RecordHeader = 5
)

// WriteRecord writes the record of kind fd holding p in one Write: one
// frame of the stream.
func WriteRecord(w io.Writer, fd byte, p []byte) error {
	b := make([]byte, RecordHeader+len(p))
	b[0] = fd
	binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
	copy(b[RecordHeader:], p)
	_, err := w.Write(b)
	return err
}

// records writes an exec's answer on w, one record at a time.
type records struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *records) write(fd byte, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return WriteRecord(r.w, fd, p)
}

// fdWriter is an FD of an exec, written as records.
type fdWriter struct {
	r  *records
	fd byte
}

func (f fdWriter) Write(p []byte) (int, error) {
	if err := f.r.write(f.fd, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Exit ends an exec's stream: the exit status (128+n for a signal n, as
// shells and sshd report it), or Code -1 and why the command did not run.
type Exit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// Protocol is the version of what e2c and the agent say to each other,
// raised at every change either end would misread. e2c gives its own in
// E2C_AGENT_PROTOCOL, and an agent of another one refuses to start: an
// e2c-agent left from another build (cmd/e2c-agent) then falls back to
// plain SSH, saying why, instead of misunderstanding e2c.
const Protocol = 2

// GroupMarker starts the line by which e2c's scripts report their process
// group first on stderr. The agent reads it to kill the group; the line is
// passed on unchanged (e2c takes it out).
const GroupMarker = "e2c-pgid:"

// killGrace is how long a process group has between TERM and KILL, as
// over plain SSH.
const killGrace = 3 * time.Second

// Config is the yamux configuration of both ends. Streams stay half-closed
// as long as their command runs (hours, for some), and yamux's own
// keepalive is off: SSH's keepalive watches the link, and an agent killing
// its commands on a transient stall would do what plain SSH never does.
func Config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.StreamCloseTimeout = 0
	c.LogOutput = io.Discard
	return c
}

// ServeStdio runs the agent on its stdin and stdout, as `e2c agent
// session` does, until stdin closes or a TERM, INT or HUP comes.
func ServeStdio() error {
	if p := os.Getenv("E2C_AGENT_PROTOCOL"); p != "" && p != strconv.Itoa(Protocol) {
		return fmt.Errorf("this agent speaks protocol %d, e2c %s: build e2c and e2c-agent from the same version", Protocol, p)
	}
	// One thread runs the agent's Go code (see allCores), and its heap,
	// a few MB, may grow fivefold between collections: each cut its CPU
	// per command by a tenth or more.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(400)
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	// SIGPIPE is caught, not ignored: a write to a closed stdout must fail
	// rather than kill the agent before it cleans up, and commands must
	// not inherit an ignored SIGPIPE.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGPIPE {
				close(stop)
				return
			}
		}
	}()
	return Serve(stdio{CoalesceFrames(os.Stdout)}, stop)
}

// stdio is the agent's stdin and stdout as one connection.
type stdio struct{ out io.WriteCloser }

func (stdio) Read(p []byte) (int, error)    { return os.Stdin.Read(p) }
func (s stdio) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s stdio) Close() error {
	s.out.Close()
	os.Stdin.Close()
	return os.Stdout.Close()
}

// Serve runs the agent on conn (its stdin and stdout) until conn ends or
// stop is closed, then kills the process groups of the commands still
// running and returns once they are gone.
func Serve(conn io.ReadWriteCloser, stop <-chan struct{}) error {
	s, err := yamux.Server(conn, Config())
	if err != nil {
		return err
	}
	a := &server{s: s, execs: map[uint64]*execution{}, spreads: map[string]*spread{}, procs: runtime.GOMAXPROCS(0)}
	go func() {
		select {
		case <-stop:
			s.Close()
		case <-s.CloseChan():
		}
	}()
	for {
		st, err := s.AcceptStream()
		if err != nil {
			break
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.handle(st)
		}()
	}
	a.mu.Lock()
	a.closed = true
	running := make([]*execution, 0, len(a.execs))
	for _, e := range a.execs {
		running = append(running, e)
	}
	a.mu.Unlock()
	var kills sync.WaitGroup
	for _, e := range running {
		kills.Add(1)
		go func() {
			defer kills.Done()
			e.kill()
		}()
	}
	kills.Wait()
	a.wg.Wait()
	return nil
}

type server struct {
	s      *yamux.Session
	wg     sync.WaitGroup
	mu     sync.Mutex
	execs  map[uint64]*execution
	closed bool // the session ended: no new exec starts

	spreads   map[string]*spread // by token
	procs     int                // GOMAXPROCS when no spread runs
	spreading int                // spreads running
}

// allCores lets Go code run on all the cores until done is called. Commands
// need one thread (ServeStdio sets it): idle threads of a Go process spin at
// each wake-up, CPU a busy small host does not have to spare. A spread
// hashes and relays a file at the link's speed, which one core of a
// Raspberry Pi may not keep up with.
func (a *server) allCores() (done func()) {
	a.mu.Lock()
	if a.spreading++; a.spreading == 1 && a.procs < runtime.NumCPU() {
		runtime.GOMAXPROCS(runtime.NumCPU())
	}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		if a.spreading--; a.spreading == 0 && a.procs < runtime.NumCPU() {
			runtime.GOMAXPROCS(a.procs)
		}
		a.mu.Unlock()
	}
}

func (a *server) handle(st *yamux.Stream) {
	defer st.Close()
	in := bufio.NewReader(st)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(st, Exit{Code: -1, Error: "agent: bad request: " + err.Error()})
		return
	}
	switch req.Op {
	case OpExec:
		out := &records{w: st}
		b, _ := json.Marshal(a.exec(req, in, out))
		_ = out.write(FDExit, b)
	case OpKill:
		a.mu.Lock()
		e := a.execs[req.ID]
		a.mu.Unlock()
		if e != nil {
			e.kill()
		}
		reply(st, Exit{})
	case OpSFTP:
		srv, err := sftp.NewServer(struct {
			io.Reader
			io.WriteCloser
		}{in, st})
		if err == nil {
			_ = srv.Serve()
			srv.Close()
		}
	case OpSpread:
		defer a.allCores()()
		a.spread(req, in, st)
	case OpFeed:
		a.feed(req, in, st)
	case OpCache:
		_ = json.NewEncoder(st).Encode(cache(req))
	default:
		reply(st, Exit{Code: -1, Error: fmt.Sprintf("agent: unknown operation %q", req.Op)})
	}
}

func reply(w io.Writer, e Exit) { _ = json.NewEncoder(w).Encode(e) }

// execution is a running exec.
type execution struct {
	req    Request
	mu     sync.Mutex
	pid    int           // the command's session, 0 until it started
	pgid   int           // the group the script reported, 0 until it did
	killed bool          // kill came: do not start
	found  chan struct{} // closed when it did
	done   chan struct{} // closed when the command has ended
}

// exec runs req.Cmd with stdin, as sshd runs a session's command (sh -c in
// a session of its own), or req.Argv likewise without the shell: the
// agent's environment (the login's) less E2C_AGENT, the login directory.
// Its output goes to out as records, all of it before exec returns.
func (a *server) exec(req Request, stdin io.Reader, out *records) Exit {
	e := &execution{req: req, found: make(chan struct{}), done: make(chan struct{})}
	defer close(e.done)
	if !req.Sudo {
		close(e.found) // its group is the session it gets here
	}
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return Exit{Code: -1, Error: "agent: shutting down"}
	case a.execs[req.ID] != nil:
		a.mu.Unlock()
		return Exit{Code: -1, Error: fmt.Sprintf("agent: exec %d is running already", req.ID)}
	}
	a.execs[req.ID] = e
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.execs, req.ID)
		a.mu.Unlock()
	}()

	argv := req.Argv
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-c", req.Cmd}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if !req.NoStdin {
		cmd.Stdin = stdin
	}
	var stderr io.Writer = fdWriter{out, FDStderr}
	if req.Sudo {
		// Through sudo the command's group is not this session: the
		// script reports it.
		stderr = &groupSniffer{w: stderr, e: e}
	}
	cmd.Stdout, cmd.Stderr = SmallCopies{fdWriter{out, FDStdout}}, SmallCopies{stderr}
	cmd.Env = environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	e.mu.Lock()
	if e.killed {
		e.mu.Unlock()
		return Exit{Code: -1, Error: "agent: killed before it started"}
	}
	err := cmd.Start()
	if err == nil {
		e.pid = cmd.Process.Pid
	}
	e.mu.Unlock()
	if err != nil {
		return Exit{Code: -1, Error: "agent: " + err.Error()}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return Exit{}
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return Exit{Code: 128 + int(ws.Signal())}
		}
		return Exit{Code: ee.ExitCode()}
	default:
		return Exit{Code: -1, Error: "agent: " + err.Error()}
	}
}

// environ is the agent's environment for its commands: E2C_AGENT marks the
// agent itself, not what it runs.
func environ() []string {
	env := os.Environ()
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "E2C_AGENT=") {
			out = append(out, kv)
		}
	}
	return out
}

// kill ends e's process group as e2c does over plain SSH: TERM, up to
// killGrace for it to go, then KILL. The group is the command's own
// session or, through sudo, the one the script reported (waited for a
// moment, as it may be on its way).
func (e *execution) kill() {
	select {
	case <-e.found:
	case <-e.done:
		return
	case <-time.After(2 * time.Second):
	}
	e.mu.Lock()
	pgid := e.pgid
	if pgid == 0 {
		pgid = e.pid
	}
	e.killed = true // if not started yet, it will not
	e.mu.Unlock()
	if pgid == 0 {
		return
	}
	e.signal(pgid, syscall.SIGTERM)
	for end := time.Now().Add(killGrace); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) == syscall.ESRCH {
			return
		}
	}
	e.signal(pgid, syscall.SIGKILL)
}

// signal sends sig to the group pgid, through sudo -n when the group runs
// as another user.
func (e *execution) signal(pgid int, sig syscall.Signal) {
	err := syscall.Kill(-pgid, sig)
	if err != syscall.EPERM || !e.req.Sudo {
		return
	}
	argv := []string{"sudo", "-n"}
	if e.req.User != "" {
		argv = append(argv, "-u", e.req.User)
	}
	argv = append(argv, "kill", "-s", sigName[sig], "--", "-"+strconv.Itoa(pgid))
	_ = exec.Command(argv[0], argv[1:]...).Run()
}

var sigName = map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGKILL: "KILL"}

// groupSniffer notes the process group reported by the first line of w's
// output and passes everything on.
type groupSniffer struct {
	w    io.Writer
	e    *execution
	head []byte
	done bool
}

func (g *groupSniffer) Write(p []byte) (int, error) {
	if !g.done {
		g.head = append(g.head, p...)
		i := bytes.IndexByte(g.head, '\n')
		if i >= 0 {
			if rest, ok := bytes.CutPrefix(g.head[:i], []byte(GroupMarker)); ok {
				if pgid, err := strconv.Atoi(string(rest)); err == nil && pgid > 0 {
					g.e.mu.Lock()
					g.e.pgid = pgid
					g.e.mu.Unlock()
					close(g.e.found)
				}
			}
		}
		if i >= 0 || len(g.head) > 4096 {
			g.done, g.head = true, nil
		}
	}
	return g.w.Write(p)
}
