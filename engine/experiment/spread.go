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

// toSpread lists the local files of at least transport.BlobMin that the
// phase's copies send to spreadMinHosts hosts or more, with those hosts,
// sorted. Tasks are those planned: a src known only when its task runs
// (a deferred loop) is sent the plain way.
func toSpread(p *plan.Plan, ph schema.Phase) map[string][]string {
	hosts := map[string][]string{}
	large := map[string][]string{} // by src: its files of BlobMin or more, read once
	seen := map[[2]string]bool{}   // host and file
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
				files, ok := large[local]
				if !ok {
					files = largeFiles(local)
					large[local] = files
				}
				for _, f := range files {
					if k := [2]string{run.Host, f}; !seen[k] {
						seen[k] = true
						hosts[f] = append(hosts[f], run.Host)
					}
				}
			})
		}
	}
	for f, hs := range hosts {
		if len(hs) < spreadMinHosts {
			delete(hosts, f)
			continue
		}
		slices.Sort(hs)
	}
	return hosts
}

// largeFiles lists the regular files of at least transport.BlobMin at or
// under local, links to files followed as Put follows them.
func largeFiles(local string) []string {
	var files []string
	_ = filepath.WalkDir(local, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() >= transport.BlobMin {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// spreadFiles relays, ahead of phase ph of p, each large file the phase's
// copies send to many hosts from host to host into the hosts'
// transport.BlobDir, from which their Put takes it. What fails here only
// costs time: the copy then sends the file itself.
func (x *Session) spreadFiles(ctx context.Context, out io.Writer, p *plan.Plan, ph schema.Phase) {
	if x.o.NoAgent {
		return
	}
	files := toSpread(p, ph)
	for _, src := range slices.Sorted(maps.Keys(files)) {
		x.spread(ctx, out, src, files[src])
	}
}

// spread puts the local file src into the BlobDir of hosts through their
// agents, host to host (engine/spread), and returns the hosts that have it
// there, with its path. Hosts that have it from an earlier run are sent
// nothing and serve it to the others; hosts without the agent are left
// out.
func (x *Session) spread(ctx context.Context, out io.Writer, src string, hosts []string) map[string]string {
	blob, err := transport.Blob(src)
	if err != nil {
		return nil // the copy says why
	}
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
	if len(targets) < spreadMinHosts {
		return nil // sent from here
	}
	slices.SortFunc(targets, func(a, b spread.Target) int { return strings.Compare(a.Host, b.Host) })
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Host
	}
	if err := x.st.addBlob(x.o.ScenarioDir, blob, names); err != nil {
		fmt.Fprintf(out, "  spread: %v; sent from here instead\n", err)
		return nil
	}
	name := filepath.Base(src)
	start, said := time.Now(), time.Now()
	res, err := spread.Spread(ctx, src, blob, targets, spread.Options{Sum: path.Base(blob), Progress: func(pr spread.Progress) {
		if time.Since(said) >= 2*time.Second {
			fmt.Fprintf(out, "  %s\n", pr)
			said = time.Now()
		}
	}})
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
	return r.x.spread(ctx, r.out, file, hosts)
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
