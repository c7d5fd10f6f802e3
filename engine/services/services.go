// Package services starts the containers of a plan on its hosts' Docker
// Engines, fetches their logs and removes them: the container half of the
// services step.
package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/fanout"
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
type Record = results.Container

// Options are what Start needs besides the plan.
type Options struct {
	Experiment string // the value of containers.Label
	Forks      int    // hosts worked on at once; default 256
	Out        io.Writer
	// Relay, when set, spreads an image that relayMin hosts or more lack
	// from host to host instead of sending it to each; nil: each is sent
	// it from here.
	Relay Relay
}

// Relay spreads files from host to host (engine/spread, through the e2c
// agent) and loads an image archive so spread into a host's daemon.
type Relay interface {
	// Spread puts the local file on as many of hosts as it can and gives
	// each of those the file's path there.
	Spread(ctx context.Context, file string, hosts []string) map[string]string
	// Load loads the image archive at path on host into the host's daemon,
	// which listens at socket there.
	Load(ctx context.Context, host, path, socket string) error
}

// relayMin is from how many hosts lacking an image it is relayed.
const relayMin = 4

// Start starts every container of p: stage by stage (plan.Container.Stage),
// a stage on every host in parallel, a host's containers in key order, each
// ready before the next starts. A container already running with the same
// fingerprint and image is kept; one of the experiment with another is
// replaced. It returns a record of every container, the
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
	s := &starter{o: o, images: map[string]*image{}}
	defer s.close()
	recs := make([][]Record, len(names))
	for i, name := range names {
		for _, c := range byHost[name] {
			recs[i] = append(recs[i], Record{Host: name, Name: c.Name, Key: c.Key, Image: c.Image})
		}
	}
	all := func() []Record { return slices.Concat(recs...) }
	// Before anything is sent or started, every host's daemon is reached
	// and what it lacks found, the images by name it lacks got here, and
	// each host checked to run and hold what it is to receive; every
	// problem of every host is reported at once.
	hosts := make([]*containers.Host, len(names))
	daemons := make([]*containers.Daemon, len(names))
	lacks := make([][]*image, len(names))
	sockets := make([]string, len(names))
	errs := fanout.Each(ctx, len(names), o.Forks, func(ctx context.Context, i int) error {
		name := names[i]
		dial, socket, err := reach(name)
		sockets[i] = socket
		if err == nil {
			hosts[i], daemons[i], err = containers.Connect(ctx, name, dial, socket)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		lacks[i], err = s.survey(ctx, name, hosts[i], daemons[i], byHost[name])
		return err
	})
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	problems := []error{noDaemon(names, errs)}
	problems = append(problems, s.fetch(ctx)...)
	fits := fanout.Each(ctx, len(names), o.Forks, func(ctx context.Context, i int) error {
		if len(lacks[i]) == 0 {
			return nil
		}
		return s.fits(ctx, names[i], hosts[i], daemons[i], byHost[names[i]], lacks[i])
	})
	for i := range names {
		if !errors.Is(errs[i], containers.ErrNoDaemon) {
			problems = append(problems, errs[i])
		}
		problems = append(problems, fits[i])
	}
	if err := errors.Join(problems...); err != nil {
		return all(), fmt.Errorf("nothing started: %w", err)
	}
	if o.Relay != nil {
		s.relay(ctx)
	}
	// The images every host lacks, all at once: a later stage's image is
	// not waited for. Then the stages in order, each on every host at
	// once; a failure stops the stages after its own.
	errs = fanout.Each(ctx, len(names), o.Forks, func(ctx context.Context, i int) error {
		for _, im := range lacks[i] {
			if err := s.ensure(ctx, hosts[i], names[i], sockets[i], im); err != nil {
				return fmt.Errorf("%s: image %s: %w", names[i], im.name(), err)
			}
		}
		return nil
	})
	for _, stage := range stages(byHost) {
		if errors.Join(errs...) != nil {
			break
		}
		errs = fanout.Each(ctx, len(names), o.Forks, func(ctx context.Context, i int) error {
			if err := s.host(ctx, hosts[i], byHost[names[i]], recs[i], stage); err != nil {
				return fmt.Errorf("%s: %w", names[i], err)
			}
			return nil
		})
	}
	err := errors.Join(errs...)
	for i := range recs {
		for j := range recs[i] {
			if r := &recs[i][j]; err != nil && r.Start.IsZero() {
				r.Error = "not started: the services step failed on another host"
				if errs[i] != nil {
					r.Error = "not started: " + errs[i].Error()
				}
			}
		}
	}
	return all(), err
}

// stages lists the stages of the containers of byHost, in order.
func stages(byHost map[string][]*plan.Container) []int {
	var out []int
	for _, cs := range byHost {
		for _, c := range cs {
			out = append(out, c.Stage)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// noDaemon says which hosts, of names with errors errs, have no Docker
// Engine answering, and how to give them one.
func noDaemon(names []string, errs []error) error {
	var down []string
	var why []error
	for i, err := range errs {
		if errors.Is(err, containers.ErrNoDaemon) {
			down = append(down, names[i])
			why = append(why, err)
		}
	}
	if len(down) == 0 {
		return nil
	}
	return fmt.Errorf("no Docker Engine answers on %s: install and start Docker Engine there, or set `docker: install` in their testbed's block to have e2c install it:\n%w",
		strings.Join(down, ", "), errors.Join(why...))
}

type starter struct {
	o      Options
	mu     sync.Mutex
	images map[string]*image // by archive or name, see image
	outMu  sync.Mutex

	// This machine's Docker Engine, reached once when a host lacks an
	// image given by name; localErr says why there is none.
	local    *containers.Host
	localErr error
	temp     []string // the images by name saved from local, removed when Start ends
}

// image is one image of the plan's containers, got once for every host
// that lacks it: from a docker save archive in the artifacts, or by name
// from this machine's Docker Engine.
type image struct {
	archive string // the docker save file; for an image by name, the temporary file it is saved to
	ref     string // name:tag, for an image by name
	info    containers.ArchiveImage
	size    int64 // bytes it takes once loaded; 0 when unknown
	pull    bool  // this machine has no Docker Engine: the hosts pull it themselves
	err     error // why it cannot be had

	read, save sync.Once // the archive's contents; an image by name saved to archive

	mu      sync.Mutex
	lacking []string          // hosts that lack it
	relayed map[string]string // hosts it was spread to, by Relay: where it is there
	done    int               // of those, the ones that have it now
	sent    int64             // bytes, to every host
	said    time.Time
}

// loadNeeds is the space an image of size bytes (unpacked) takes on a host
// while it is loaded: docker load unpacks the whole archive into a
// temporary folder of the daemon's root dir before it extracts each layer
// there, so at the peak the root dir holds the archive and the layers; the
// archive is the layers plus tar's headers and padding, up to an eighth
// more (9% for the mosquitto test image). A pull, which keeps compressed
// layers until they are extracted, needs less.
func loadNeeds(size int64) int64 { return 2*size + size/8 }

// lacked counts host among those the image is to be sent to.
func (im *image) lacked(host string) {
	im.mu.Lock()
	im.lacking = append(im.lacking, host)
	im.mu.Unlock()
}

// progressEvery is how often an image being sent is said, besides each
// host done.
const progressEvery = 2 * time.Second

// sending adds n bytes sent and, at most every progressEvery or when a
// host is done, gives the line to say.
func (im *image) sending(n int64, hostDone bool) (line string, ok bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.sent += n
	if hostDone {
		im.done++
	} else if time.Since(im.said) < progressEvery {
		return "", false
	}
	im.said = time.Now()
	return fmt.Sprintf("%d bytes sent, %d of %d hosts done", im.sent, im.done, len(im.lacking)), true
}

// name is the image in messages: its name, its first tag, or its archive.
func (im *image) name() string {
	switch {
	case im.ref != "":
		return im.ref
	case len(im.info.Tags) > 0:
		return im.info.Tags[0]
	}
	return filepath.Base(im.archive)
}

func (s *starter) say(format string, a ...any) {
	if s.o.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.o.Out, format+"\n", a...)
}

// image is c's image, the same for every container that names it.
func (s *starter) image(c *plan.Container) *image {
	key := "image " + c.Image
	if c.Archive != "" {
		key = "archive " + c.Archive
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.images[key]
	if !ok {
		im = &image{archive: c.Archive}
		if c.Archive == "" {
			im.ref = c.Image
		}
		s.images[key] = im
	}
	return im
}

// readArchive reads, once, which image an archive holds; its size stands
// for the image's once loaded, since docker save does not compress.
func (im *image) readArchive() error {
	im.read.Do(func() {
		f, err := os.Open(im.archive)
		if err != nil {
			im.err = err
			return
		}
		defer f.Close()
		imgs, err := containers.ReadArchive(f)
		switch {
		case err != nil:
			im.err = fmt.Errorf("%s: %w", im.archive, err)
		case len(imgs) != 1:
			im.err = fmt.Errorf("%s: holds %d images, expected one", im.archive, len(imgs))
		default:
			im.info = imgs[0]
			if st, err := f.Stat(); err == nil {
				im.size = st.Size()
			}
		}
	})
	return im.err
}

// survey checks that the daemon d of host can run the images of its
// containers that it has or that come from archives, and says every one
// it cannot; it returns the images the host lacks.
func (s *starter) survey(ctx context.Context, host string, h *containers.Host, d *containers.Daemon, cs []*plan.Container) ([]*image, error) {
	var errs []error
	var lacks []*image
	seen := map[*image]bool{}
	for _, c := range cs {
		im := s.image(c)
		if seen[im] {
			continue
		}
		seen[im] = true
		if im.ref != "" {
			got, err := h.Image(ctx, im.ref)
			switch {
			case err != nil:
				errs = append(errs, err)
			case got == nil:
				im.lacked(host)
				lacks = append(lacks, im)
			default:
				errs = append(errs, archProblem(host, d, im, c, got.Arch, got.Variant))
			}
			continue
		}
		if err := im.readArchive(); err != nil {
			errs = append(errs, fmt.Errorf("%s: container %s: %w", host, c.Name, err))
			continue
		}
		if err := archProblem(host, d, im, c, im.info.Arch, im.info.Variant); err != nil {
			errs = append(errs, err)
			continue
		}
		held, err := h.Holds(ctx, im.info)
		if err != nil {
			errs = append(errs, err)
		} else if !held {
			im.lacked(host)
			lacks = append(lacks, im)
		}
	}
	return lacks, errors.Join(errs...)
}

// archProblem says when host's daemon d cannot run image im of container
// c, built for architecture a and variant ("" if unsaid).
func archProblem(host string, d *containers.Daemon, im *image, c *plan.Container, a, variant string) error {
	if a == "" || arch.Of(a) == arch.Of(d.Arch) {
		return nil
	}
	platform := containers.ArchiveImage{Arch: a, Variant: variant}.Platform()
	return fmt.Errorf("host %s is %s, image %s (container %s) is %s only", host, arch.Of(d.Arch), im.name(), c.Name, platform)
}

// fetch gets, once, each image by name that a host lacks, on this
// machine's Docker Engine, pulling it there when it is absent. Without an
// engine here, the hosts that lack it will pull it themselves.
func (s *starter) fetch(ctx context.Context) []error {
	var byName []*image
	for _, key := range slices.Sorted(maps.Keys(s.images)) {
		if im := s.images[key]; im.ref != "" && len(im.lacking) > 0 {
			byName = append(byName, im)
		}
	}
	if len(byName) == 0 {
		return nil
	}
	s.local, _, s.localErr = containers.Local(ctx)
	var errs []error
	for _, im := range byName {
		slices.Sort(im.lacking)
		hosts := strings.Join(im.lacking, ", ")
		if s.localErr != nil {
			im.pull = true
			s.say("services: image %s: no Docker Engine on this machine (%v): the hosts lacking it pull it from its registry themselves: %s", im.ref, s.localErr, hosts)
			continue
		}
		got, err := s.local.Image(ctx, im.ref)
		if err == nil && got == nil {
			s.say("services: image %s: pulling it on this machine", im.ref)
			if err = s.local.Pull(ctx, im.ref); err == nil {
				got, err = s.local.Image(ctx, im.ref)
			}
			if err == nil && got == nil {
				err = errors.New("absent after its pull")
			}
		}
		if err != nil {
			im.err = fmt.Errorf("image %s, needed by %s: %w", im.ref, hosts, err)
			errs = append(errs, im.err)
			continue
		}
		im.info = containers.ArchiveImage{ID: got.ID, Tags: []string{im.ref}, Arch: got.Arch, Variant: got.Variant}
		im.size = got.Size
	}
	return errs
}

// fits checks that host can receive the images it lacks: their
// architecture, and the space free where its daemon keeps images.
func (s *starter) fits(ctx context.Context, host string, h *containers.Host, d *containers.Daemon, cs []*plan.Container, lacks []*image) error {
	var errs []error
	var need int64
	var names []string
	for _, im := range lacks {
		if im.err != nil || im.pull {
			continue // said by fetch; an image pulled by the host has no size before
		}
		if im.ref != "" { // an archive's architecture was checked by survey
			c := cs[slices.IndexFunc(cs, func(c *plan.Container) bool { return c.Archive == "" && c.Image == im.ref })]
			if err := archProblem(host, d, im, c, im.info.Arch, im.info.Variant); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		need += loadNeeds(im.size)
		names = append(names, im.name())
	}
	if need == 0 {
		return errors.Join(errs...)
	}
	dir, free, err := h.Free(ctx)
	switch {
	case err != nil:
		errs = append(errs, err)
	case free < need:
		errs = append(errs, fmt.Errorf("host %s has %s free in %s, needs %s to receive %s (loading unpacks an image beside its archive)",
			host, mib(free), dir, mib(need), strings.Join(names, ", ")))
	}
	return errors.Join(errs...)
}

// mib writes n bytes in MiB, as people read disk space.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// host starts the containers of one host of the given stage in order, into
// recs, stopping at the first that fails: the next may need it.
func (s *starter) host(ctx context.Context, h *containers.Host, cs []*plan.Container, recs []Record, stage int) error {
	existing, err := h.List(ctx, s.o.Experiment)
	if err != nil {
		return err
	}
	for i, c := range cs {
		if c.Stage != stage {
			continue
		}
		r := &recs[i]
		err := s.container(ctx, h, r.Host, c, existing, r)
		if err != nil {
			r.Error = err.Error()
		}
		if r.ID != "" {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			now, lerr := h.List(lctx, s.o.Experiment)
			cancel()
			if lerr == nil {
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

// container makes c run and be ready on h: the container of the
// experiment named c.Name is kept when it runs with c's fingerprint and
// the image the host now holds for c (a rebuilt archive or a moved tag
// replaces it), and replaced otherwise.
func (s *starter) container(ctx context.Context, h *containers.Host, host string, c *plan.Container, existing []containers.Container, r *Record) error {
	r.Start = time.Now()
	fp := c.Fingerprint()
	// Start sent every image a host lacked before the first stage.
	im := s.image(c)
	ref := c.Image
	if ref == "" {
		ref = im.info.ID
	}
	r.Image = ref
	held, err := h.Image(ctx, ref)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.Name, err)
	}
	if held == nil {
		return fmt.Errorf("container %s: image %s is not on the host after it was sent", c.Name, ref)
	}
	for _, e := range existing {
		if e.Name != c.Name {
			continue
		}
		if e.Labels[FingerprintLabel] == fp && e.ImageID == held.ID && e.State == "running" {
			r.ID, r.Kept = e.ID, true
			s.say("services: %s: container %s kept from an earlier run", host, c.Name)
			return s.ready(ctx, h, c, r)
		}
		s.say("services: %s: replacing container %s (%s)", host, c.Name, why(e, fp, held.ID))
		if err := h.Remove(ctx, e.ID, 10*time.Second); err != nil {
			return err
		}
	}
	spec := containers.Spec{Name: c.Name, Image: ref, Entrypoint: c.Command, Cmd: c.Args, Env: c.Env,
		Binds: c.Volumes, Network: c.NetworkMode, Experiment: s.o.Experiment,
		Labels: map[string]string{FingerprintLabel: fp}}
	if spec.Network == "host" {
		spec.Network = ""
	}
	for _, p := range c.Ports {
		spec.Ports = append(spec.Ports, containers.Port{Host: p.Host, Container: p.Container, Protocol: p.Protocol})
	}
	id, err := h.Start(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted while the daemon created it: it may exist.
			s.removeNamed(ctx, h, c.Name)
		}
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

// ensure makes h hold im: an image by name it has is kept; one it lacks is
// sent from this machine (saved once to a temporary file), or pulled by
// the host when this machine has no Docker Engine; an archive is sent
// unless the host holds its digest under each of its tags.
func (s *starter) ensure(ctx context.Context, h *containers.Host, host, socket string, im *image) error {
	if im.ref != "" {
		got, err := h.Image(ctx, im.ref)
		if err != nil || got != nil {
			return err
		}
		if im.pull {
			s.say("services: %s: pulling image %s", host, im.ref)
			return h.Pull(ctx, im.ref)
		}
		if err := s.saveLocal(ctx, im); err != nil {
			return err
		}
	}
	if path, ok := im.relayed[host]; ok {
		err := s.o.Relay.Load(ctx, host, path, socket)
		if err == nil {
			err = holds(ctx, h, im)
		}
		if err == nil {
			line, _ := im.sending(0, true)
			s.say("services: image %s: loaded on %s from its relayed copy; %s", im.name(), host, line)
			return nil
		}
		s.say("services: image %s: %s: loading the relayed copy: %v; sending it", im.name(), host, err)
	}
	open := func() (io.ReadCloser, error) { return os.Open(im.archive) }
	var last atomic.Int64 // what progress was last given, on the HTTP client's goroutine
	progress := func(sent int64) {
		if line, ok := im.sending(sent-last.Swap(sent), false); ok {
			s.say("services: image %s: %s", im.name(), line)
		}
	}
	sent, err := h.EnsureImage(ctx, im.info, open, progress)
	if err != nil {
		return err
	}
	if sent > 0 {
		line, _ := im.sending(sent-last.Swap(sent), true)
		s.say("services: image %s: %s", im.name(), line)
	}
	return nil
}

// relay spreads each image that relayMin hosts or more lack, and this
// machine sends, from host to host.
func (s *starter) relay(ctx context.Context) {
	for _, key := range slices.Sorted(maps.Keys(s.images)) {
		im := s.images[key]
		if len(im.lacking) < relayMin || im.pull || (im.ref != "" && s.saveLocal(ctx, im) != nil) {
			continue // ensure says why an image cannot be had
		}
		slices.Sort(im.lacking)
		im.relayed = s.o.Relay.Spread(ctx, im.archive, im.lacking)
	}
}

// holds checks that h has im now.
func holds(ctx context.Context, h *containers.Host, im *image) error {
	if im.ref != "" {
		got, err := h.Image(ctx, im.ref)
		if err == nil && got == nil {
			err = fmt.Errorf("the daemon has no %s after loading it", im.ref)
		}
		return err
	}
	ok, err := h.Holds(ctx, im.info)
	if err == nil && !ok {
		err = fmt.Errorf("the daemon has not image %s %v after loading it", im.info.ID, im.info.Tags)
	}
	return err
}

// saveLocal saves image by name im from this machine's Docker Engine to a
// temporary file, once: every host lacking it is sent that file, so the
// daemon here saves it once and no image is held in memory.
func (s *starter) saveLocal(ctx context.Context, im *image) error {
	im.save.Do(func() {
		f, err := os.CreateTemp("", "e2c-image-*.tar")
		if err != nil {
			im.err = err
			return
		}
		s.mu.Lock()
		s.temp = append(s.temp, f.Name())
		s.mu.Unlock()
		_, err = s.local.Save(ctx, im.ref, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			im.err = err
			return
		}
		im.archive = f.Name()
	})
	return im.err
}

// close removes the images saved here and the client of this machine's
// engine.
func (s *starter) close() {
	for _, name := range s.temp {
		os.Remove(name)
	}
	if s.local != nil {
		s.local.Close()
	}
}

// ready waits for c's readiness check; without one, for it to run.
func (s *starter) ready(ctx context.Context, h *containers.Host, c *plan.Container, r *Record) error {
	rd := c.Readiness
	if err := h.WaitReady(ctx, r.ID, containers.Ready{Port: rd.Port, Exec: rd.Command, Timeout: rd.Wait()}); err != nil {
		return err
	}
	now := time.Now()
	r.Ready = &now
	return nil
}

// why a container of an earlier run is replaced.
func why(e containers.Container, fp, image string) string {
	switch {
	case e.Labels[FingerprintLabel] != fp:
		return "its definition changed"
	case e.ImageID != image:
		return "its image changed"
	}
	return "it is " + e.State
}

// removeNamed removes the container of the experiment named name, if
// there is one, even when ctx has ended.
func (s *starter) removeNamed(ctx context.Context, h *containers.Host, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	all, err := h.List(rctx, s.o.Experiment)
	if err != nil {
		return
	}
	for _, e := range all {
		if e.Name == name {
			_ = h.Remove(rctx, e.ID, time.Second)
		}
	}
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
	errs := fanout.Each(ctx, len(names), 256, func(ctx context.Context, i int) error {
		return hostLogs(ctx, names[i], byHost[names[i]], reach, dir)
	})
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
		rel := filepath.Join(results.ServicesDir, name, r.Name+".log")
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
