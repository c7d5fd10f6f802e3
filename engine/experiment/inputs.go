package experiment

import (
	"context"
	"errors"
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

	"github.com/e2c-dev/e2c/engine/hostfacts"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/results"
)

// Every run folder holds what is needed to run it again: the scenario
// files as they were read, a manifest of the artifacts, the testbeds'
// settings (credentials live elsewhere and never get there), and what each
// host is.

// learnFacts asks hosts what they are: every host once per deploy, and
// those a change adds. A host that does not answer is recorded without facts; its tasks will say why.
func (x *Session) learnFacts(ctx context.Context, hosts []string) {
	var mu sync.Mutex
	if x.facts == nil {
		x.facts = map[string]results.Facts{}
	}
	x.eachHost(ctx, hosts, func(ctx context.Context, h string, r transport.Runner) error {
		f, err := hostfacts.Learn(ctx, r, hostfacts.Script)
		if err == nil {
			mu.Lock()
			x.facts[h] = results.Facts{Arch: f.Arch, Kernel: f.Kernel, CPU: f.CPU, CPUs: f.CPUs, MemKB: f.MemKB}
			mu.Unlock()
		}
		return err
	})
	for _, h := range hosts {
		if how, why := x.commands(h); how == "ssh" && !x.o.NoAgent {
			fmt.Fprintf(x.o.Out, "warning: host %s runs its commands over an SSH session each: %s\n", h, why)
		}
	}
}

// commands says how commands run on host, as run.json records it, and
// why not through the agent.
func (x *Session) commands(host string) (how, whyNot string) {
	h, ok := x.hosts[host]
	switch {
	case !ok:
		return "", ""
	case h.SSH == nil:
		return "local", ""
	case x.o.NoAgent:
		return "ssh", "turned off (--no-agent)"
	}
	if err := x.pool.AgentFallback(*h.SSH); err != nil {
		return "ssh", err.Error()
	}
	return "agent", ""
}

// writeInputs copies the scenario files as read, and the template files of
// the scenario folder the plans read, and the artifacts manifest into a run
// folder.
func (x *Session) writeInputs(dir string, plans ...*plan.Plan) error {
	files := maps.Clone(x.sc.Files)
	for _, p := range plans {
		for _, name := range p.ScenarioFiles() {
			if _, ok := files[name]; ok {
				continue
			}
			data, err := os.ReadFile(filepath.Join(x.o.ScenarioDir, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue // its task will say so
			}
			if err != nil {
				return err
			}
			files[name] = data
		}
	}
	for name, data := range files {
		if err := results.WriteFile(dir, results.ScenarioDir+"/"+name, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return err
		}
	}
	if x.hashes == nil {
		x.hashes = artifactHashes{}
	}
	sums, err := x.hashes.sums(x.o.ArtifactsDir)
	if err != nil {
		return fmt.Errorf("hashing the artifacts: %w", err)
	}
	return results.WriteManifest(dir, x.o.ArtifactsDir, sums)
}

// artifactHashes keeps the artifacts' hashes across the runs of a deploy.
// A fetch may write into the artifacts folder (working_dir in prepare and
// launch), so each run stats the tree again, and hashes again only the
// files that changed (size or modification time) or appeared.
type artifactHashes map[string]hashedFile // by path in the tree

type hashedFile struct {
	size   int64
	mtime  time.Time
	sha256 string
}

// sums are the hashes of every regular file under dir (links to files
// followed), sorted by path, as results.HashTree gives them.
func (c artifactHashes) sums(dir string) ([]results.Sum, error) {
	var out []results.Sum
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			return err // special files are not artifacts
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		h, ok := c[rel]
		if !ok || h.size != st.Size() || !h.mtime.Equal(st.ModTime()) {
			sum, err := results.FileSHA256(path)
			if err != nil {
				return err
			}
			h = hashedFile{size: st.Size(), mtime: st.ModTime(), sha256: sum}
			c[rel] = h
		}
		out = append(out, results.Sum{Path: rel, SHA256: h.sha256})
		return nil
	})
	slices.SortFunc(out, func(a, b results.Sum) int { return strings.Compare(a.Path, b.Path) })
	return out, err
}

// testbedSettings are the testbed blocks of layers_services.yaml, by name.
func (x *Session) testbedSettings() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, tb := range x.sc.LayersServices.Environment.Testbeds {
		out[tb.Name] = tb.Data()
	}
	return out
}
