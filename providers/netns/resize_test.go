package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

// resizeRequest asks for quantity producers on a lab in 10.239.third.0/bits.
func resizeRequest(t *testing.T, third, bits, quantity int) providers.Request {
	return providers.Request{
		Experiment: fmt.Sprintf("test-%s-%d", t.Name(), os.Getpid()),
		StateDir:   filepath.Join(t.TempDir(), "state"),
		Settings:   block(t, fmt.Sprintf("{subnet: 10.239.%d.0/%d, subnet6: 'fd00:e2c:a:ef%02x::/64'}", third, bits, third)),
		Instances:  []plan.Instance{{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: quantity}}},
	}
}

// reserveLab reserves req, released when the test ends however it ends.
func reserveLab(t *testing.T, req providers.Request) *providers.Reservation {
	t.Helper()
	t.Cleanup(func() { Cleanup(context.Background(), req.Experiment+"@"+req.StateDir) })
	r, err := New().Reserve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resize resizes r to quantity producers, keeping keep.
func resize(t *testing.T, r *providers.Reservation, req providers.Request, quantity int, keep ...providers.Host) error {
	t.Helper()
	req.Instances = []plan.Instance{{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: quantity}}}
	return New().(providers.Resizer).Resize(context.Background(), r, req, [][]providers.Host{keep})
}

func labOfT(t *testing.T, r *providers.Reservation) *Lab {
	t.Helper()
	lab, err := labOf(r)
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// sshdPID is the pid of host h's sshd.
func sshdPID(t *testing.T, lab *Lab, h string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lab.rec.hostDir(h), "sshd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || !alive(pid) {
		t.Fatalf("sshd of %s: pid %q, %v", h, data, err)
	}
	return pid
}

// hostOf is the lab's host named name.
func hostOf(t *testing.T, lab *Lab, name string) Host {
	t.Helper()
	i := slices.IndexFunc(lab.rec.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		t.Fatalf("lab has no host %s", name)
	}
	return lab.rec.Hosts[i]
}

// answers checks that h answers over SSH with its name, and that its
// /etc/hosts names want and not unwanted.
func answers(t *testing.T, lab *Lab, h providers.Host, want []string, unwanted ...string) {
	t.Helper()
	c, err := dial(t, lab, hostOf(t, lab, h.Name).Address4, lab.KnownHostsFile())
	if err != nil {
		t.Fatalf("ssh %s: %v", h.Name, err)
	}
	defer c.Close()
	if out, err := runOn(t, c, "hostname"); err != nil || out != h.Name {
		t.Errorf("%s: hostname %q, %v", h.Name, out, err)
	}
	out, err := runOn(t, c, "cat /etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(out, "\t"+w+"\n") {
			t.Errorf("%s: /etc/hosts lacks %s:\n%s", h.Name, w, out)
		}
	}
	for _, w := range unwanted {
		if strings.Contains(out, "\t"+w+"\n") {
			t.Errorf("%s: /etc/hosts still names %s:\n%s", h.Name, w, out)
		}
	}
}

// TestResize grows a lab from 2 hosts to 5 and shrinks it to 3: kept hosts
// keep their sshd and addresses; new ones answer over SSH, named and
// addressed afresh; removed ones leave no namespace, link, process, mount
// or file; the lab released afterwards leaves nothing.
func TestResize(t *testing.T) {
	needLabs(t)
	req := resizeRequest(t, 70, 24, 2)
	r := reserveLab(t, req)
	lab := labOfT(t, r)
	old := slices.Clone(r.Hosts[0])
	pids := map[string]int{}
	for _, h := range old {
		pids[h.Name] = sshdPID(t, lab, h.Name)
	}

	var journaled *Lab
	grow := req
	grow.Journal = func(s json.RawMessage) error {
		journaled = &Lab{}
		if err := json.Unmarshal(s, journaled); err != nil {
			return err
		}
		for _, h := range journaled.rec.Hosts[2:] {
			if _, err := os.Stat(filepath.Join(netnsDir, h.Namespace)); err == nil {
				t.Errorf("%s exists before it is journaled", h.Name)
			}
		}
		return nil
	}
	start := time.Now()
	if err := resize(t, r, grow, 5, old...); err != nil {
		t.Fatal(err)
	}
	t.Logf("2 -> 5 hosts: %v", time.Since(start).Round(time.Millisecond))
	if journaled == nil || len(journaled.rec.Hosts) != 5 {
		t.Fatalf("journaled %+v", journaled)
	}
	lab = labOfT(t, r)
	hosts := r.Hosts[0]
	if got := names(hosts); !slices.Equal(got, []string{"edge-producer-1-1", "edge-producer-1-2", "edge-producer-1-3", "edge-producer-1-4", "edge-producer-1-5"}) {
		t.Fatalf("hosts %v", got)
	}
	for i, h := range old {
		if fmt.Sprint(hosts[i]) != fmt.Sprint(h) || sshdPID(t, lab, h.Name) != pids[h.Name] {
			t.Errorf("kept host %s changed: %+v, was %+v", h.Name, hosts[i], h)
		}
	}
	for _, h := range hosts {
		answers(t, lab, h, []string{"edge-producer-1-1", "edge-producer-1-5"})
	}

	// 5 -> 3: the second and fourth go, with a process left on one and a
	// dockerd on the other.
	gone := []providers.Host{hosts[1], hosts[3]}
	goneRec := []Host{hostOf(t, lab, gone[0].Name), hostOf(t, lab, gone[1].Name)}
	if _, err := run(context.Background(), "", "ip", "netns", "exec", goneRec[0].Namespace,
		"sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	withDocker := CheckDocker() == nil
	if withDocker {
		if err := New().(providers.DockerProvider).ProvideDocker(context.Background(), r, []string{gone[1].Name}, nil, io.Discard); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("no dockerd on a removed host: %v", CheckDocker())
	}
	ids := map[fileID]bool{}
	for _, h := range goneRec {
		id, _ := statID(filepath.Join(netnsDir, h.Namespace))
		ids[id] = true
	}
	kept := []providers.Host{hosts[0], hosts[2], hosts[4]}
	start = time.Now()
	if err := resize(t, r, req, 3, kept...); err != nil {
		t.Fatal(err)
	}
	t.Logf("5 -> 3 hosts (a dockerd stopped: %v): %v", withDocker, time.Since(start).Round(time.Millisecond))
	if fmt.Sprint(r.Hosts[0]) != fmt.Sprint(kept) {
		t.Errorf("hosts %+v, want %+v", r.Hosts[0], kept)
	}
	lab = labOfT(t, r)
	if pids := processes(ids, lab.rec.viewFile("hosts", gone[0].Name)+"/", lab.rec.viewFile("hosts", gone[1].Name)+"/"); len(pids) > 0 {
		t.Errorf("processes of removed hosts left: %v", pids)
	}
	ls, _ := links(context.Background(), lab.rec.prefix())
	for _, h := range goneRec {
		if _, err := os.Stat(filepath.Join(netnsDir, h.Namespace)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace of %s left: %v", h.Name, err)
		}
		if slices.Contains(ls, lab.rec.veth(h)) {
			t.Errorf("veth of %s left", h.Name)
		}
		for _, d := range []string{lab.rec.hostDir(h.Name), dockerdOf(&lab.rec, h).run, dockerdOf(&lab.rec, h).data} {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left: %v", d, err)
			}
		}
	}
	if len(ls) != 4 {
		t.Errorf("links %v, want the bridge and 3 veths", ls)
	}
	for _, h := range kept {
		answers(t, lab, h, []string{"edge-producer-1-5"}, gone[0].Name, gone[1].Name)
	}

	// 3 -> 4: a new name, and an address no host had.
	if err := resize(t, r, req, 4, r.Hosts[0]...); err != nil {
		t.Fatal(err)
	}
	lab = labOfT(t, r)
	if h := r.Hosts[0][3]; h.Name != "edge-producer-1-6" || h.Address4 != "10.239.70.7" {
		t.Errorf("new host %+v, want edge-producer-1-6 at 10.239.70.7", h.Machine)
	}
	answers(t, lab, r.Hosts[0][3], []string{"edge-producer-1-1", "edge-producer-1-6"})

	// Released from its saved state, nothing is left.
	data, _ := json.Marshal(r)
	var saved providers.Reservation
	json.Unmarshal(data, &saved)
	if err := New().Release(context.Background(), &saved, io.Discard); err != nil {
		t.Fatal(err)
	}
	assertGone(t, &lab.rec, true)
	for _, d := range []string{filepath.Join(dockerRunDir, lab.rec.ID), filepath.Join(dockerDataDir, lab.rec.ID)} {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left: %v", d, err)
		}
	}
}

func names(hs []providers.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

// TestResizeRefused: more hosts than the lab's subnet holds, or hosts it
// does not have, are refused before anything changes.
func TestResizeRefused(t *testing.T) {
	needLabs(t)
	req := resizeRequest(t, 71, 29, 2) // a /29 holds 5 hosts
	r := reserveLab(t, req)
	lab := labOfT(t, r)
	before, _ := json.Marshal(r)
	pid := sshdPID(t, lab, r.Hosts[0][1].Name)
	for _, c := range []struct {
		quantity int
		keep     []providers.Host
		want     string
	}{
		{6, r.Hosts[0][:1], `netns: lab "` + lab.Name() + `" keeps 1 hosts and is asked for 5 more: subnet 10.239.71.0/29 is too small for 6 hosts (it holds 5)`},
		{1, r.Hosts[0], "netns: edge.producer.1: keeps 2 hosts, more than its quantity 1"},
		{2, []providers.Host{{Machine: plan.Machine{Name: "other"}}}, `host "other" to keep is not one of the reservation`},
	} {
		err := resize(t, r, req, c.quantity, c.keep...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if now, _ := json.Marshal(r); string(now) != string(before) {
			t.Errorf("reservation changed: %s", now)
		}
	}
	if sshdPID(t, lab, r.Hosts[0][1].Name) != pid {
		t.Error("a host was touched")
	}
	if err := (provider{}).CheckSettings(req.Settings, []plan.Instance{{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: 6}}}); err == nil ||
		!strings.Contains(err.Error(), "subnet 10.239.71.0/29 is too small for 6 hosts") {
		t.Errorf("CheckSettings: %v", err)
	}
}

// TestResizeReusesAddress: a full lab gives a removed host's address
// again; the kept hosts reach the new host there at once, not the removed
// one's link-layer address they had.
func TestResizeReusesAddress(t *testing.T) {
	needLabs(t)
	req := resizeRequest(t, 72, 29, 5)
	r := reserveLab(t, req)
	lab := labOfT(t, r)
	first, last := r.Hosts[0][0], r.Hosts[0][4]
	c, err := dial(t, lab, hostOf(t, lab, first.Name).Address4, lab.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	banner := fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 7 <&3'", last.Address4)
	if out, err := runOn(t, c, banner); err != nil || out != "SSH-2.0" {
		t.Fatalf("%s -> %s: %q, %v", first.Name, last.Name, out, err)
	}
	if err := resize(t, r, req, 4, r.Hosts[0][:4]...); err != nil {
		t.Fatal(err)
	}
	if err := resize(t, r, req, 5, r.Hosts[0]...); err != nil {
		t.Fatal(err)
	}
	if h := r.Hosts[0][4]; h.Name != "edge-producer-1-6" || h.Address4 != last.Address4 {
		t.Fatalf("new host %+v, want edge-producer-1-6 at %s", h.Machine, last.Address4)
	}
	if out, err := runOn(t, c, banner); err != nil || out != "SSH-2.0" {
		t.Errorf("%s -> the new host at %s: %q, %v", first.Name, last.Address4, out, err)
	}
}

// TestResizeJournalFails: a journal that fails stops the resize with the
// kept hosts, the removed one gone and nothing created.
func TestResizeJournalFails(t *testing.T) {
	needLabs(t)
	req := resizeRequest(t, 73, 24, 2)
	r := reserveLab(t, req)
	gone := hostOf(t, labOfT(t, r), r.Hosts[0][1].Name)
	failing := req
	failing.Journal = func(json.RawMessage) error { return errors.New("disk full") }
	err := resize(t, r, failing, 3, r.Hosts[0][0])
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("resize: %v", err)
	}
	lab := labOfT(t, r)
	if len(r.Hosts[0]) != 1 || len(lab.rec.Hosts) != 1 {
		t.Errorf("hosts %+v, lab %+v; want the kept one", r.Hosts, lab.rec.Hosts)
	}
	if nss, _ := namespaces(lab.rec.prefix()); len(nss) != 1 {
		t.Errorf("namespaces %v, want the kept host's", nss)
	}
	if _, err := os.Stat(lab.rec.hostDir(gone.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed host's files: %v", err)
	}
}

// TestResizeScale reports how long adding 4 and 32 hosts to a running lab
// of 2 takes (until every new sshd accepts connections), and removing them
// again. It runs alone, for honest timings.
func TestResizeScale(t *testing.T) {
	needLabs(t)
	for i, n := range []int{4, 32} {
		req := resizeRequest(t, 74+i, 24, 2)
		req.Experiment += strconv.Itoa(n)
		r := reserveLab(t, req)
		kept := slices.Clone(r.Hosts[0])
		start := time.Now()
		if err := resize(t, r, req, 2+n, kept...); err != nil {
			t.Fatal(err)
		}
		added := time.Since(start)
		lab := labOfT(t, r)
		answers(t, lab, r.Hosts[0][len(r.Hosts[0])-1], []string{kept[0].Name})
		start = time.Now()
		if err := resize(t, r, req, 2, kept...); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d hosts added to 2 in %v, removed in %v", n, added.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		if nss, _ := namespaces(lab.rec.prefix()); len(nss) != 2 {
			t.Errorf("namespaces %v, want the 2 kept", nss)
		}
	}
}

// TestResizeCancelled: a resize cancelled while it starts the new hosts'
// sshds frees every new host, and leaves the kept ones running.
func TestResizeCancelled(t *testing.T) {
	needLabs(t)
	req := resizeRequest(t, 76, 24, 2)
	r := reserveLab(t, req)
	lab := labOfT(t, r)
	pid := sshdPID(t, lab, r.Hosts[0][0].Name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(lab.rec.hostDir("edge-producer-1-3"), "sshd.pid")); err == nil {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	req.Instances = []plan.Instance{{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: 10}}}
	err := New().(providers.Resizer).Resize(ctx, r, req, r.Hosts)
	if err == nil {
		t.Skip("skipping: the resize finished before being cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("resize: %v, want it cancelled", err)
	}
	lab = labOfT(t, r)
	if len(r.Hosts[0]) != 2 || len(lab.rec.Hosts) != 2 {
		t.Fatalf("hosts %v, lab %+v; want the 2 kept", names(r.Hosts[0]), lab.rec.Hosts)
	}
	if nss, _ := namespaces(lab.rec.prefix()); len(nss) != 2 {
		t.Errorf("namespaces %v, want the 2 kept", nss)
	}
	if ents, _ := os.ReadDir(filepath.Join(lab.StateDir(), "hosts")); len(ents) != 2 {
		t.Errorf("host folders %v, want the 2 kept", ents)
	}
	if sshdPID(t, lab, r.Hosts[0][0].Name) != pid {
		t.Error("a kept host's sshd changed")
	}
	answers(t, lab, r.Hosts[0][1], []string{r.Hosts[0][0].Name}, "edge-producer-1-3")
}
