package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

func names(hs []providers.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

// TestResize: a host goes (what runs in its area is stopped, the area
// removed) before the new ones are journaled and made; kept hosts stay as
// they are; new names never repeat a released one; released from its saved
// state, nothing is left.
func TestResize(t *testing.T) {
	dir := t.TempDir()
	in := func(gw, prod int) []plan.Instance {
		return []plan.Instance{
			{Layer: "fog", Name: "gw", Index: 1, Service: &schema.Service{Quantity: gw}},
			{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: prod}},
		}
	}
	r := reserve(t, dir, in(2, 1))
	before := slices.Concat(r.Hosts...)
	gone := r.Hosts[0][0]
	sleep := exec.Command("sleep", "300")
	sleep.Dir = gone.WorkDir
	sleep.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	waited := make(chan error, 1)
	go func() { waited <- sleep.Wait() }()

	var journaled []state
	req := providers.Request{StateDir: dir, Instances: in(3, 1), Journal: func(s json.RawMessage) error {
		var st state
		json.Unmarshal(s, &st)
		journaled = append(journaled, st)
		if _, err := os.Stat(gone.WorkDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("journaled before %s was removed", gone.Name)
		}
		for _, d := range st.Dirs[2:] {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists before it is journaled", d)
			}
		}
		return nil
	}}
	keep := [][]providers.Host{{r.Hosts[0][1]}, r.Hosts[1]}
	if err := New().(providers.Resizer).Resize(context.Background(), r, req, keep); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	default:
		t.Error("the process in the removed host's area still runs")
	}
	if got := [][]string{names(r.Hosts[0]), names(r.Hosts[1])}; !reflect.DeepEqual(got, [][]string{{"fog-gw-1-2", "fog-gw-1-3", "fog-gw-1-4"}, {"edge-producer-1-1"}}) {
		t.Fatalf("hosts %v", got)
	}
	if r.Hosts[0][0] != before[1] || r.Hosts[1][0] != before[2] {
		t.Errorf("kept hosts changed: %+v, was %+v", r.Hosts, before)
	}
	// The released address is the first free one again.
	if r.Hosts[0][1].Address != gone.Address || r.Hosts[0][2].Address != address(blockOf(t, r), 3) {
		t.Errorf("new addresses %s %s", r.Hosts[0][1].Address, r.Hosts[0][2].Address)
	}
	for _, h := range r.Hosts[0][1:] {
		if st, err := os.Stat(h.WorkDir); err != nil || !st.IsDir() || h.WorkDir != filepath.Join(dir, "hosts", h.Name) {
			t.Errorf("%s: work dir %s: %v", h.Name, h.WorkDir, err)
		}
	}
	if len(journaled) != 1 || len(journaled[0].Dirs) != 4 || !reflect.DeepEqual(journaled[0].Retired, []string{"fog-gw-1-1"}) {
		t.Errorf("journaled %+v", journaled)
	}
	if err := (provider{}).Verify(context.Background(), r, 0); err != nil {
		t.Errorf("verify after resize: %v", err)
	}

	// Down to one, then up again: the new name is none given before.
	req.Journal = nil
	if err := New().(providers.Resizer).Resize(context.Background(), r, providers.Request{StateDir: dir, Instances: in(1, 1)}, [][]providers.Host{{r.Hosts[0][1]}, r.Hosts[1]}); err != nil {
		t.Fatal(err)
	}
	if err := New().(providers.Resizer).Resize(context.Background(), r, providers.Request{StateDir: dir, Instances: in(2, 1)}, r.Hosts); err != nil {
		t.Fatal(err)
	}
	if got := names(r.Hosts[0]); !reflect.DeepEqual(got, []string{"fog-gw-1-3", "fog-gw-1-5"}) {
		t.Errorf("hosts %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "hosts")); len(ents) != 3 {
		t.Errorf("working areas %v, want 3", ents)
	}

	data, _ := json.Marshal(r)
	var saved providers.Reservation
	json.Unmarshal(data, &saved)
	if err := New().Release(context.Background(), &saved, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts")); !os.IsNotExist(err) {
		t.Errorf("working areas left: %v", err)
	}
	if c := readClaims(t); len(c) != 0 {
		t.Errorf("claims left: %+v", c)
	}
}

func blockOf(t *testing.T, r *providers.Reservation) int {
	st, err := decode(r)
	if err != nil {
		t.Fatal(err)
	}
	return st.Block
}

// TestResizeRefused: what cannot be done is refused before anything
// changes.
func TestResizeRefused(t *testing.T) {
	dir := t.TempDir()
	r := reserve(t, dir, instances(2))
	before, _ := json.Marshal(r)
	other := providers.Host{Machine: plan.Machine{Name: "elsewhere"}}
	for _, c := range []struct {
		name string
		in   []plan.Instance
		keep [][]providers.Host
		want string
	}{
		{"not held", instances(2), [][]providers.Host{{other}}, `host "elsewhere" to keep is not one of the reservation`},
		{"more than the quantity", instances(1), r.Hosts, "edge.node.1: keeps 2 hosts, more than its quantity 1"},
		{"negative", instances(-1), nil, "quantity -1, expected 0 or more"},
		{"too many", instances(maxHosts + 1), r.Hosts, fmt.Sprintf("more than the %d that loopback addresses number", maxHosts)},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := New().(providers.Resizer).Resize(context.Background(), r, providers.Request{StateDir: dir, Instances: c.in}, c.keep)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if now, _ := json.Marshal(r); string(now) != string(before) {
				t.Errorf("reservation changed: %s", now)
			}
			for _, h := range r.Hosts[0] {
				if _, err := os.Stat(h.WorkDir); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestResizeGrowsTheClaim: past 254 hosts, the next block is claimed,
// unless another live scenario holds it: then nothing changes.
func TestResizeGrowsTheClaim(t *testing.T) {
	dir := t.TempDir()
	r := reserve(t, dir, instances(2))
	first := blockOf(t, r)
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "hosts"), 0o755)
	withClaims(func(c []claim) ([]claim, error) {
		return append(c, claim{Owner: other, First: first + 1, Count: 1}), nil
	})
	err := New().(providers.Resizer).Resize(context.Background(), r, providers.Request{StateDir: dir, Instances: instances(255)}, r.Hosts)
	if err == nil || !strings.Contains(err.Error(), "is not free") || len(r.Hosts[0]) != 2 {
		t.Fatalf("grown over another scenario's block: %v, %d hosts", err, len(r.Hosts[0]))
	}
	withClaims(func(c []claim) ([]claim, error) {
		return slices.DeleteFunc(c, func(c claim) bool { return c.Owner == other }), nil
	})
	if err := New().(providers.Resizer).Resize(context.Background(), r, providers.Request{StateDir: dir, Instances: instances(255)}, r.Hosts); err != nil {
		t.Fatal(err)
	}
	if last := r.Hosts[0][254].Address; last != address(first, 254) {
		t.Errorf("host 255 at %s, want %s", last, address(first, 254))
	}
	if c := readClaims(t); len(c) != 1 || c[0].Count != 2 {
		t.Errorf("claims %+v", c)
	}
}

// TestResizeJournalFails: a journal that fails stops the resize with the
// kept hosts only, the released one gone and nothing new made.
func TestResizeJournalFails(t *testing.T) {
	dir := t.TempDir()
	r := reserve(t, dir, instances(2))
	gone := r.Hosts[0][1]
	req := providers.Request{StateDir: dir, Instances: instances(3), Journal: func(json.RawMessage) error { return errors.New("disk full") }}
	err := New().(providers.Resizer).Resize(context.Background(), r, req, [][]providers.Host{{r.Hosts[0][0]}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("resize: %v", err)
	}
	if len(r.Hosts[0]) != 1 {
		t.Errorf("hosts %+v, want the kept one", r.Hosts)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "hosts")); len(ents) != 1 {
		t.Errorf("working areas %v, want the kept one", ents)
	}
	if _, err := os.Stat(gone.WorkDir); !os.IsNotExist(err) {
		t.Errorf("released area: %v", err)
	}
	st, _ := decode(r)
	if len(st.Dirs) != 1 || !reflect.DeepEqual(st.Retired, []string{gone.Name}) {
		t.Errorf("state %+v", st)
	}
}
