package static

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/fanout"
	"github.com/e2c-dev/e2c/engine/hostfacts"
	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/dockerinstall"
	"github.com/e2c-dev/e2c/schema"
)

// New returns the static provider: machines that already exist, listed in the scenario.
func New() providers.Provider { return provider{} }

type provider struct{}

var _ providers.DockerProvider = provider{}

// Bounds of the SSH work of Reserve and Release: a board that hangs must
// not hang the scenario, and hundreds of hosts must not open hundreds of
// connections at once.
const (
	parallel    = 32
	hostTimeout = 2 * time.Minute
)

// hostState is what Reserve learnt of a host, kept for the user and for
// Release.
type hostState struct {
	Name     string             `json:"name"`
	Address  string             `json:"address"`
	Arch     string             `json:"arch"` // uname -m
	MemKB    int64              `json:"mem_available_kb"`
	RootKB   int64              `json:"disk_free_root_kb"`
	TmpKB    int64              `json:"disk_free_tmp_kb"`
	Root     bool               `json:"root"` // logs in as root
	Sudo     bool               `json:"sudo"` // sudo -n works (always true for root)
	EtcHosts bool               `json:"etc_hosts,omitempty"`
	SSH      transport.Endpoint `json:"ssh"`
}

// state is the Reservation's State: what Release must undo.
type state struct {
	Experiment string      `json:"experiment"`
	Hosts      []hostState `json:"hosts"`
	// Retired are the hosts Resize released: their names are not given
	// again, and they are taken again only when no other host is free.
	Retired []retired `json:"retired,omitempty"`
}

// retired is a host a Resize released.
type retired struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// CheckSettings reads the block and assigns hosts to the instances, as
// Reserve does, without contacting them.
func (provider) CheckSettings(tb *schema.Testbed, instances []plan.Instance) error {
	c, err := parseConfig(tb)
	if err != nil {
		return err
	}
	_, err = assign(c, instances)
	return err
}

// Reserve's and Release's errors do not name the provider: the caller
// does ("reserve: static: preflight failed: ...").
func (provider) Reserve(ctx context.Context, req providers.Request) (*providers.Reservation, error) {
	if req.Experiment == "" || strings.ContainsAny(req.Experiment, "\r\n") {
		return nil, fmt.Errorf("the request names no experiment, or one with a line break: %q", req.Experiment)
	}
	c, err := parseConfig(req.Settings)
	if err != nil {
		return nil, err
	}
	picked, err := assign(c, req.Instances)
	if err != nil {
		return nil, err
	}
	if c.policy == transport.Off {
		log.Printf("static: warning: host_keys: off; SSH host keys are not checked, anyone on the path can impersonate the hosts")
	}
	res := &providers.Reservation{Provider: "static", Hosts: make([][]providers.Host, len(picked))}
	st := state{Experiment: req.Experiment}
	for n, idx := range picked {
		for _, i := range idx {
			h := c.hosts[i]
			e := c.endpoint(h, req.StateDir)
			res.Hosts[n] = append(res.Hosts[n], providers.Host{Machine: c.machine(h), SSH: e, DockerSocket: h.DockerSocket})
			st.Hosts = append(st.Hosts, hostState{Name: h.name(), Address: h.Address, Arch: h.Arch, SSH: *e})
		}
	}

	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	if err := preflight(ctx, pool, st.Hosts, c.etcHosts); err != nil {
		return nil, err
	}
	if c.etcHosts {
		// Journaled before any block is written: a reserve that dies half
		// way leaves a record whose Release removes them.
		for i := range st.Hosts {
			st.Hosts[i].EtcHosts = true
		}
		if err := req.Save(st); err != nil {
			return nil, err
		}
		if err := writeEtcHosts(ctx, pool, st); err != nil {
			// Undo on every host, as Release would.
			return nil, errors.Join(err, release(context.WithoutCancel(ctx), pool, st))
		}
	}
	if res.State, err = json.Marshal(st); err != nil {
		return nil, err
	}
	return res, nil
}

// Resize keeps the hosts keep lists as they are, hands the others back
// (removing their /etc/hosts block), and takes unused hosts of the block
// for the new ones, as Reserve picks them, after the preflight of the new
// hosts alone. With etc_hosts, every host's block then lists the hosts
// the reservation holds. A host released earlier is taken again only when
// no other is free, under a new name.
func (provider) Resize(ctx context.Context, r *providers.Reservation, req providers.Request, keep [][]providers.Host) error {
	c, err := parseConfig(req.Settings)
	if err != nil {
		return err
	}
	var st state
	if err := json.Unmarshal(r.State, &st); err != nil {
		return fmt.Errorf("saved state: %w", err)
	}
	rp, err := providers.PlanResize(r, req.Instances, keep)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	held := map[string]bool{} // addresses of the kept hosts
	later := map[string]bool{}
	for _, h := range st.Retired {
		taken[h.Name], later[h.Address] = true, true
	}
	for _, h := range st.Hosts {
		taken[h.Name] = true
	}
	kept := make([]int, len(rp.Keep))
	for i, hs := range rp.Keep {
		kept[i] = len(hs)
		for _, h := range hs {
			held[h.Address] = true
		}
	}
	for _, h := range rp.Release {
		later[h.Address] = true
	}
	used, last := make([]bool, len(c.hosts)), make([]bool, len(c.hosts))
	for i, h := range c.hosts {
		used[i], last[i] = held[h.Address], later[h.Address]
	}
	picked, err := pick(c, req.Instances, kept, used, last)
	if err != nil {
		return err
	}
	added := make([][]providers.Host, len(picked))
	var fresh []hostState
	for n, idx := range picked {
		for _, i := range idx {
			h := c.hosts[i]
			m, e := c.machine(h), c.endpoint(h, req.StateDir)
			for k, base := 2, m.Name; taken[m.Name]; k++ {
				m.Name = fmt.Sprintf("%s-%d", base, k)
			}
			taken[m.Name] = true
			added[n] = append(added[n], providers.Host{Machine: m, SSH: e, DockerSocket: h.DockerSocket})
			fresh = append(fresh, hostState{Name: m.Name, Address: h.Address, Arch: h.Arch, SSH: *e})
		}
	}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	if err := preflight(ctx, pool, fresh, c.etcHosts); err != nil {
		return err
	}

	// From here on, r holds the kept hosts.
	var keptSt, goneSt []hostState
	for _, h := range st.Hosts {
		if slices.ContainsFunc(rp.Release, func(g providers.Host) bool { return g.Name == h.Name }) {
			goneSt = append(goneSt, h)
			st.Retired = append(st.Retired, retired{h.Name, h.Address})
		} else {
			keptSt = append(keptSt, h)
		}
	}
	r.Hosts = rp.Keep
	if err := release(ctx, pool, state{Experiment: st.Experiment, Hosts: goneSt}); err != nil {
		// Still recorded, for Release to try again.
		return errors.Join(err, setState(r, st, req))
	}
	st.Hosts = keptSt
	grown := st
	if c.etcHosts {
		for i := range fresh {
			fresh[i].EtcHosts = true
		}
	}
	grown.Hosts = append(slices.Clone(keptSt), fresh...)
	// Journaled before any block is written, as in Reserve.
	if err := req.Save(grown); err != nil {
		return errors.Join(err, setState(r, st, req))
	}
	if c.etcHosts {
		if err := writeEtcHosts(ctx, pool, grown); err != nil {
			// Back to the kept hosts, as Release would leave the others.
			err = errors.Join(err, release(context.WithoutCancel(ctx), pool, state{Experiment: st.Experiment, Hosts: fresh}),
				writeEtcHosts(context.WithoutCancel(ctx), pool, st))
			return errors.Join(err, setState(r, st, req))
		}
	}
	for n := range r.Hosts {
		r.Hosts[n] = append(r.Hosts[n], added[n]...)
	}
	return setState(r, grown, req)
}

// setState makes st the state of r, and journals it.
func setState(r *providers.Reservation, st state, req providers.Request) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	r.State = data
	return req.Save(st)
}

// writeEtcHosts writes the block of st's hosts into the /etc/hosts of
// each host of st that has one.
func writeEtcHosts(ctx context.Context, pool *transport.Pool, st state) error {
	var block strings.Builder
	var written []hostState
	for _, h := range st.Hosts {
		if h.Name != h.Address {
			fmt.Fprintf(&block, "%s %s\n", h.Address, h.Name)
		}
		if h.EtcHosts {
			written = append(written, h)
		}
	}
	err := forEach(ctx, written, func(ctx context.Context, h *hostState) error {
		return editEtcHosts(ctx, pool, h, st.Experiment, block.String())
	})
	if err != nil {
		return fmt.Errorf("writing /etc/hosts:\n  %w", err)
	}
	return nil
}

// ProvideDocker installs Docker Engine from Debian's docker.io on the
// hosts whose engine does not answer, when the block says docker: install.
// What it installs stays: the machines are the user's.
func (provider) ProvideDocker(ctx context.Context, r *providers.Reservation, hosts []string, tb *schema.Testbed, out io.Writer) error {
	c, err := parseConfig(tb)
	if err != nil {
		return err
	}
	hs, err := dockerinstall.Hosts(r, hosts)
	if err != nil {
		return err
	}
	return dockerinstall.Provide(ctx, hs, dockerinstall.Options{Install: c.docker == dockerinstall.Install, Parallel: parallel, Out: out})
}

func (provider) Release(ctx context.Context, r *providers.Reservation, _ io.Writer) error {
	if len(r.State) == 0 {
		return nil // nothing was written
	}
	var st state
	if err := json.Unmarshal(r.State, &st); err != nil {
		return fmt.Errorf("saved state: %w", err)
	}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	return release(ctx, pool, st)
}

// release removes the /etc/hosts block from every host that got one.
func release(ctx context.Context, pool *transport.Pool, st state) error {
	var written []hostState
	for _, h := range st.Hosts {
		if h.EtcHosts {
			written = append(written, h)
		}
	}
	err := forEach(ctx, written, func(ctx context.Context, h *hostState) error {
		return editEtcHosts(ctx, pool, h, st.Experiment, "")
	})
	if err != nil {
		return fmt.Errorf("removing the /etc/hosts block of %s:\n  %w", st.Experiment, err)
	}
	return nil
}

// forEach runs f on every host, a bounded number at a time, and returns
// every failure, one line per host in host order.
func forEach(ctx context.Context, hosts []hostState, f func(context.Context, *hostState) error) error {
	errs := fanout.Each(ctx, len(hosts), parallel, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, hostTimeout)
		defer cancel()
		return f(ctx, &hosts[i])
	})
	var lines []string
	for i, err := range errs {
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s (%s): %v", hosts[i].Name, hosts[i].Address, err))
		}
	}
	if len(lines) > 0 {
		return errors.New(strings.Join(lines, "\n  "))
	}
	return nil
}

// preflight logs into every host and checks it can serve: architecture,
// and sudo when /etc/hosts must be written. It fills the hosts' summaries
// and reports every problem of every host at once, so that a cluster of
// boards is fixed in one round rather than one board per run.
func preflight(ctx context.Context, pool *transport.Pool, hosts []hostState, needSudo bool) error {
	err := forEach(ctx, hosts, func(ctx context.Context, h *hostState) error {
		r, err := pool.Runner(ctx, h.SSH)
		if err != nil {
			return err
		}
		f, err := hostfacts.Learn(ctx, r, hostfacts.Script+hostfacts.Privileges)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		var problems []string
		want := h.Arch
		h.Arch = f.Arch
		if want != "" && arch.Of(h.Arch) != want {
			problems = append(problems, fmt.Sprintf("architecture is %s, the scenario says %s", h.Arch, want))
		}
		h.MemKB, h.RootKB, h.TmpKB = f.MemFreeKB, f.RootFreeKB, f.TmpFreeKB
		h.Root, h.Sudo = f.Root, f.Sudo
		if needSudo && !h.Sudo {
			problems = append(problems, "etc_hosts needs root or passwordless sudo, and `sudo -n true` fails for this user; allow it in /etc/sudoers.d")
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("preflight failed:\n  %w", err)
	}
	return nil
}

// etcHostsScript replaces the block between the lines $E2C_BEGIN and
// $E2C_END of /etc/hosts with $E2C_BLOCK (removing it when empty). A
// BEGIN without its END is kept as is rather than eating the rest of the
// file. The file is rewritten in place, not renamed over, so that its
// inode, mode and any bind mount (containers, emulated hosts) stay.
const etcHostsScript = `
set -e
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
awk '
	!inb && $0 == ENVIRON["E2C_BEGIN"] { inb = 1; buf = $0 "\n"; next }
	inb { buf = buf $0 "\n"; if ($0 == ENVIRON["E2C_END"]) { inb = 0; buf = "" }; next }
	{ print }
	END { if (inb) printf "%s", buf }
' /etc/hosts > "$tmp"
if [ -n "$E2C_BLOCK" ]; then
	{ echo "$E2C_BEGIN"; printf '%s' "$E2C_BLOCK"; echo "$E2C_END"; } >> "$tmp"
fi
cmp -s "$tmp" /etc/hosts 2>/dev/null || cat "$tmp" > /etc/hosts
`

// editEtcHosts writes (or, with an empty block, removes) the experiment's
// block of /etc/hosts on h.
func editEtcHosts(ctx context.Context, pool *transport.Pool, h *hostState, experiment, block string) error {
	r, err := pool.Runner(ctx, h.SSH)
	if err != nil {
		return err
	}
	_, err = r.Run(ctx, transport.Command{
		Script: etcHostsScript,
		Sudo:   !h.Root,
		Env: map[string]string{
			"E2C_BEGIN": "# BEGIN e2c " + experiment,
			"E2C_END":   "# END e2c " + experiment,
			"E2C_BLOCK": block,
		},
	})
	return err
}
