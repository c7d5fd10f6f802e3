package agent

// Spreading a file from host to host. A spread stream makes the agent
// receive a file into a temporary file beside Path, from e2c (a feed
// stream) or from another host's agent (a pull), and serve what it has
// to other hosts' agents while it still receives, so that e2c sends each
// byte about once and the hosts relay it in a pipelined tree.
//
// On the spread stream the agent first answers a SpreadReport with the
// port it listens on, then reports progress, a lost source, done or an
// error; e2c sends SpreadOrders on it. A host that has the file at Path
// already says done in its first report, and serves that file. A peer
// connects to the port, sends one PeerRequest line, and receives the file
// from its offset on. When e2c closes the spread stream the agent stops
// listening, drops its peers and removes an incomplete file.
//
// Security: the port is open only while the spread lasts (the house rule:
// no port of the agent's own beyond a measurement's few seconds), on the
// address e2c gives, and serves only the one file to peers that present
// the spread's token, compared in constant time. The bytes travel in
// clear between hosts; what a host keeps is checked against the SHA-256
// e2c gave, which comes over SSH.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// SpreadReport is a line the agent writes on a spread stream: first the
// Port peers reach it at (with Done if the host has the file already),
// then any of Have (bytes received so far), Lost (its source failed or
// stalled: e2c should give another), Done (the file is at Path, its
// SHA-256 checked) or Error (the spread failed on this host). A feed
// stream starts with one, Have saying where e2c's bytes must start.
type SpreadReport struct {
	Port  int    `json:"port,omitempty"`
	Have  int64  `json:"have,omitempty"`
	Lost  string `json:"lost,omitempty"`
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// SpreadOrder is a line e2c writes on a spread stream: pull the file from
// the agent at From ("ip:port"), from what this host has on. It replaces
// the current source.
type SpreadOrder struct {
	From string `json:"from"`
}

// PeerRequest is the line a peer sends first on the spread's port.
type PeerRequest struct {
	Token  string `json:"token"`
	Offset int64  `json:"offset"`
}

// Timing of spreads; variables so that tests can shorten them.
var (
	// SpreadStall is how long a source may send nothing before it is
	// said lost, and a peer may read nothing before it is dropped.
	SpreadStall = 15 * time.Second
	// spreadEvery is how often progress is reported at most: a few
	// lines a second per host, whatever the speed.
	spreadEvery = 250 * time.Millisecond
)

// spread is one file being received and served.
type spread struct {
	req Request
	st  *yamux.Stream // reports go there
	wmu sync.Mutex    // one report at a time
	tmp string
	f   *os.File
	ln  net.Listener

	srcMu sync.Mutex // held while the source changes
	src   *source

	mu     sync.Mutex
	cond   *sync.Cond // signalled when have grows or the spread ends
	have   int64
	sum    hash.Hash
	done   bool // the file is at Path
	failed bool // it never will be
	ended  bool // e2c closed the stream
	conns  map[net.Conn]bool
	last   time.Time // of the last progress report

	wg sync.WaitGroup // the accept loop and the peers served
}

// source is where a spread's bytes come from: a pull or a feed. Stopping
// it cancels ctx and waits for done.
type source struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *server) spread(req Request, in *bufio.Reader, st *yamux.Stream) {
	s, err := a.newSpread(req, st)
	if err != nil {
		s.report(SpreadReport{Error: "agent: spread: " + err.Error()})
		return
	}
	defer a.endSpread(s)
	s.report(SpreadReport{Port: s.ln.Addr().(*net.TCPAddr).Port, Done: s.done, Have: s.have})
	s.wg.Add(1)
	go s.accept()
	if req.Size == 0 && !s.done {
		s.finish()
	}
	dec := json.NewDecoder(in)
	for {
		var o SpreadOrder
		if err := dec.Decode(&o); err != nil {
			return // e2c closed the stream (or sent garbage): the spread ends
		}
		if o.From != "" {
			s.wg.Add(1)
			go s.pull(o.From)
		}
	}
}

func (a *server) newSpread(req Request, st *yamux.Stream) (*spread, error) {
	s := &spread{req: req, st: st, sum: sha256.New(), conns: map[net.Conn]bool{}}
	s.cond = sync.NewCond(&s.mu)
	if sum, err := hex.DecodeString(req.Sum); err != nil || len(sum) != sha256.Size {
		return s, fmt.Errorf("sum %q is not a SHA-256 in hex", req.Sum)
	}
	switch {
	case req.Path == "":
		return s, errors.New("no path")
	case req.Size < 0:
		return s, fmt.Errorf("size %d", req.Size)
	case req.Token == "":
		return s, errors.New("no token")
	}
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return s, errors.New("shutting down")
	case a.spreads[req.Token] != nil:
		a.mu.Unlock()
		return s, errors.New("a spread with this token runs already")
	}
	a.spreads[req.Token] = s
	a.mu.Unlock()
	fail := func(err error) (*spread, error) {
		a.mu.Lock()
		delete(a.spreads, req.Token)
		a.mu.Unlock()
		if s.f != nil {
			s.f.Close()
		}
		if s.tmp != "" {
			os.Remove(s.tmp)
		}
		return s, err
	}
	if f := existing(req); f != nil {
		s.f, s.have, s.done = f, req.Size, true
	} else {
		dir := filepath.Dir(req.Path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		f, err := os.CreateTemp(dir, "."+filepath.Base(req.Path)+".spread-*")
		if err != nil {
			return fail(err)
		}
		s.f, s.tmp = f, f.Name()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(req.Addr, "0"))
	if err != nil {
		return fail(err)
	}
	s.ln = ln
	return s, nil
}

// existing opens the file at req.Path if it is already the one spread,
// as a spread would leave it: a regular file of mode 0644, req.Size bytes
// and SHA-256 req.Sum, else returns nil. A file named by its sum is taken
// on its size alone, unread: e2c's blobs (transport.BlobDir) are named so
// and are written only by a spread, renamed there once checked (finish),
// and reading a large file on every host for nothing is what this saves.
func existing(req Request) *os.File {
	f, err := os.Open(req.Path)
	if err != nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || fi.Size() != req.Size {
		f.Close()
		return nil
	}
	if filepath.Base(req.Path) == req.Sum {
		return f
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil || hex.EncodeToString(h.Sum(nil)) != req.Sum {
		f.Close()
		return nil
	}
	return f
}

// endSpread ends s once e2c closed its stream: no more peers or sources,
// and the temporary file gone if the spread did not finish.
func (a *server) endSpread(s *spread) {
	s.mu.Lock()
	s.ended = true
	for c := range s.conns {
		c.Close()
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.ln.Close()
	s.take() // stops the current source; there is no next one
	s.wg.Wait()
	a.mu.Lock()
	delete(a.spreads, s.req.Token)
	a.mu.Unlock()
	s.f.Close()
	s.mu.Lock()
	if !s.done {
		os.Remove(s.tmp)
	}
	s.mu.Unlock()
}

func (s *spread) report(r SpreadReport) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = json.NewEncoder(s.st).Encode(r)
}

// take stops the current source and returns the next one, whose finish
// the caller calls when it ends; nil once the spread takes no more bytes.
func (s *spread) take() *source {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	if old := s.src; old != nil {
		old.cancel()
		<-old.done
		s.src = nil
	}
	s.mu.Lock()
	over := s.ended || s.done || s.failed
	s.mu.Unlock()
	if over {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.src = &source{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	return s.src
}

func (src *source) finish() {
	src.cancel()
	close(src.done)
}

// conn is what a source reads from.
type conn interface {
	io.ReadCloser
	SetReadDeadline(time.Time) error
}

// pull receives the rest of the file from the agent at addr.
func (s *spread) pull(addr string) {
	defer s.wg.Done()
	src := s.take()
	if src == nil {
		return
	}
	defer src.finish()
	if addr == s.ln.Addr().String() {
		s.lost(src, errors.New("told to pull from itself"))
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(src.ctx, "tcp", addr)
	if err != nil {
		s.lost(src, err)
		return
	}
	defer c.Close()
	s.mu.Lock()
	have := s.have
	s.mu.Unlock()
	b, _ := json.Marshal(PeerRequest{Token: s.req.Token, Offset: have})
	_ = c.SetWriteDeadline(time.Now().Add(SpreadStall))
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.lost(src, err)
		return
	}
	s.lost(src, s.receive(src, c))
}

// feed receives the rest of the file from e2c on st, after telling it
// where to start.
func (a *server) feed(req Request, in *bufio.Reader, st *yamux.Stream) {
	a.mu.Lock()
	s := a.spreads[req.Token]
	a.mu.Unlock()
	if s == nil {
		_ = json.NewEncoder(st).Encode(SpreadReport{Error: "agent: feed: no such spread"})
		return
	}
	src := s.take()
	if src == nil {
		_ = json.NewEncoder(st).Encode(SpreadReport{Error: "agent: feed: the spread takes no more bytes"})
		return
	}
	defer src.finish()
	s.mu.Lock()
	have := s.have
	s.mu.Unlock()
	if err := json.NewEncoder(st).Encode(SpreadReport{Have: have}); err != nil {
		return
	}
	s.lost(src, s.receive(src, fed{in, st}))
}

// fed is a feed stream past its request line, which in has read.
type fed struct {
	in *bufio.Reader
	*yamux.Stream
}

func (f fed) Read(p []byte) (int, error) { return f.in.Read(p) }

// lost reports the end of a source that failed, unless it was stopped.
func (s *spread) lost(src *source, err error) {
	if err == nil || src.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	have := s.have
	s.mu.Unlock()
	s.report(SpreadReport{Lost: err.Error(), Have: have})
}

// receive appends what c sends to the file until it is whole. A source
// sending nothing for SpreadStall is an error.
func (s *spread) receive(src *source, c conn) error {
	stop := context.AfterFunc(src.ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 256<<10)
	for {
		s.mu.Lock()
		have := s.have
		s.mu.Unlock()
		if have == s.req.Size {
			return nil
		}
		if src.ctx.Err() != nil {
			return src.ctx.Err()
		}
		_ = c.SetReadDeadline(time.Now().Add(SpreadStall))
		n, err := c.Read(buf[:min(int64(len(buf)), s.req.Size-have)])
		if n > 0 {
			if err := s.write(buf[:n]); err != nil {
				return nil // the spread failed, and said why
			}
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && src.ctx.Err() == nil:
			return fmt.Errorf("no byte for %v", SpreadStall)
		case err == io.EOF:
			return errors.New("the source ended early")
		case err != nil:
			return err
		}
	}
}

// write appends p to the file (only the current source writes), wakes
// the peers waiting for it and reports progress now and then.
func (s *spread) write(p []byte) error {
	s.mu.Lock()
	_, err := s.f.WriteAt(p, s.have)
	if err == nil {
		s.sum.Write(p)
		s.have += int64(len(p))
		s.cond.Broadcast()
	}
	have := s.have
	now := time.Now()
	progress := err == nil && have < s.req.Size && now.Sub(s.last) >= spreadEvery
	if progress {
		s.last = now
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		s.fail(err)
		return err
	case have == s.req.Size:
		s.finish()
	case progress:
		s.report(SpreadReport{Have: have})
	}
	return nil
}

// finish checks the whole file and moves it to Path.
func (s *spread) finish() {
	if got := hex.EncodeToString(s.sum.Sum(nil)); got != s.req.Sum {
		s.fail(fmt.Errorf("SHA-256 %s, want %s: the bytes received are not the file", got, s.req.Sum))
		return
	}
	err := s.f.Sync()
	if err == nil {
		err = s.f.Chmod(0o644)
	}
	if err == nil {
		err = os.Rename(s.tmp, s.req.Path)
	}
	if err != nil {
		s.fail(err)
		return
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.report(SpreadReport{Done: true, Have: s.req.Size})
}

// fail ends the spread on this host: no file at Path, no more peers served.
func (s *spread) fail(err error) {
	s.mu.Lock()
	s.failed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	os.Remove(s.tmp)
	s.report(SpreadReport{Error: "agent: spread " + s.req.Path + ": " + err.Error()})
}

func (s *spread) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ended {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serve sends the file to a peer from the offset it asks for, as the
// bytes arrive, once it has shown the token.
func (s *spread) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(SpreadStall))
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadBytes('\n')
	if err != nil {
		return
	}
	var pr PeerRequest
	if json.Unmarshal(line, &pr) != nil ||
		subtle.ConstantTimeCompare([]byte(pr.Token), []byte(s.req.Token)) != 1 ||
		pr.Offset < 0 || pr.Offset > s.req.Size {
		return
	}
	buf := make([]byte, 256<<10)
	for off := pr.Offset; off < s.req.Size; {
		s.mu.Lock()
		for s.have <= off && !s.ended && !s.failed {
			s.cond.Wait()
		}
		have, stop := s.have, s.ended || s.failed
		s.mu.Unlock()
		if stop {
			return
		}
		n, err := s.f.ReadAt(buf[:min(int64(len(buf)), have-off)], off)
		if n > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(SpreadStall))
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			off += int64(n)
		}
		if err != nil && err != io.EOF {
			return
		}
	}
}
