package experiment

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
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
	for _, play := range p.Plays {
		for _, run := range play.Phases[ph] {
			plan.Walk(run.Tasks, func(t *plan.Task) {
				src, _ := t.Args["src"].(string)
				if t.Skipped || src == "" || !slices.Contains(spreadModules, t.Module) || remote(t.Args) {
					return
				}
				local, err := p.Source(t.Module, src)
				if err != nil {
					return // the task says why
				}
				_ = filepath.WalkDir(local, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return nil
					}
					fi, err := os.Stat(path) // a link to a file is followed, as Put does
					if err == nil && fi.Mode().IsRegular() && fi.Size() >= transport.BlobMin && !slices.Contains(hosts[path], run.Host) {
						hosts[path] = append(hosts[path], run.Host)
					}
					return nil
				})
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

// remote tells a task whose src is on the host (remote_src, or an
// unarchive of a file already there).
func remote(args map[string]any) bool {
	r, _ := args["remote_src"].(bool)
	return r
}

// spreadFiles relays, ahead of phase ph of p, each large file the phase's
// copies send to many hosts from host to host (engine/spread) into the
// hosts' transport.BlobDir, from which their Put takes it. Hosts that have
// it from an earlier run are skipped. What fails here only costs time:
// the copy then sends the file itself.
func (x *Session) spreadFiles(ctx context.Context, out io.Writer, p *plan.Plan, ph schema.Phase) {
	files := toSpread(p, ph)
	if len(files) == 0 || x.o.NoAgent {
		return
	}
	addrs := map[string]string{}
	for _, h := range p.Hosts {
		addrs[h.Name] = h.Address
	}
	for _, src := range slices.Sorted(maps.Keys(files)) {
		blob, err := transport.Blob(src)
		if err != nil {
			continue // the copy says why
		}
		var mu sync.Mutex
		var targets []spread.Target
		x.eachHost(ctx, files[src], func(ctx context.Context, h string, r transport.Runner) error {
			st, ok := r.(transport.Streamer)
			if !ok {
				return nil
			}
			if _, err := r.Run(ctx, transport.Command{Script: "test -f " + blob}); err == nil {
				return nil
			}
			mu.Lock()
			targets = append(targets, spread.Target{Host: h, Agent: st, Addr: addrs[h]})
			mu.Unlock()
			return nil
		})
		if len(targets) < spreadMinHosts {
			continue
		}
		slices.SortFunc(targets, func(a, b spread.Target) int { return strings.Compare(a.Host, b.Host) })
		start, said := time.Now(), time.Now()
		res, err := spread.Spread(ctx, src, blob, targets, spread.Options{Progress: func(pr spread.Progress) {
			if time.Since(said) >= 2*time.Second {
				fmt.Fprintf(out, "  %s\n", pr)
				said = time.Now()
			}
		}})
		if err != nil {
			fmt.Fprintf(out, "  spread %s: %v; the copies send it\n", filepath.Base(src), err)
			continue
		}
		failed := 0
		for _, h := range slices.Sorted(maps.Keys(res.Errors)) {
			if err := res.Errors[h]; err != nil {
				failed++
				fmt.Fprintf(out, "  spread %s: host %s: %v; its copy sends it\n", filepath.Base(src), h, err)
			}
		}
		fmt.Fprintf(out, "  spread %s to %d hosts in %.1f s (%d failed), %.0f MB sent by e2c\n", filepath.Base(src),
			len(targets), time.Since(start).Seconds(), failed, float64(res.Sent)/1e6)
	}
}
