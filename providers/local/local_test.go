package local

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

// TestMain gives the tests their own record of claimed addresses, so that
// they can say which block comes next whatever runs on this machine.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2c-local-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func instances(quantities ...int) []plan.Instance {
	var out []plan.Instance
	for i, q := range quantities {
		out = append(out, plan.Instance{Layer: "edge", Name: "node", Index: i + 1, Service: &schema.Service{Quantity: q}})
	}
	return out
}

// reserve reserves for a scenario whose local state folder is state, and
// releases at the end of the test.
func reserve(t *testing.T, state string, in []plan.Instance) *providers.Reservation {
	t.Helper()
	p := New()
	r, err := p.Reserve(context.Background(), providers.Request{StateDir: state, Instances: in})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Release(context.Background(), r, io.Discard) })
	return r
}

func addresses(r *providers.Reservation) []string {
	var out []string
	for _, hs := range r.Hosts {
		for _, h := range hs {
			out = append(out, h.Address)
		}
	}
	return out
}

func readClaims(t *testing.T) []claim {
	t.Helper()
	var claims []claim
	if err := withClaims(func(c []claim) ([]claim, error) { claims = c; return c, nil }); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestReserveRelease(t *testing.T) {
	p := New()
	dir := t.TempDir()
	req := providers.Request{StateDir: dir, Instances: []plan.Instance{
		{Layer: "fog", Name: "gw", Index: 1, Service: &schema.Service{Quantity: 2}},
		{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: 1}},
	}}
	var journaled json.RawMessage
	req.Journal = func(s json.RawMessage) error { journaled = s; return nil }
	r, err := p.Reserve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Hosts) != 2 || len(r.Hosts[0]) != 2 || len(r.Hosts[1]) != 1 {
		t.Fatalf("hosts = %+v", r.Hosts)
	}
	// One block: consecutive addresses from .1, outside 127.0.0.0/16.
	first := netip.MustParseAddr(r.Hosts[0][0].Address).As4()
	if first[1] == 0 || first[3] != 1 {
		t.Errorf("first address %v", r.Hosts[0][0].Address)
	}
	block := netip.AddrFrom4([4]byte{127, first[1], first[2], 0})
	want := []string{"fog-gw-1-1", "fog-gw-1-2", "edge-producer-1-1"}
	got := append(append([]providers.Host{}, r.Hosts[0]...), r.Hosts[1]...)
	for i, name := range want {
		h := got[i]
		addr := block.As4()
		addr[3] = byte(i + 1)
		if h.Name != name || h.Address != netip.AddrFrom4(addr).String() || h.Address4 != h.Address || h.SSH != nil || h.WorkDir != filepath.Join(dir, "hosts", name) {
			t.Errorf("host %d = %+v, want %s at %v", i, h, name, netip.AddrFrom4(addr))
		}
		if st, err := os.Stat(h.WorkDir); err != nil || !st.IsDir() {
			t.Errorf("work dir %s: %v", h.WorkDir, err)
		}
	}
	if c := readClaims(t); len(c) != 1 || c[0] != (claim{Owner: dir, First: int(first[1])<<8 | int(first[2]), Count: 1}) {
		t.Errorf("claims = %+v", c)
	}
	// The journal said, before anything existed, what Release frees.
	var js state
	if err := json.Unmarshal(journaled, &js); err != nil || js.StateDir != dir || len(js.Dirs) != 3 {
		t.Errorf("journaled %s, %v", journaled, err)
	}
	// Released from a copy decoded from JSON, as another process would.
	data, _ := json.Marshal(r)
	var saved providers.Reservation
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(context.Background(), &saved, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hosts")); !os.IsNotExist(err) {
		t.Errorf("working areas still there: %v", err)
	}
	if c := readClaims(t); len(c) != 0 {
		t.Errorf("claims after release: %+v", c)
	}
	if err := p.Release(context.Background(), &saved, io.Discard); err != nil {
		t.Errorf("second release: %v", err)
	}
	// What an interrupted Reserve journaled releases too.
	if err := p.Release(context.Background(), &providers.Reservation{Provider: "local", State: journaled, Incomplete: true}, io.Discard); err != nil {
		t.Errorf("release of the journal: %v", err)
	}
}

// TestScenariosGetTheirOwnAddresses: two live scenarios never share an
// address, and a scenario finds its block again after a release.
func TestScenariosGetTheirOwnAddresses(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ra := reserve(t, a, instances(3))
	rb := reserve(t, b, instances(3))
	seen := map[string]bool{}
	for _, addr := range append(addresses(ra), addresses(rb)...) {
		if seen[addr] {
			t.Errorf("%s given twice: %v and %v", addr, addresses(ra), addresses(rb))
		}
		seen[addr] = true
	}
	p := New()
	if err := p.Release(context.Background(), ra, io.Discard); err != nil {
		t.Fatal(err)
	}
	again := reserve(t, a, instances(3))
	if addresses(again)[0] != addresses(ra)[0] {
		t.Errorf("after a release, %v; before %v", addresses(again), addresses(ra))
	}
}

// TestClaimedBlockIsSkipped: the block a scenario would start from is
// taken by a live scenario; a dead scenario's claim (its folder removed
// without e2c destroy) is free again.
func TestClaimedBlockIsSkipped(t *testing.T) {
	mine := t.TempDir()
	preferred, err := claimBlocks(mine, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := release(state{StateDir: mine}, io.Discard); err != nil {
		t.Fatal(err)
	}
	other, gone := t.TempDir(), filepath.Join(t.TempDir(), "removed")
	os.MkdirAll(filepath.Join(other, "hosts"), 0o755)
	withClaims(func([]claim) ([]claim, error) { return []claim{{Owner: other, First: preferred, Count: 1}}, nil })
	r := reserve(t, mine, instances(1))
	if got := addresses(r)[0]; got == address(preferred, 0) {
		t.Errorf("got %s, held by another live scenario", got)
	}
	p := New()
	p.Release(context.Background(), r, io.Discard)
	withClaims(func([]claim) ([]claim, error) { return []claim{{Owner: gone, First: preferred, Count: 1}}, nil })
	r = reserve(t, mine, instances(1))
	if got := addresses(r)[0]; got != address(preferred, 0) {
		t.Errorf("got %s, want %s: the claim of a removed scenario holds nothing", got, address(preferred, 0))
	}
	if c := readClaims(t); len(c) != 1 || c[0].Owner != mine {
		t.Errorf("claims = %+v", c)
	}
}

// TestManyHosts: beyond 254 hosts, the next block.
func TestManyHosts(t *testing.T) {
	r := reserve(t, t.TempDir(), instances(254, 2))
	got := addresses(r)
	a, b := netip.MustParseAddr(got[253]).As4(), netip.MustParseAddr(got[254]).As4()
	if a[3] != 254 || b[3] != 1 || int(b[1])<<8|int(b[2]) != int(a[1])<<8|int(a[2])+1 {
		t.Errorf("hosts 254 and 255: %s %s", got[253], got[254])
	}
}

// TestReleaseStopsProcesses: what a host's tasks left running is stopped,
// also a process that ignores TERM, before the working area goes.
func TestReleaseStopsProcesses(t *testing.T) {
	r := reserve(t, t.TempDir(), instances(2))
	var cmds []*exec.Cmd
	for i, script := range []string{"touch ready; exec sleep 300", `trap "" TERM; touch ready; sleep 300 & wait; sleep 300`} {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = r.Hosts[0][i].WorkDir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as e2c's background jobs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
		}
	}()
	for _, c := range cmds {
		for _, err := os.Stat(filepath.Join(c.Dir, "ready")); err != nil; _, err = os.Stat(filepath.Join(c.Dir, "ready")) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waited := make(chan error, len(cmds))
	for _, c := range cmds {
		go func() { waited <- c.Wait() }()
	}
	p := New()
	start := time.Now()
	if err := p.Release(context.Background(), r, io.Discard); err != nil {
		t.Fatal(err)
	}
	for range cmds {
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Fatal("a process of a working area still runs after release")
		}
	}
	if left := processesIn([]string{r.Hosts[0][0].WorkDir, r.Hosts[0][1].WorkDir}); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	if _, err := os.Stat(r.Hosts[0][0].WorkDir); !os.IsNotExist(err) {
		t.Errorf("working area: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
}

// TestReserveStartsEmpty: files left in a working area by a reservation
// whose record was lost are gone, so that they cannot stand in for
// artifacts a run did not copy.
func TestReserveStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "hosts", "edge-node-1-1", "quickstart")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("old binary"), 0o755)
	reserve(t, dir, instances(1))
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale file still there: %v", err)
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	r := reserve(t, dir, instances(1))
	v := provider{}
	if err := v.Verify(context.Background(), r, time.Hour); err != nil {
		t.Errorf("kept hosts: %v", err)
	}
	unclaim(dir)
	if err := v.Verify(context.Background(), r, time.Hour); err == nil || !strings.Contains(err.Error(), "no longer recorded") {
		t.Errorf("without their claim: %v", err)
	}
	old := &providers.Reservation{Provider: "local", State: json.RawMessage(`{"dirs":["` + r.Hosts[0][0].WorkDir + `"]}`)}
	if err := v.Verify(context.Background(), old, time.Hour); err == nil {
		t.Error("a reservation of an older e2c, without a claim, verified")
	}
}

func TestReleaseRefusesOtherFolders(t *testing.T) {
	p := New()
	dir := t.TempDir()
	r := &providers.Reservation{Provider: "local", State: json.RawMessage(`{"dirs":["` + dir + `"]}`)}
	if err := p.Release(context.Background(), r, io.Discard); err == nil {
		t.Fatal("released a folder that is not a host working area")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("folder removed: %v", err)
	}
}

func TestUnknownSetting(t *testing.T) {
	p := New()
	_, err := p.Reserve(context.Background(), providers.Request{StateDir: t.TempDir(), Settings: block(t, "job_nme: x")})
	want := `layers_services.yaml:1:1: local: unknown key "job_nme" (did you mean "job_name"?); expected one of: job_name`
	if err == nil || err.Error() != want {
		t.Fatalf("unknown setting: %v, want %s", err, want)
	}
}

// block is a local block of layers_services.yaml written as text.
func block(t *testing.T, text string) *schema.Testbed {
	t.Helper()
	tb, err := schema.TestbedBlock("layers_services.yaml", "local", text)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
