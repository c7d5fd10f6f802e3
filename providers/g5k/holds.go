package g5k

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/e2c-dev/e2c/providers"
)

// A hold says that a scenario of this machine works on a job's nodes. The
// machine-wide record of holds keeps a job reused by name from being
// deployed anew (its nodes reinstalled) under another scenario that runs on
// them.
type hold struct {
	API      string `json:"api"`
	Site     string `json:"site"`
	UID      int64  `json:"uid"`
	Scenario string `json:"scenario"` // the holder's Request.StateDir
}

// withHolds runs f on the machine-wide record of holds.
func (p *Provider) withHolds(f func([]hold) []hold) error {
	return providers.UpdateRecord(p.Records, "g5k-holds.json", "remove it if no scenario of this machine runs on Grid'5000",
		func(list []hold) ([]hold, error) { return f(list), nil })
}

// claim records that st's scenario holds its jobs. Another scenario of this
// machine that holds one of them (its folder still there) is named: with
// deploying, as an error, since kadeploy would reinstall the nodes it runs
// on; otherwise on out, and the job is shared.
func (p *Provider) claim(st *state, deploying bool, out io.Writer) error {
	if st.Holder == "" {
		return nil
	}
	// A holder whose folder is gone is forgotten: the folder must be there.
	if err := os.MkdirAll(st.Holder, 0o700); err != nil {
		return err
	}
	var errs []error
	err := p.withHolds(func(list []hold) []hold {
		list = slices.DeleteFunc(list, func(h hold) bool { return !exists(h.Scenario) })
		for _, js := range st.Jobs {
			if js.UID == 0 {
				continue
			}
			mine := hold{API: st.API, Site: js.Site, UID: js.UID, Scenario: st.Holder}
			for _, h := range list {
				if h.API != mine.API || h.Site != mine.Site || h.UID != mine.UID || h.Scenario == mine.Scenario {
					continue
				}
				if deploying {
					errs = append(errs, fmt.Errorf("%s: job %d is in use by the scenario %s on this machine: deploying env_name on it again would reinstall the nodes that scenario runs on; release them there first (e2c destroy %s), or give this scenario its own job_name",
						js.Site, js.UID, scenarioOf(h.Scenario), scenarioOf(h.Scenario)))
				} else {
					fmt.Fprintf(out, "g5k: %s: job %d is also used by the scenario %s on this machine\n", js.Site, js.UID, scenarioOf(h.Scenario))
				}
			}
			if !slices.Contains(list, mine) {
				list = append(list, mine)
			}
		}
		if len(errs) > 0 {
			list = slices.DeleteFunc(list, st.holds) // nothing is held on error
		}
		return list
	})
	return errors.Join(append(errs, err)...)
}

// unclaim removes st's holds of the jobs it released.
func (p *Provider) unclaim(st *state) error {
	if st.Holder == "" {
		return nil
	}
	return p.withHolds(func(list []hold) []hold { return slices.DeleteFunc(list, st.holds) })
}

// holds says whether h is st's hold of one of its jobs.
func (st *state) holds(h hold) bool {
	return h.Scenario == st.Holder && h.API == st.API &&
		slices.ContainsFunc(st.Jobs, func(js jobState) bool { return js.Site == h.Site && js.UID == h.UID })
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// scenarioOf names the scenario whose state folder is dir: the folder
// that holds .e2c, as users know it.
func scenarioOf(dir string) string {
	if parent := filepath.Dir(dir); filepath.Base(parent) == ".e2c" {
		return filepath.Dir(parent)
	}
	return strings.TrimSuffix(dir, string(filepath.Separator))
}
