package experiment

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/services"
	"github.com/e2c-dev/e2c/engine/spread"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/schema"
)

// spreadModules are the modules whose src is a local file or folder sent
// to the host as it is.
var spreadModules = []string{"copy", "synchronize", "unarchive"}

// spreadMinHosts is from how many hosts a file is spread host to host
// rather than sent to each: below it the relays' start costs more than
// the controller's uplink saves.
const spreadMinHosts = 4

// spreading is what a phase's copies send to spreadMinHosts hosts or
// more, each with those hosts, sorted: its large files (transport.BlobMin
// or more) one by one, and the small files of each src folder as one
// bundle when they add up to BlobMin.
type spreading struct {
	large map[string][]string // by file
	small map[string]smallFiles
}

// smallFiles are a src folder's small files and the hosts it goes to.
type smallFiles struct {
	files []string
	hosts []string
}

// toSpread says what phase ph of p spreads. Tasks are those planned: a src
// known only when its task runs (a deferred loop) is sent the plain way.
func toSpread(p *plan.Plan, ph schema.Phase) spreading {
	large := map[string][]string{} // by file, its hosts
	small := map[string][]string{} // by src
	type contents struct{ large, small []string }
	read := map[string]contents{} // by src, read once
	seen := map[[3]string]bool{}  // large or small, host, file or src
	add := func(to map[string][]string, kind, key, host string) {
		if k := [3]string{kind, host, key}; !seen[k] {
			seen[k] = true
			to[key] = append(to[key], host)
		}
	}
	for _, play := range p.Plays {
		for _, run := range play.Phases[ph] {
			plan.Walk(run.Tasks, func(t *plan.Task) {
				src, _ := t.Args["src"].(string)
				if remoteSrc, _ := t.Args["remote_src"].(bool); t.Skipped || src == "" || remoteSrc || !slices.Contains(spreadModules, t.Module) {
					return
				}
				local, err := p.Source(t.Module, src)
				if err != nil {
					return // the task says why
				}
				c, ok := read[local]
				if !ok {
					c.large, c.small = filesOf(local)
					read[local] = c
				}
				for _, f := range c.large {
					add(large, "large", f, run.Host)
				}
				if len(c.small) > 0 {
					add(small, "small", local, run.Host)
				}
			})
		}
	}
	sp := spreading{large: map[string][]string{}, small: map[string]smallFiles{}}
	for f, hs := range large {
		if len(hs) >= spreadMinHosts {
			sp.large[f] = slices.Sorted(slices.Values(hs))
		}
	}
	for src, hs := range small {
		if len(hs) >= spreadMinHosts {
			sp.small[src] = smallFiles{read[src].small, slices.Sorted(slices.Values(hs))}
		}
	}
	return sp
}

// filesOf lists the regular files at or under local, links to files
// followed as Put follows them: those of at least transport.BlobMin, and
// the others if they add up to BlobMin.
func filesOf(local string) (large, small []string) {
	var smallBytes int64
	_ = filepath.WalkDir(local, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil || !fi.Mode().IsRegular():
		case fi.Size() >= transport.BlobMin:
			large = append(large, path)
		default:
			small = append(small, path)
			smallBytes += fi.Size()
		}
		return nil
	})
	if smallBytes < transport.BlobMin {
		small = nil
	}
	return large, small
}

// spreadFiles relays, ahead of phase ph of p, what its copies send to
// many hosts (toSpread) from host to host into the hosts'
// transport.BlobDir, from which their Put takes it. What fails here only
// costs time: the copy then sends the files itself.
func (x *Session) spreadFiles(ctx context.Context, out io.Writer, p *plan.Plan, ph schema.Phase) {
	if x.o.NoAgent {
		return
	}
	sp := toSpread(p, ph)
	for _, f := range slices.Sorted(maps.Keys(sp.large)) {
		x.spread(ctx, out, f, filepath.Base(f), sp.large[f])
	}
	if len(sp.small) == 0 {
		return
	}
	dir, err := os.MkdirTemp("", "e2c-bundles-")
	if err != nil {
		fmt.Fprintf(out, "  spread: %v; small files sent from here\n", err)
		return
	}
	defer os.RemoveAll(dir)
	for _, src := range slices.Sorted(maps.Keys(sp.small)) {
		s := sp.small[src]
		targets := x.agents(ctx, s.hosts)
		if len(targets) < spreadMinHosts {
			continue // sent from here: no bundle to write
		}
		name := fmt.Sprintf("%s (%d small files)", filepath.Base(src), len(s.files))
		bundle, err := transport.Bundle(dir, s.files)
		if err != nil {
			fmt.Fprintf(out, "  spread %s: %v; sent from here instead\n", name, err)
			continue
		}
		x.spreadTo(ctx, out, bundle, name, targets)
		os.Remove(bundle)
	}
}

// spread puts the local file src, called name in what it says, into the
// BlobDir of hosts through their agents, host to host (engine/spread), and
// returns the hosts that have it there, with its path. Hosts that have it
// from an earlier run are sent nothing and serve it to the others; hosts
// without the agent are left out.
func (x *Session) spread(ctx context.Context, out io.Writer, src, name string, hosts []string) map[string]string {
	return x.spreadTo(ctx, out, src, name, x.agents(ctx, hosts))
}

// agents are the spread's targets among hosts, those running the agent,
// by name.
func (x *Session) agents(ctx context.Context, hosts []string) []spread.Target {
	var mu sync.Mutex
	var targets []spread.Target
	x.eachHost(ctx, hosts, func(ctx context.Context, h string, r transport.Runner) error {
		if st, ok := r.(transport.Streamer); ok {
			mu.Lock()
			targets = append(targets, spread.Target{Host: h, Agent: st, Addr: x.hosts[h].Address})
			mu.Unlock()
		}
		return nil
	})
	slices.SortFunc(targets, func(a, b spread.Target) int { return strings.Compare(a.Host, b.Host) })
	return targets
}

// spreadTo is spread to targets, if they are spreadMinHosts at least.
func (x *Session) spreadTo(ctx context.Context, out io.Writer, src, name string, targets []spread.Target) map[string]string {
	if len(targets) < spreadMinHosts {
		return nil // sent from here
	}
	blob, err := transport.Blob(src)
	if err != nil {
		return nil // the copy says why
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Host
	}
	if err := x.st.addBlob(x.o.ScenarioDir, blob, names); err != nil {
		fmt.Fprintf(out, "  spread: %v; sent from here instead\n", err)
		return nil
	}
	start := time.Now()
	res, err := x.spreadByTestbed(ctx, out, src, blob, targets)
	if err != nil {
		fmt.Fprintf(out, "  spread %s: %v; sent from here instead\n", name, err)
		return nil
	}
	have := map[string]string{}
	failed := 0
	for _, h := range slices.Sorted(maps.Keys(res.Errors)) {
		if err := res.Errors[h]; err != nil {
			failed++
			fmt.Fprintf(out, "  spread %s: host %s: %v; sent from here instead\n", name, h, err)
		} else {
			have[h] = blob
		}
	}
	lacked := len(targets) - len(res.Had)
	if lacked == 0 {
		fmt.Fprintf(out, "  spread %s: the %d hosts had it\n", name, len(res.Had))
		return have
	}
	fmt.Fprintf(out, "  spread %s to %d hosts in %.1f s (%d failed), %.0f MB sent by e2c", name,
		lacked, time.Since(start).Seconds(), failed, float64(res.Sent)/1e6)
	if len(res.Had) > 0 {
		fmt.Fprintf(out, "; %d more had it", len(res.Had))
	}
	fmt.Fprintln(out)
	return have
}

// spreadByTestbed spreads src to the targets of each testbed apart, at
// once: hosts of different testbeds may not reach each other (a
// Grid'5000 job, Pis behind a NAT), and a host that cannot reach its
// parent would end up fed by e2c after some tries. A testbed whose spread
// fails as a whole has that error for each of its hosts.
func (x *Session) spreadByTestbed(ctx context.Context, out io.Writer, src, blob string, targets []spread.Target) (spread.Result, error) {
	byTestbed := map[string][]spread.Target{}
	for _, t := range targets {
		tb := x.testbeds[t.Host]
		byTestbed[tb] = append(byTestbed[tb], t)
	}
	var mu sync.Mutex
	said := time.Now()
	opts := spread.Options{Sum: path.Base(blob), Progress: func(pr spread.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(said) >= 2*time.Second {
			fmt.Fprintf(out, "  %s\n", pr)
			said = time.Now()
		}
	}}
	if len(byTestbed) == 1 {
		return spread.Spread(ctx, src, blob, targets, opts)
	}
	all := spread.Result{Errors: map[string]error{}}
	var wg sync.WaitGroup
	for _, ts := range byTestbed {
		wg.Go(func() {
			res, err := spread.Spread(ctx, src, blob, ts, opts)
			mu.Lock()
			defer mu.Unlock()
			for _, t := range ts {
				all.Errors[t.Host] = err
			}
			if err == nil {
				maps.Copy(all.Errors, res.Errors)
				all.Had = append(all.Had, res.Had...)
				all.Sent += res.Sent
			}
		})
	}
	wg.Wait()
	slices.Sort(all.Had)
	return all, nil
}

// removeBlobs removes the files spread to the hosts of the state that
// mine accepts (nil: all) and forgets them; what fails is a warning: the
// hosts are released anyway.
func removeBlobs(ctx context.Context, st *State, connect transport.Connector, mine func(host string) bool, out io.Writer) {
	var hosts []string
	for _, h := range slices.Sorted(maps.Keys(st.Blobs)) {
		if mine == nil || mine(h) {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return
	}
	errs := fanout.Each(ctx, len(hosts), 0, func(ctx context.Context, i int) error {
		r, err := connect(ctx, hosts[i])
		if err != nil {
			return err
		}
		files := make([]string, len(st.Blobs[hosts[i]]))
		for k, b := range st.Blobs[hosts[i]] {
			files[k] = transport.Quote(b)
		}
		_, err = r.Run(ctx, transport.Command{Script: "rm -f " + strings.Join(files, " ") + "\nrmdir " + transport.Quote(transport.BlobDir) + " 2>/dev/null || true"})
		return err
	})
	removed := 0
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(out, "warning: host %s: the files spread to it stay: %v\n", hosts[i], err)
		} else {
			removed++
		}
	}
	fmt.Fprintf(out, "removed the files spread to %d of %d hosts\n", removed, len(hosts))
	for _, h := range hosts {
		delete(st.Blobs, h)
	}
}

// relay is the services step's services.Relay: images spread as files
// are, loaded by the hosts' docker command.
type relay struct {
	x   *Session
	out io.Writer
}

// relay is nil with --no-agent: nothing can be spread.
func (x *Session) relay(out io.Writer) services.Relay {
	if x.o.NoAgent {
		return nil
	}
	return relay{x, out}
}

func (r relay) Spread(ctx context.Context, file string, hosts []string) map[string]string {
	return r.x.spread(ctx, r.out, file, filepath.Base(file), hosts)
}

func (r relay) Load(ctx context.Context, host, path, socket string) error {
	c, err := r.x.connect(ctx, host)
	if err != nil {
		return err
	}
	_, err = c.Run(ctx, transport.Command{Script: "docker -H " + transport.Quote("unix://"+socket) + " load -q -i " + transport.Quote(path)})
	if err != nil {
		return fmt.Errorf("docker load: %w", err)
	}
	return nil
}
