package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Labs of these tests live in 10.239.0.0/16 and fd00:e2c:a:ef00::/56, a
// /24 and a /64 per test, so that they run in parallel with each other and
// with other packages' labs.
func testOptions(t testing.TB, third int, hosts ...string) Options {
	return Options{
		Name:     fmt.Sprintf("test-%s-%d", t.Name(), os.Getpid()),
		Hosts:    hosts,
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 239, byte(third), 0}), 24),
		Subnet6:  netip.MustParsePrefix(fmt.Sprintf("fd00:e2c:a:ef%02x::/64", third)),
		StateDir: filepath.Join(t.TempDir(), "lab"),
	}
}

// needLabs skips tests that need a real lab where none can be made.
func needLabs(t testing.TB) {
	t.Helper()
	if err := Preflight(); err != nil {
		t.Skipf("skipping: netns labs cannot run here: %v", err)
	}
}

// createLab creates a lab that is removed when the test ends, however it
// ends.
func createLab(t testing.TB, o Options) *Lab {
	t.Helper()
	t.Cleanup(func() {
		if err := Cleanup(context.Background(), o.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	lab, err := Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// dial logs into a host as root, checking its key against the lab's
// known_hosts file.
func dial(t *testing.T, lab *Lab, addr netip.Addr, knownHostsFile string) (*ssh.Client, error) {
	t.Helper()
	key, err := os.ReadFile(lab.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	check, err := knownhosts.New(knownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", netip.AddrPortFrom(addr, 22).String(), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: check,
		Timeout:         10 * time.Second,
	})
}

// runOn runs a shell command on a host and returns its output.
func runOn(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return strings.TrimSpace(string(out)), err
}

func TestLab(t *testing.T) {
	needLabs(t)
	t.Parallel()
	o := testOptions(t, 1, "h1", "h2", "h3")
	lab := createLab(t, o)

	hosts := lab.Hosts()
	if len(hosts) != 3 {
		t.Fatalf("got %d hosts, want 3", len(hosts))
	}
	clients := map[string]*ssh.Client{}
	for i, h := range hosts {
		if h.Name != o.Hosts[i] || !o.Subnet.Contains(h.Address4) || !o.Subnet6.Contains(h.Address6) {
			t.Fatalf("host %d = %+v, want %s with addresses in %s and %s", i, h, o.Hosts[i], o.Subnet, o.Subnet6)
		}
		out, err := run(context.Background(), "", "ip", "-n", h.Namespace, "addr", "show", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []netip.Addr{h.Address4, h.Address6} {
			if !bytes.Contains(out, []byte(" "+a.String()+"/")) {
				t.Errorf("%s: eth0 lacks %s:\n%s", h.Name, a, out)
			}
		}
		// The machine reaches every host, over IPv4 and IPv6, and every
		// host proves it has the key known_hosts holds for it.
		for _, a := range []netip.Addr{h.Address6, h.Address4} {
			c, err := dial(t, lab, a, lab.KnownHostsFile())
			if err != nil {
				t.Fatalf("ssh root@%s (%s): %v", a, h.Name, err)
			}
			t.Cleanup(func() { c.Close() })
			clients[h.Name] = c
		}
		if out, err := runOn(t, clients[h.Name], "hostname"); err != nil || out != h.Name {
			t.Errorf("%s: hostname = %q, %v", h.Name, out, err)
		}
	}
	h1, h2 := hosts[0], hosts[1]

	// Host key checking is strict: h1's key is not accepted for h2.
	var wrong bytes.Buffer
	data, _ := os.ReadFile(lab.KnownHostsFile())
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, h1.Address4.String()+",") {
			wrong.WriteString(strings.Replace(line, h1.Address4.String()+",", h2.Address4.String()+",", 1) + "\n")
		}
	}
	wrongFile := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(wrongFile, wrong.Bytes(), 0o600)
	if c, err := dial(t, lab, h2.Address4, wrongFile); err == nil {
		c.Close()
		t.Errorf("ssh to %s succeeded with %s's host key in known_hosts", h2.Name, h1.Name)
	} else if !strings.Contains(err.Error(), "key mismatch") {
		t.Errorf("ssh with the wrong host key: %v, want a key mismatch", err)
	}

	// Each host has its own /tmp and /opt.
	file := fmt.Sprintf("e2c-netns-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	if out, err := runOn(t, clients["h1"], "echo x >/tmp/"+file+" && echo y >/opt/"+file); err != nil {
		t.Fatalf("writing on h1: %v: %s", err, out)
	}
	if out, err := runOn(t, clients["h1"], "cat /tmp/"+file+" /opt/"+file); err != nil || out != "x\ny" {
		t.Errorf("reading back on h1: %q, %v", out, err)
	}
	if out, err := runOn(t, clients["h2"], "ls /tmp/"+file+" /opt/"+file); err == nil {
		t.Errorf("h2 sees h1's files: %s", out)
	}
	for _, d := range []string{"/tmp", "/opt"} {
		if _, err := os.Stat(filepath.Join(d, file)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the machine sees h1's %s/%s: %v", d, file, err)
		}
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, "hosts", "h1", "tmp", file)); err != nil {
		t.Errorf("h1's /tmp is not its host directory: %v", err)
	}

	// Hosts reach each other, by address and by name, from inside their
	// namespaces.
	cmd := fmt.Sprintf("exec 3<>/dev/tcp/%s/22 && head -c 7 <&3", h2.Address4)
	if out, err := runOn(t, clients["h1"], "timeout 10 bash -c '"+cmd+"'"); err != nil || out != "SSH-2.0" {
		t.Errorf("h1 -> h2:22 = %q, %v; want the SSH banner", out, err)
	}
	if out, err := runOn(t, clients["h1"], "getent ahostsv4 h2 | head -n 1"); err != nil || !strings.HasPrefix(out, h2.Address4.String()+" ") {
		t.Errorf("h1 resolves h2 to %q, %v; want %s", out, err, h2.Address4)
	}

	// Destroy removes everything, and can be called again.
	for _, c := range clients {
		c.Close()
	}
	start := time.Now()
	if err := lab.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("destroyed 3 hosts in %v", time.Since(start).Round(time.Millisecond))
	assertGone(t, &lab.rec, true)
	if err := lab.Destroy(context.Background()); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// assertGone checks that nothing of a lab is left on the system, nor, if
// files is set, in its state directory.
func assertGone(t *testing.T, r *record, files bool) {
	t.Helper()
	if nss, _ := namespaces(r.prefix()); len(nss) > 0 {
		t.Errorf("namespaces left: %v", nss)
	}
	if ls, err := links(context.Background(), r.prefix()); err != nil || len(ls) > 0 {
		t.Errorf("links left: %v %v", ls, err)
	}
	if pids := processes(nil, r.viewDir()+"/"); len(pids) > 0 {
		t.Errorf("sshds left: %v", pids)
	}
	if pids := processes(nil, r.StateDir); len(pids) > 0 {
		t.Errorf("sshds left: %v", pids)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{r.prefix(), r.StateDir, r.viewDir()} {
		if bytes.Contains(mounts, []byte(s)) {
			t.Errorf("mounts of %s left:\n%s", s, mounts)
		}
	}
	for _, f := range []string{r.viewDir(), r.runRecord()} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left: %v", f, err)
		}
	}
	if _, err := os.Stat(r.StateDir); files && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state directory %s left: %v", r.StateDir, err)
	}
}

func TestCleanupAfterCrash(t *testing.T) {
	needLabs(t)
	t.Parallel()
	o := testOptions(t, 2, "a", "b")
	lab := createLab(t, o)
	r := lab.rec
	// A process started on a host, as a service would be, dies too.
	if out, err := run(context.Background(), "", "ip", "netns", "exec", r.Hosts[0].Namespace,
		"sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!"); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("started sleep %s in %s", bytes.TrimSpace(out), r.Hosts[0].Name)
	}
	lab = nil
	if err := Cleanup(context.Background(), o.Name); err != nil {
		t.Fatal(err)
	}
	assertGone(t, &r, true)
	if err := Cleanup(context.Background(), o.Name); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

func TestCleanupWithoutRecord(t *testing.T) {
	needLabs(t)
	t.Parallel()
	o := testOptions(t, 3, "a", "b")
	lab := createLab(t, o)
	r := lab.rec
	// Without the machine's record, Cleanup still finds the namespaces,
	// links and sshds; only the state directory stays.
	if err := os.Remove(r.runRecord()); err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(context.Background(), o.Name); err != nil {
		t.Fatal(err)
	}
	assertGone(t, &r, false)
	if err := lab.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, &r, true)
}

// TestCreateFails checks that a Create that fails half way leaves nothing
// behind: here it is cancelled once its first sshd runs, while it starts
// the others.
func TestCreateFails(t *testing.T) {
	needLabs(t)
	t.Parallel()
	var hosts []string
	for k := range 8 {
		hosts = append(hosts, fmt.Sprint("h", k))
	}
	o := testOptions(t, 8, hosts...)
	t.Cleanup(func() { Cleanup(context.Background(), o.Name) })
	r, _ := newRecord(o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(r.hostDir("h0"), "sshd.pid")); err == nil {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	lab, err := Create(ctx, o)
	if err == nil {
		lab.Destroy(context.Background())
		t.Skip("skipping: Create finished before being cancelled")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v, want it cancelled", err)
	}
	assertGone(t, r, true)
}

func TestRefused(t *testing.T) {
	needLabs(t)
	t.Parallel()
	o := testOptions(t, 4, "a")
	createLab(t, o)

	b := testOptions(t, 5, "a")
	b.Name += "-b"
	b.Subnet = netip.MustParsePrefix("10.239.4.128/25")
	_, err := Create(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "subnet 10.239.4.128/25 overlaps the route to 10.239.4.0/24") {
		t.Errorf("overlapping subnet: %v", err)
	}
	b.Subnet, b.Subnet6 = netip.MustParsePrefix("10.239.5.0/24"), o.Subnet6
	_, err = Create(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "subnet6 "+o.Subnet6.String()+" overlaps") {
		t.Errorf("overlapping subnet6: %v", err)
	}
	if _, err := os.Stat(b.StateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused lab wrote its state directory: %v", err)
	}

	again := testOptions(t, 6, "a")
	_, err = Create(context.Background(), again)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second lab of the same name: %v", err)
	}
	// The refusal destroyed nothing of the first lab.
	if nss, _ := namespaces("e2c" + labID(o.Name)); len(nss) != 1 {
		t.Errorf("namespaces of the first lab: %v", nss)
	}
}

func TestOptionsChecked(t *testing.T) {
	ok := Options{Name: "x", Hosts: []string{"a"}}
	for _, c := range []struct {
		edit func(*Options)
		want string
	}{
		{func(o *Options) { o.Name = "" }, "needs a name"},
		{func(o *Options) { o.Hosts = nil }, "at least one host"},
		{func(o *Options) { o.Hosts = []string{"a", "a"} }, `"a" given twice`},
		{func(o *Options) { o.Hosts = []string{"a b"} }, `host name "a b"`},
		{func(o *Options) { o.Subnet = netip.MustParsePrefix("8.8.8.0/24") }, "expected a private IPv4 range"},
		{func(o *Options) { o.Subnet = netip.MustParsePrefix("fd00::/64") }, "expected a private IPv4 range"},
		{func(o *Options) { o.Subnet6 = netip.MustParsePrefix("2001:db8::/64") }, "unique local"},
		{func(o *Options) { o.Subnet = netip.MustParsePrefix("10.1.1.0/31") }, "too small for 1 hosts"},
		{func(o *Options) {
			o.Subnet = netip.MustParsePrefix("10.1.1.0/29")
			o.Hosts = strings.Fields("a b c d e f")
		}, "too small for 6 hosts"},
	} {
		o := ok
		c.edit(&o)
		if _, err := newRecord(o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", o, err, c.want)
		}
	}

	r, err := newRecord(Options{Name: "x", Hosts: []string{"a", "b"}, Subnet: netip.MustParsePrefix("10.1.2.3/24")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Subnet.String() != "10.1.2.0/24" || r.Subnet6.String() != "fd00:e2c:a01:200::/64" ||
		r.Hosts[1].Address4.String() != "10.1.2.3" || r.Hosts[1].Address6.String() != "fd00:e2c:a01:200::3" {
		t.Errorf("addresses: %+v", r)
	}
	if d, _ := newRecord(ok); d.Subnet != DefaultSubnet || d.Subnet6 != DefaultSubnet6 {
		t.Errorf("defaults: %s %s", d.Subnet, d.Subnet6)
	}
	if n := len(r.veth(Host{Slot: 999})); n > 15 {
		t.Errorf("interface name %s is %d bytes", r.veth(Host{Slot: 999}), n)
	}
}

func TestCheckOverlap(t *testing.T) {
	var rs []route
	json.Unmarshal([]byte(`[{"dst":"default","gateway":"10.0.0.1","dev":"eth0"},
		{"dst":"fe80::/64","dev":"eth0"},{"dst":"192.168.1.0/24","dev":"eth0"},{"dst":"10.9.9.9","dev":"tun0"}]`), &rs)
	for p, want := range map[string]string{
		"10.231.0.0/16":  "",
		"192.168.0.0/16": "subnet 192.168.0.0/16 overlaps the route to 192.168.1.0/24 (dev eth0)",
		"10.9.0.0/16":    "overlaps the route to 10.9.9.9/32 (dev tun0)",
		"fd00:e2c::/64":  "",
		"fe80::/10":      "",
	} {
		err := checkOverlap(netip.MustParsePrefix(p), rs)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", p, err, want)
		}
	}
}

func TestLabJSON(t *testing.T) {
	r, err := newRecord(Options{Name: "x", Hosts: []string{"a"}, StateDir: "/s"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(&Lab{rec: *r})
	if err != nil {
		t.Fatal(err)
	}
	var l Lab
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatal(err)
	}
	if l.Name() != "x" || l.StateDir() != "/s" || l.Hosts()[0] != r.Hosts[0] || l.rec.Subnet6 != r.Subnet6 {
		t.Errorf("round trip: %s -> %+v", data, l.rec)
	}
	if err := json.Unmarshal([]byte(`{"name":"x","id":"00000000"}`), &l); err == nil {
		t.Error("a record whose id does not match its name was accepted")
	}
}

// TestScale reports how long labs of 8 and 64 hosts take to create and
// destroy. It runs alone, before the parallel tests, for honest timings.
func TestScale(t *testing.T) {
	needLabs(t)
	for i, n := range []int{8, 64} {
		var hosts []string
		for k := range n {
			hosts = append(hosts, fmt.Sprintf("host-%d", k+1))
		}
		o := testOptions(t, 10+i, hosts...)
		o.Name += fmt.Sprint(n)
		start := time.Now()
		lab := createLab(t, o)
		created := time.Since(start)
		start = time.Now()
		if err := lab.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d hosts: created in %v, destroyed in %v", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		assertGone(t, &lab.rec, true)
	}
}

// TestPreflightMessage checks that a machine without the tools is told
// what to install.
func TestPreflightMessage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Preflight()
	if err == nil {
		t.Fatal("Preflight passed with an empty PATH")
	}
	for _, want := range []string{"ip: apt-get install iproute2", "unshare: apt-get install util-linux", "mount: apt-get install mount"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}

// TestCreateJournalsFirst: the journal has the lab's whole record before
// anything of it exists on the system, so that a caller killed at any later
// point can destroy it from that record; a journal that fails stops Create
// with nothing created.
func TestCreateJournalsFirst(t *testing.T) {
	needLabs(t)
	o := testOptions(t, 40, "h1", "h2")
	var journaled *Lab
	o.Journal = func(l *Lab) error {
		nss, _ := namespaces(l.rec.prefix())
		ls, _ := links(context.Background(), l.rec.prefix())
		if _, err := os.Stat(l.rec.stateFile("lab.json")); err == nil || len(nss) > 0 || len(ls) > 0 {
			t.Errorf("journaled after creating: files %v, namespaces %v, links %v", err, nss, ls)
		}
		data, err := json.Marshal(l)
		if err != nil {
			return err
		}
		journaled = &Lab{}
		return json.Unmarshal(data, journaled)
	}
	lab := createLab(t, o)
	if journaled == nil || journaled.Name() != lab.Name() || len(journaled.Hosts()) != 2 || journaled.Hosts()[1] != lab.Hosts()[1] {
		t.Fatalf("journaled %+v", journaled)
	}
	// The journaled record alone tears the lab down.
	if err := journaled.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if nss, _ := namespaces(lab.rec.prefix()); len(nss) > 0 {
		t.Errorf("left after destroying from the journal: %v", nss)
	}

	o = testOptions(t, 41, "h1")
	o.Journal = func(*Lab) error { return errors.New("disk full") }
	if _, err := Create(context.Background(), o); err == nil || !strings.Contains(err.Error(), "recording the lab before creating it: disk full") {
		t.Errorf("a failing journal: %v", err)
	}
	r, _ := newRecord(o)
	if nss, _ := namespaces(r.prefix()); len(nss) > 0 {
		t.Errorf("created despite the failing journal: %v", nss)
	}
	if _, err := os.Stat(o.StateDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state dir written despite the failing journal: %v", err)
	}
}

// TestChooseSubnet: a lab given no subnet takes the first free /16 from
// 10.231.0.0/16 on (the emulated twin of a second scenario beside a
// first's); a subnet given is kept, or refused if taken.
func TestChooseSubnet(t *testing.T) {
	taken := func(dsts ...string) (rs []route) {
		for _, d := range dsts {
			rs = append(rs, route{Dst: d, Dev: "e2cx-br"})
		}
		return rs
	}
	hosts := []string{"a", "b"}
	for _, c := range []struct {
		name       string
		subnet     string
		rt4, rt6   []route
		want, fail string
	}{
		{name: "default free", want: "10.231.0.0/16"},
		{name: "default taken", rt4: taken("10.231.0.0/16", "10.232.4.0/24"), rt6: taken("fd00:e2c::/64"), want: "10.233.0.0/16"},
		{name: "default's IPv6 taken", rt6: taken("fd00:e2c::/64"), want: "10.232.0.0/16"},
		{name: "given and taken", subnet: "10.231.7.0/24", rt4: taken("10.231.0.0/16"), fail: "subnet 10.231.7.0/24 overlaps the route to 10.231.0.0/16 (dev e2cx-br)"},
		{name: "all taken", rt4: taken("10.0.0.0/8"), fail: "and so do 10.232.0.0/16 to 10.254.0.0/16: set a subnet"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Name: "x", Hosts: hosts}
			if c.subnet != "" {
				o.Subnet = netip.MustParsePrefix(c.subnet)
			}
			r, err := chooseSubnet(o, c.rt4, c.rt6)
			if c.fail != "" {
				if err == nil || !strings.Contains(err.Error(), c.fail) {
					t.Fatalf("error %v, want %q", err, c.fail)
				}
				return
			}
			if err != nil || r.Subnet.String() != c.want || r.Hosts[0].Address4.String() != strings.TrimSuffix(c.want, "0/16")+"2" {
				t.Fatalf("record %+v, %v; want subnet %s", r, err, c.want)
			}
		})
	}
}
