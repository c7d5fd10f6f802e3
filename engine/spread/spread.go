// Package spread copies one local file to many hosts so that e2c sends
// each byte about once: e2c feeds a few seed hosts, and every other host
// pulls the file from a parent's e2c agent while the parent still
// receives it (a pipelined tree; see engine/agent's spread operation).
// Each host checks the SHA-256 of what it received before the file takes
// its place. A host whose source fails or stalls is re-fed, from a host
// that has the whole file or one still receiving it (not through the
// host), else by e2c from where it stopped.
package spread

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e2c-dev/e2c/engine/agent"
	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/transport"
)

// Target is a host to receive the file.
type Target struct {
	Host string // names the host in the Result
	// Agent opens streams to the host's e2c agent: the pool's Runner of
	// the host, when it is a transport.Streamer. nil: the host has no
	// agent, and its Result error is transport.ErrNoAgent.
	Agent transport.Streamer
	// Addr is the host's address as the other hosts reach it; its agent
	// listens there while the spread lasts.
	Addr string
}

// Options tune a spread; zero values mean the defaults.
type Options struct {
	// Seeds is how many hosts e2c feeds itself, default 1: e2c's uplink
	// is the bottleneck a spread is for.
	Seeds int
	// Fanout is how many hosts pull from each host, default 2.
	Fanout int
	// Sum is the SHA-256 of the file in hex, if the caller has it (e.g.
	// transport.Blob's): Spread then does not read the file for it. The
	// hosts check what they receive against it, so a wrong Sum fails the
	// spread on every host.
	Sum string
	// Progress, if set, is called as hosts finish and at most every
	// second in between.
	Progress func(Progress)
}

// Progress is where a spread stands.
type Progress struct {
	File                string // the source's base name
	Hosts, Done, Failed int
	Had                 int   // of Done, the hosts that had the file already
	Sent                int64 // bytes e2c sent so far
}

func (p Progress) String() string {
	s := fmt.Sprintf("spread %s: %d of %d hosts done", p.File, p.Done, p.Hosts)
	if p.Had > 0 {
		s += fmt.Sprintf(" (%d had it)", p.Had)
	}
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	return s + fmt.Sprintf(", %s sent by e2c", megabytes(p.Sent))
}

func megabytes(n int64) string {
	if n < 10<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d MB", n/1e6)
}

// Result is what a spread did.
type Result struct {
	// Errors has every target's Host: nil when the file is at the
	// destination, checked; an error wrapping transport.ErrNoAgent when
	// the host has no agent, which the caller copies to the plain way
	// (NoAgent lists them); else why the host did not get it.
	Errors map[string]error
	// Had lists the hosts that had the file at the destination already:
	// they were sent nothing, and served it to the others.
	Had []string
	// Sent is how many bytes of the file e2c sent.
	Sent int64
}

// NoAgent lists the hosts to copy the file to without the agent.
func (r Result) NoAgent() []string {
	var hosts []string
	for h, err := range r.Errors {
		if errors.Is(err, transport.ErrNoAgent) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// maxLosses is how many times e2c's feed of a host may be lost with no
// byte received in between before the host is given up.
const maxLosses = 5

// maxRefused is how many hosts a host may fail to pull anything from
// before e2c feeds it: beyond, its peers are most likely unreachable from
// it, and each try may cost a connect timeout.
const maxRefused = 2

// Spread copies the local file src to dst on every target (relative to
// the login directory, or absolute; parent directories are made; the
// file has mode 0644). A host that has the file there already (see
// engine/agent's spread) is sent nothing and serves it to the others. The
// error is for the spread as a whole (src unreadable, ctx done before it
// started); each host's is in the Result.
func Spread(ctx context.Context, src, dst string, targets []Target, o Options) (Result, error) {
	if o.Seeds < 1 {
		o.Seeds = 1
	}
	if o.Fanout < 1 {
		o.Fanout = 2
	}
	f, err := os.Open(src)
	if err != nil {
		return Result{}, fmt.Errorf("spread: %w", err)
	}
	defer f.Close()
	size, sum, err := sizeSum(f, o.Sum)
	if err != nil {
		return Result{}, fmt.Errorf("spread: %s: %w", src, err)
	}
	token := make([]byte, 32)
	rand.Read(token)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &run{
		ctx: ctx, cancel: cancel, f: f, size: size, o: o, targets: targets,
		req: agent.Request{Op: agent.OpSpread, Path: dst, Size: size,
			Sum: sum, Token: hex.EncodeToString(token)},
		hosts:  make([]*host, len(targets)),
		events: make(chan event),
		name:   filepath.Base(src),
	}
	return s.spread()
}

// sizeSum is the size of f and its SHA-256 in hex: sum if given, else
// read from f.
func sizeSum(f *os.File, sum string) (int64, string, error) {
	if sum != "" {
		fi, err := f.Stat()
		if err != nil {
			return 0, "", err
		}
		return fi.Size(), sum, nil
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	return size, hex.EncodeToString(h.Sum(nil)), err
}

// run is one spread in progress.
type run struct {
	ctx     context.Context
	cancel  context.CancelFunc
	f       *os.File
	size    int64
	o       Options
	targets []Target
	req     agent.Request
	name    string
	sent    atomic.Int64
	hosts   []*host
	events  chan event
	readers sync.WaitGroup
	feeds   sync.WaitGroup
	shown   time.Time
}

// host is a target's spread.
type host struct {
	st      io.ReadWriteCloser // nil: not started
	dec     *json.Decoder      // of st's reports
	port    int
	have    int64
	from    int   // the host it pulls from; -1: fed by e2c
	since   int64 // what it had when given its source
	losses  int   // sources lost in a row with nothing received
	refused map[int]bool
	done    bool
	had     bool  // done from the start
	err     error // the host's end: nil while it runs or once done
}

func (h *host) over() bool { return h.done || h.err != nil }

// event is a report of host i, or the end of its stream (err).
type event struct {
	i   int
	r   agent.SpreadReport
	err error
}

func (s *run) spread() (Result, error) {
	errs := fanout.Each(s.ctx, len(s.targets), 0, func(ctx context.Context, i int) error {
		h := &host{from: -1, refused: map[int]bool{}}
		h.err = s.start(ctx, s.targets[i], h)
		s.hosts[i] = h
		return h.err
	})
	defer func() {
		s.cancel() // the readers and feeds stop
		for _, h := range s.hosts {
			if h.st != nil {
				h.st.Close() // the agents close their ports and drop what is incomplete
			}
		}
		s.readers.Wait()
		s.feeds.Wait()
	}()
	var live []int
	for i, h := range s.hosts {
		if h == nil { // not started: ctx done
			s.hosts[i] = &host{err: errs[i]}
			continue
		}
		if h.err == nil {
			live = append(live, i)
			s.readers.Add(1)
			go s.read(i)
		}
	}
	// The tree: the hosts that have the file first, then the others; the
	// first Seeds hosts, or all those that have it, are its roots, fed by
	// e2c unless they have it; host k of the others pulls from host
	// (k-roots)/Fanout of the list, before it in the list.
	var order []int
	for _, i := range live {
		if s.hosts[i].had {
			order = append(order, i)
		}
	}
	roots := max(s.o.Seeds, len(order))
	for _, i := range live {
		if !s.hosts[i].had {
			order = append(order, i)
		}
	}
	for k, i := range order {
		switch {
		case s.hosts[i].had:
		case k < roots:
			s.feed(i)
		default:
			s.pull(i, order[(k-roots)/s.o.Fanout])
		}
	}
	s.progress(true)
	for s.running() {
		select {
		case e := <-s.events:
			s.handle(e)
		case <-s.ctx.Done():
			for _, h := range s.hosts {
				if !h.over() {
					h.err = fmt.Errorf("spread: %w", context.Cause(s.ctx))
				}
			}
		}
	}
	res := Result{Errors: map[string]error{}, Sent: s.sent.Load()}
	for i, h := range s.hosts {
		res.Errors[s.targets[i].Host] = h.err
		if h.had {
			res.Had = append(res.Had, s.targets[i].Host)
		}
	}
	return res, nil
}

// start opens the spread stream of t for h and reads the port its agent
// listens on.
func (s *run) start(ctx context.Context, t Target, h *host) error {
	if t.Agent == nil {
		return fmt.Errorf("spread: %w", transport.ErrNoAgent)
	}
	if t.Addr == "" {
		return errors.New("spread: no address for the host")
	}
	req := s.req
	req.Addr = t.Addr
	st, err := t.Agent.Stream(ctx, req)
	if err != nil {
		return fmt.Errorf("spread: %w", err)
	}
	var r agent.SpreadReport
	dec := json.NewDecoder(st)
	stop := context.AfterFunc(ctx, func() { st.Close() })
	err = dec.Decode(&r)
	stop()
	switch {
	case err != nil:
		err = fmt.Errorf("spread: the agent did not answer: %w", err)
	case r.Error != "":
		err = errors.New(r.Error)
	case r.Port == 0:
		err = errors.New("spread: the agent gave no port")
	}
	if err != nil {
		st.Close()
		return err
	}
	h.st, h.dec, h.port = st, dec, r.Port
	if r.Done { // the host has the file already
		h.done, h.had, h.have = true, true, s.size
	}
	return nil
}

// read passes host i's reports on as events until its stream ends.
func (s *run) read(i int) {
	defer s.readers.Done()
	dec := s.hosts[i].dec
	for {
		var e event
		e.i = i
		if err := dec.Decode(&e.r); err != nil {
			e.err = err
		}
		select {
		case s.events <- e:
		case <-s.ctx.Done():
			return
		}
		if e.err != nil {
			return
		}
	}
}

func (s *run) running() bool {
	for _, h := range s.hosts {
		if !h.over() {
			return true
		}
	}
	return false
}

func (s *run) handle(e event) {
	h := s.hosts[e.i]
	if h.over() {
		return
	}
	switch r := e.r; {
	case e.err != nil:
		h.err = fmt.Errorf("spread: the agent's stream ended: %w", e.err)
	case r.Error != "":
		h.err = errors.New(r.Error)
	case r.Done:
		h.done, h.have = true, s.size
	case r.Lost != "":
		h.have = r.Have
		switch {
		case h.have > h.since:
			h.losses = 0
		case h.from >= 0:
			h.refused[h.from] = true // e.g. not reachable from this host
		default: // e2c's own feed gave nothing
			if h.losses++; h.losses >= maxLosses {
				h.err = fmt.Errorf("spread: e2c's feed lost %d times with nothing received, the last: %s", h.losses, r.Lost)
				return
			}
		}
		s.refeed(e.i)
	default:
		h.have = r.Have
	}
	s.progress(h.over())
}

// refeed gives host i a new source: a host that has the whole file, else
// one that is still receiving it but not through i (no cycle), which
// serves it as it comes; among them the one with the fewest pullers,
// then the most bytes. Else, or once i could not pull from maxRefused
// hosts, e2c feeds i.
func (s *run) refeed(i int) {
	best := -1
	var bestLoad int
	for j, h := range s.hosts {
		if len(s.hosts[i].refused) >= maxRefused {
			break
		}
		if j == i || h.err != nil || h.st == nil || s.hosts[i].refused[j] || !h.done && s.through(j, i) {
			continue
		}
		load := s.pullers(j)
		if best < 0 {
			best, bestLoad = j, load
			continue
		}
		if b := s.hosts[best]; h.done && !b.done || h.done == b.done && (load < bestLoad || load == bestLoad && h.have > b.have) {
			best, bestLoad = j, load
		}
	}
	if best < 0 {
		s.feed(i)
		return
	}
	s.pull(i, best)
}

// through says whether host j gets the file through host i.
func (s *run) through(j, i int) bool {
	for k := 0; j >= 0 && k <= len(s.hosts); k++ {
		if j == i {
			return true
		}
		j = s.hosts[j].from
	}
	return false
}

// pullers counts the hosts still pulling from host j.
func (s *run) pullers(j int) int {
	n := 0
	for _, h := range s.hosts {
		if h.from == j && !h.over() {
			n++
		}
	}
	return n
}

// pull tells host i to pull from host j.
func (s *run) pull(i, j int) {
	h := s.hosts[i]
	h.from, h.since = j, h.have
	b, _ := json.Marshal(agent.SpreadOrder{From: net.JoinHostPort(s.targets[j].Addr, strconv.Itoa(s.hosts[j].port))})
	if _, err := h.st.Write(append(b, '\n')); err != nil {
		h.err = fmt.Errorf("spread: %w", err)
	}
}

// feed sends host i the file from where it stands, on a stream of its
// own; a failure shows as a lost source on the host's spread stream.
func (s *run) feed(i int) {
	h := s.hosts[i]
	h.from, h.since = -1, h.have
	s.feeds.Add(1)
	go func() {
		defer s.feeds.Done()
		st, err := s.targets[i].Agent.Stream(s.ctx, agent.Request{Op: agent.OpFeed, Token: s.req.Token})
		if err != nil {
			return
		}
		defer st.Close()
		stop := context.AfterFunc(s.ctx, func() { st.Close() })
		defer stop()
		var r agent.SpreadReport
		if json.NewDecoder(&oneLine{r: st}).Decode(&r) != nil || r.Error != "" || r.Have < 0 || r.Have > s.size {
			return
		}
		_, _ = io.Copy(counter{st, &s.sent}, io.NewSectionReader(s.f, r.Have, s.size-r.Have))
	}()
}

// oneLine reads up to the first newline only, so that a json.Decoder on
// it does not buffer past the line.
type oneLine struct {
	r   io.Reader
	end bool
}

func (o *oneLine) Read(p []byte) (int, error) {
	if o.end {
		return 0, io.EOF
	}
	n, err := o.r.Read(p[:1])
	if n == 1 && p[0] == '\n' {
		o.end = true
	}
	return n, err
}

// counter counts the bytes written to w.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// progress calls Progress, at most every second unless now.
func (s *run) progress(now bool) {
	if s.o.Progress == nil || !now && time.Since(s.shown) < time.Second {
		return
	}
	s.shown = time.Now()
	p := Progress{File: s.name, Hosts: len(s.hosts), Sent: s.sent.Load()}
	for _, h := range s.hosts {
		switch {
		case h.done:
			p.Done++
			if h.had {
				p.Had++
			}
		case h.err != nil:
			p.Failed++
		}
	}
	s.o.Progress(p)
}
