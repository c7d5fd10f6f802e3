// Package local is the provider that needs nothing: every host of the
// scenario is this machine, reached without SSH and without root. Each host
// gets its own working area, where its commands run and relative paths
// land, and its own loopback address (127.0.1.1, 127.0.1.2, ...), so that
// services on different hosts can listen on the same port.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

func init() { providers.Register("local", provider{}) }

type provider struct{}

// state records the working areas, to remove them on release.
type state struct {
	Dirs []string `json:"dirs"`
}

// maxHosts is what the 127.0.1.0 - 127.0.255.255 range can number.
const maxHosts = 255 * 254

// settings is the local block: it takes nothing beyond the shared job_name.
type settings struct {
	JobName string `yaml:"job_name"`
}

func (provider) CheckSettings(tb *schema.Testbed, _ []plan.Instance) error {
	if tb == nil {
		return nil
	}
	return tb.Decode(&settings{})
}

func (p provider) Reserve(ctx context.Context, req providers.Request) (*providers.Reservation, error) {
	if err := p.CheckSettings(req.Settings, req.Instances); err != nil {
		return nil, err
	}
	names := plan.Synthetic(req.Instances) // the same names a dry run shows
	r := &providers.Reservation{Provider: "local"}
	var st state
	n := 0
	for _, machines := range names {
		var hosts []providers.Host
		for _, m := range machines {
			if n >= maxHosts {
				return nil, fmt.Errorf("local: more than %d hosts", maxHosts)
			}
			addr := netip.AddrFrom4([4]byte{127, 0, byte(1 + n/254), byte(1 + n%254)}).String()
			n++
			dir := filepath.Join(req.StateDir, "hosts", m.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("local: %w", err)
			}
			st.Dirs = append(st.Dirs, dir)
			hosts = append(hosts, providers.Host{
				Machine: plan.Machine{Name: m.Name, Address: addr, Address4: addr},
				WorkDir: dir,
			})
		}
		r.Hosts = append(r.Hosts, hosts)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	r.State = data
	return r, nil
}

// Release removes the working areas. Only folders under a "hosts" folder
// are removed, whatever the saved state says.
func (provider) Release(ctx context.Context, r *providers.Reservation, _ io.Writer) error {
	var st state
	if len(r.State) > 0 {
		if err := json.Unmarshal(r.State, &st); err != nil {
			return fmt.Errorf("local: saved state: %w", err)
		}
	}
	for _, dir := range slices.Compact(st.Dirs) {
		if filepath.Base(filepath.Dir(dir)) != "hosts" || strings.Contains(dir, "..") {
			return fmt.Errorf("local: refusing to remove %s: not a host working area", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("local: %w", err)
		}
	}
	return nil
}
