// Package services starts the containers of a plan on its hosts' Docker
// Engines, fetches their logs and removes them: the container half of the
// services step.
package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/results"
)

// FingerprintLabel holds plan.Container.Fingerprint on every container
// started, so that a kept container is told from one whose definition
// changed.
const FingerprintLabel = "dev.e2c.fingerprint"

// Reach gives how to reach a host's Docker Engine: its SSH connection and
// its socket ("" for the default).
type Reach func(host string) (containers.Dialer, string, error)

// Record is one container of a run, as run.json keeps it.
type Record struct {
	Host    string     `json:"host"`
	Name    string     `json:"name"`
	Key     string     `json:"key"`
	ID      string     `json:"id,omitempty"`
	Image   string     `json:"image"`
	ImageID string     `json:"image_id,omitempty"`
	Kept    bool       `json:"kept,omitempty"` // running from an earlier run, with the same definition
	Start   time.Time  `json:"start"`
	Ready   *time.Time `json:"ready,omitempty"`
	State   string     `json:"state"` // the daemon's: running, exited, ...; "" when never created
	Error   string     `json:"error,omitempty"`
}

// Options are what Start needs besides the plan.
type Options struct {
	Experiment string // the value of containers.Label
	Forks      int    // hosts worked on at once; default 256
	Out        io.Writer
}

// Start starts every container of p: hosts in parallel, a host's
// containers in key order, each ready before the next starts. A container
// already running with the same fingerprint is kept; one of the experiment
// with another is replaced. It returns a record of every container, the
// failed ones too, and every host's error.
func Start(ctx context.Context, p *plan.Plan, reach Reach, o Options) ([]Record, error) {
	if o.Forks <= 0 {
		o.Forks = 256
	}
	// By name: a machine given to two instances is two hosts of the plan.
	var names []string
	byHost := map[string][]*plan.Container{}
	for _, h := range p.Hosts {
		if len(h.Containers) == 0 {
			continue
		}
		if _, ok := byHost[h.Name]; !ok {
			names = append(names, h.Name)
		}
		byHost[h.Name] = append(byHost[h.Name], h.Containers...)
	}
	s := &starter{o: o, archives: map[string]*archive{}}
	recs := make([][]Record, len(names))
	for i, name := range names {
		for _, c := range byHost[name] {
			recs[i] = append(recs[i], Record{Host: name, Name: c.Name, Key: c.Key, Image: c.Image})
		}
	}
	all := func() []Record { return slices.Concat(recs...) }
	// Every host's daemon is reached, and its architecture checked against
	// its images', before anything starts; every problem of every host is
	// reported at once.
	hosts := make([]*containers.Host, len(names))
	errs := make([]error, len(names))
	forEach(names, o.Forks, func(i int, name string) {
		dial, socket, err := reach(name)
		var d *containers.Daemon
		if err == nil {
			hosts[i], d, err = containers.Connect(ctx, name, dial, socket)
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", name, err)
			return
		}
		errs[i] = s.preflight(ctx, name, hosts[i], d, byHost[name])
	})
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return all(), fmt.Errorf("nothing started: %w", err)
	}
	forEach(names, o.Forks, func(i int, name string) {
		if err := s.host(ctx, hosts[i], byHost[name], recs[i]); err != nil {
			errs[i] = fmt.Errorf("%s: %w", name, err)
		}
	})
	return all(), errors.Join(errs...)
}

// forEach runs f for each name, at most limit at once.
func forEach(names []string, limit int, f func(int, string)) {
	var g errgroup.Group
	g.SetLimit(limit)
	for i, name := range names {
		g.Go(func() error { f(i, name); return nil })
	}
	g.Wait()
}

type starter struct {
	o        Options
	mu       sync.Mutex
	archives map[string]*archive // by path
	outMu    sync.Mutex
}

// archive is what a docker save file holds, read once, and how far it is
// sent.
type archive struct {
	once sync.Once
	img  containers.ArchiveImage
	err  error

	mu         sync.Mutex
	need, done int   // hosts lacking it, and those that have it now
	sent       int64 // bytes, to every host
	said       time.Time
}

// lacked counts one more host the image is to be sent to.
func (a *archive) lacked() {
	a.mu.Lock()
	a.need++
	a.mu.Unlock()
}

// progressEvery is how often an image being sent is said, besides each
// host done.
const progressEvery = 2 * time.Second

// sending adds n bytes sent and, at most every progressEvery or when a
// host is done, gives the line to say.
func (a *archive) sending(n int64, hostDone bool) (line string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent += n
	if hostDone {
		a.done++
	} else if time.Since(a.said) < progressEvery {
		return "", false
	}
	a.said = time.Now()
	return fmt.Sprintf("%d bytes sent, %d of %d hosts done", a.sent, a.done, a.need), true
}

func (s *starter) say(format string, a ...any) {
	if s.o.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.o.Out, format+"\n", a...)
}

func (s *starter) archive(path string) *archive {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.archives[path]
	if !ok {
		a = &archive{}
		s.archives[path] = a
	}
	return a
}

func (s *starter) readArchive(path string) (containers.ArchiveImage, error) {
	a := s.archive(path)
	a.once.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			a.err = err
			return
		}
		defer f.Close()
		imgs, err := containers.ReadArchive(f)
		switch {
		case err != nil:
			a.err = fmt.Errorf("%s: %w", path, err)
		case len(imgs) != 1:
			a.err = fmt.Errorf("%s: holds %d images, expected one", path, len(imgs))
		default:
			a.img = imgs[0]
		}
	})
	return a.img, a.err
}

// preflight checks that the daemon d of host can run the images of its
// archives, and says every one it cannot; it counts the host among those
// an image is sent to when the host lacks it.
func (s *starter) preflight(ctx context.Context, host string, h *containers.Host, d *containers.Daemon, cs []*plan.Container) error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range cs {
		if c.Archive == "" || seen[c.Archive] {
			continue
		}
		seen[c.Archive] = true
		img, err := s.readArchive(c.Archive)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: container %s: %w", host, c.Name, err))
		case img.Arch != "" && containers.Arch(img.Arch) != containers.Arch(d.Arch):
			errs = append(errs, fmt.Errorf("host %s is %s, image %s (container %s) is %s only",
				host, containers.Arch(d.Arch), imageName(c, img), c.Name, img.Platform()))
		default:
			held, err := h.Holds(ctx, img)
			if err != nil {
				errs = append(errs, err)
			} else if !held {
				s.archive(c.Archive).lacked()
			}
		}
	}
	return errors.Join(errs...)
}

// imageName names c's image in messages: its first tag, or its archive.
func imageName(c *plan.Container, img containers.ArchiveImage) string {
	if len(img.Tags) > 0 {
		return img.Tags[0]
	}
	return filepath.Base(c.Archive)
}

// host starts the containers of one host in order, into recs, stopping at
// the first that fails: the next may need it.
func (s *starter) host(ctx context.Context, h *containers.Host, cs []*plan.Container, recs []Record) error {
	existing, err := h.List(ctx, s.o.Experiment)
	if err != nil {
		return err
	}
	for i, c := range cs {
		r := &recs[i]
		err := s.container(ctx, h, r.Host, c, existing, r)
		if err != nil {
			r.Error = err.Error()
		}
		if r.ID != "" {
			if now, lerr := h.List(context.WithoutCancel(ctx), s.o.Experiment); lerr == nil {
				for _, e := range now {
					if e.ID == r.ID {
						r.State, r.ImageID = e.State, e.ImageID
					}
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// container makes c run and be ready on h.
func (s *starter) container(ctx context.Context, h *containers.Host, host string, c *plan.Container, existing []containers.Container, r *Record) error {
	r.Start = time.Now()
	fp := c.Fingerprint()
	for _, e := range existing {
		if e.Name != c.Name {
			continue
		}
		if e.Labels[FingerprintLabel] == fp && e.State == "running" {
			r.ID, r.Kept = e.ID, true
			s.say("services: %s: container %s kept from an earlier run", host, c.Name)
			return s.ready(ctx, h, c, r)
		}
		s.say("services: %s: replacing container %s (%s)", host, c.Name, why(e, fp))
		if err := h.Remove(ctx, e.ID, 10*time.Second); err != nil {
			return err
		}
	}
	ref := c.Image
	if c.Archive != "" {
		img, err := s.readArchive(c.Archive)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		if ref == "" {
			ref = img.ID
		}
		open := func() (io.ReadCloser, error) { return os.Open(c.Archive) }
		a, name := s.archive(c.Archive), imageName(c, img)
		var last atomic.Int64 // what progress was last given, on the HTTP client's goroutine
		progress := func(sent int64) {
			if line, ok := a.sending(sent-last.Swap(sent), false); ok {
				s.say("services: image %s: %s", name, line)
			}
		}
		sent, err := h.EnsureImage(ctx, img, open, progress)
		if err != nil {
			return err
		}
		if sent > 0 {
			line, _ := a.sending(sent-last.Swap(sent), true)
			s.say("services: image %s: %s", name, line)
		}
	} else {
		img, err := h.Image(ctx, c.Image)
		if err != nil {
			return err
		}
		if img == nil {
			return fmt.Errorf("container %s: the host has no image %s, and e2c does not pull from registries yet: give the definition an archive (docker save) in ARTIFACTS_DIR", c.Name, c.Image)
		}
	}
	r.Image = ref
	spec := containers.Spec{Name: c.Name, Image: ref, Entrypoint: c.Command, Cmd: c.Args, Env: c.Env,
		Binds: c.Volumes, Network: c.NetworkMode, Experiment: s.o.Experiment,
		Labels: map[string]string{FingerprintLabel: fp}}
	if spec.Network == "host" {
		spec.Network = ""
	}
	id, err := h.Start(ctx, spec)
	if err != nil {
		return err
	}
	r.ID = id
	if err := s.ready(ctx, h, c, r); err != nil {
		if ctx.Err() != nil {
			// Interrupted: what was starting goes.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if rerr := h.Remove(rctx, id, time.Second); rerr == nil {
				r.ID = ""
			}
		}
		return err
	}
	s.say("services: %s: container %s ready", host, c.Name)
	return nil
}

// ready waits for c's readiness check; without one, running is ready.
func (s *starter) ready(ctx context.Context, h *containers.Host, c *plan.Container, r *Record) error {
	rd := c.Readiness
	if rd.Port != 0 || len(rd.Command) > 0 {
		if err := h.WaitReady(ctx, r.ID, containers.Ready{Port: rd.Port, Exec: rd.Command, Timeout: rd.Wait()}); err != nil {
			return err
		}
	}
	now := time.Now()
	r.Ready = &now
	return nil
}

// why a kept container is replaced.
func why(e containers.Container, fp string) string {
	if e.Labels[FingerprintLabel] != fp {
		return "its definition changed"
	}
	return "it is " + e.State
}

// Logs writes the log of every container recorded that was created to
// dir/services/<host>/<name>.log, going on past a host that fails.
func Logs(ctx context.Context, recs []Record, reach Reach, dir string) error {
	byHost := map[string][]Record{}
	var names []string
	for _, r := range recs {
		if r.ID == "" {
			continue
		}
		if _, ok := byHost[r.Host]; !ok {
			names = append(names, r.Host)
		}
		byHost[r.Host] = append(byHost[r.Host], r)
	}
	errs := make([]error, len(names))
	forEach(names, 256, func(i int, name string) { errs[i] = hostLogs(ctx, name, byHost[name], reach, dir) })
	return errors.Join(errs...)
}

func hostLogs(ctx context.Context, name string, recs []Record, reach Reach, dir string) error {
	dial, socket, err := reach(name)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	h, _, err := containers.Connect(ctx, name, dial, socket)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, r := range recs {
		rel := filepath.Join("services", name, r.Name+".log")
		errs = append(errs, results.WriteFile(dir, rel, func(w io.Writer) error { return h.Logs(ctx, r.ID, w) }))
	}
	return errors.Join(errs...)
}

// Remove removes, on each host, every container labelled with experiment,
// and only those. It returns how many it removed.
func Remove(ctx context.Context, hosts []string, reach Reach, experiment string) (int, error) {
	var errs []error
	n := 0
	for _, name := range hosts {
		dial, socket, err := reach(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		h, _, err := containers.Connect(ctx, name, dial, socket)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs, err := h.List(ctx, experiment)
		errs = append(errs, err)
		for _, c := range cs {
			if err := h.Remove(ctx, c.ID, 10*time.Second); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
		h.Close()
	}
	return n, errors.Join(errs...)
}
