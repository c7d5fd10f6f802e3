package experiment

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/e2c-dev/e2c/engine/plan"
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
