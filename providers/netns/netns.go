// Package netns emulates a cluster on one Linux machine: each host is a
// network namespace with its own address on a bridge, its own sshd, and its
// own /tmp and /opt, so that scenarios written for real clusters run
// unchanged and end-to-end tests need no testbed.
//
// Everything a lab creates on the system is named from a short hash of its
// name, so that Cleanup can find the leftovers of a crashed run from the
// system itself, and so that interface names stay within 15 bytes.
package netns

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
)

// Defaults for Options.Subnet and Options.Subnet6.
var (
	DefaultSubnet  = netip.MustParsePrefix("10.231.0.0/16")
	DefaultSubnet6 = netip.MustParsePrefix("fd00:e2c::/64")
)

// runDir holds, for each live lab, a copy of its record (found by Cleanup
// from the name alone) and an empty directory its sshds see the state
// directory through. It is on tmpfs, like the namespaces, so both vanish
// together at reboot.
const runDir = "/run/e2c-netns"

// Options describe a lab of emulated hosts.
type Options struct {
	// Name names everything the lab creates; labs of different names can
	// live side by side.
	Name string
	// Hosts are the host names, in order. They become hostnames, so they
	// are letters, digits, '.', '_' and '-', at most 63 bytes.
	Hosts []string
	// Subnet is the IPv4 range of the lab: the bridge gets its first
	// address, hosts the next ones. It must be private and must not
	// overlap a route of the machine. Default DefaultSubnet.
	Subnet netip.Prefix
	// Subnet6 is the IPv6 range, a ULA prefix. Default DefaultSubnet6 with
	// the default Subnet, otherwise a /64 of fd00:e2c::/32 derived from
	// Subnet, so that labs on distinct IPv4 subnets also differ in IPv6.
	Subnet6 netip.Prefix
	// StateDir holds the lab's files: keys, sshd configs, per-host /tmp and
	// /opt, pids, logs and the record of what was created. Default: a
	// directory named after the lab in os.TempDir().
	StateDir string
	// Journal, if set, is given the lab's record before anything is
	// created, so that a caller killed during Create still knows what to
	// Destroy. Its error stops Create with nothing created.
	Journal func(*Lab) error
}

// Host is one emulated host.
type Host struct {
	Name      string     `json:"name"`
	Namespace string     `json:"namespace"`
	Address4  netip.Addr `json:"address4"`
	Address6  netip.Addr `json:"address6"`
	// Slot numbers the host's veth, dockerd and addresses: the n-th host
	// of a new lab has slot n, a host added later the next free one.
	Slot int `json:"slot,omitempty"`
}

// Lab is a set of emulated hosts. It marshals to JSON as the record of what
// it created, so that another process can unmarshal it and Destroy it.
type Lab struct {
	rec record
}

// record is everything needed to tear a lab down.
type record struct {
	Name     string       `json:"name"`
	ID       string       `json:"id"`
	Subnet   netip.Prefix `json:"subnet"`
	Subnet6  netip.Prefix `json:"subnet6"`
	StateDir string       `json:"state_dir"`
	// OwnsStateDir says Create made StateDir, so Destroy removes it.
	OwnsStateDir bool   `json:"owns_state_dir,omitempty"`
	Hosts        []Host `json:"hosts"`
	// Slots is the highest slot a host of the lab had: added hosts take
	// slots past it while there are, so that a removed host's addresses
	// are not soon given again.
	Slots int `json:"slots,omitempty"`
	// Retired names the hosts removed from the lab, whose names are not
	// given again.
	Retired []string `json:"retired,omitempty"`
}

var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// labID is the short hash all system names of lab name derive from.
func labID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:4])
}

// Names on the system: the prefix is 12 bytes, which leaves room for "br"
// or a host number up to 999 within the 15 bytes of an interface name.
func (r *record) prefix() string            { return "e2c" + r.ID + "-" }
func (r *record) bridge() string            { return r.prefix() + "br" }
func (r *record) veth(h Host) string        { return r.prefix() + strconv.Itoa(h.Slot) }
func (r *record) viewDir() string           { return filepath.Join(runDir, r.ID) }
func (r *record) runRecord() string         { return filepath.Join(runDir, r.ID+".json") }
func (r *record) stateFile(n string) string { return filepath.Join(r.StateDir, n) }
func (r *record) hostDir(h string) string   { return filepath.Join(r.StateDir, "hosts", h) }

// viewFile is where sshds, whose /tmp and /opt are replaced, see a file of
// the state directory.
func (r *record) viewFile(parts ...string) string {
	return filepath.Join(append([]string{r.viewDir()}, parts...)...)
}

// newRecord checks o and works out every name and address of the lab.
func newRecord(o Options) (*record, error) {
	if o.Name == "" {
		return nil, errors.New("netns: the lab needs a name")
	}
	if len(o.Hosts) == 0 {
		return nil, errors.New("netns: the lab needs at least one host")
	}
	seen := map[string]bool{}
	for _, h := range o.Hosts {
		if !hostNameRE.MatchString(h) {
			return nil, fmt.Errorf("netns: host name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 bytes", h)
		}
		if seen[h] {
			return nil, fmt.Errorf("netns: host name %q given twice", h)
		}
		seen[h] = true
	}
	r := &record{Name: o.Name, ID: labID(o.Name), Subnet: o.Subnet, Subnet6: o.Subnet6}
	if !r.Subnet.IsValid() {
		r.Subnet = DefaultSubnet
	}
	r.Subnet = r.Subnet.Masked()
	if a := r.Subnet.Addr(); !a.Is4() || !a.IsPrivate() {
		return nil, fmt.Errorf("netns: subnet %s: expected a private IPv4 range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)", r.Subnet)
	}
	if !r.Subnet6.IsValid() {
		r.Subnet6 = defaultSubnet6(r.Subnet)
	}
	r.Subnet6 = r.Subnet6.Masked()
	if a := r.Subnet6.Addr(); !a.Is6() || a.Is4In6() || !a.IsPrivate() {
		return nil, fmt.Errorf("netns: subnet6 %s: expected an IPv6 unique local range (within fc00::/7)", r.Subnet6)
	}
	if err := r.fits(len(o.Hosts)); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	r.StateDir = o.StateDir
	if r.StateDir == "" {
		r.StateDir = filepath.Join(os.TempDir(), "e2c-netns-"+r.ID)
	}
	dir, err := filepath.Abs(r.StateDir)
	if err != nil {
		return nil, fmt.Errorf("netns: state dir: %w", err)
	}
	r.StateDir = dir
	for i, h := range o.Hosts {
		r.Hosts = append(r.Hosts, r.newHost(h, i+1))
	}
	r.Slots = len(r.Hosts)
	return r, nil
}

// newHost is host name at slot n: the n-th address after the bridge's.
func (r *record) newHost(name string, n int) Host {
	a4, a6 := r.Subnet.Addr().Next(), r.Subnet6.Addr().Next()
	for range n {
		a4, a6 = a4.Next(), a6.Next()
	}
	return Host{Name: name, Namespace: r.prefix() + name, Address4: a4, Address6: a6, Slot: n}
}

// capacity is how many hosts the lab can hold, and the range that limits
// it ("" when it is the veth names): those end in a slot number of at
// most three digits (a bridge takes 1024 ports), and each subnet holds its
// network address, the bridge's and the hosts', IPv4 also its broadcast
// address.
func (r *record) capacity() (n int, limit string) {
	n = 999
	if free := 32 - r.Subnet.Bits(); free < 31 && 1<<free-3 < n {
		n, limit = max(1<<free-3, 0), "subnet "+r.Subnet.String()
	}
	if free := 128 - r.Subnet6.Bits(); free < 31 && 1<<free-2 < n {
		n, limit = max(1<<free-2, 0), "subnet6 "+r.Subnet6.String()
	}
	return n, limit
}

// fits tells whether the lab can hold n hosts, and what limits it if not.
func (r *record) fits(n int) error {
	c, limit := r.capacity()
	switch {
	case n <= c:
		return nil
	case limit == "":
		return fmt.Errorf("%d hosts asked, at most %d", n, c)
	default:
		return fmt.Errorf("%s is too small for %d hosts", limit, n)
	}
}

// defaultSubnet6 derives the IPv6 range from the IPv4 one: fd00:e2c::/64
// for the default subnet, otherwise fd00:e2c:AABB:CCDD::/64 from its
// address AA.BB.CC.DD.
func defaultSubnet6(v4 netip.Prefix) netip.Prefix {
	if v4.Masked() == DefaultSubnet {
		return DefaultSubnet6
	}
	b := DefaultSubnet6.Addr().As16()
	a := v4.Masked().Addr().As4()
	copy(b[4:8], a[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Hosts returns the hosts of the lab, in the order of Options.Hosts.
func (l *Lab) Hosts() []Host { return slices.Clone(l.rec.Hosts) }

// Name returns the name the lab was created with.
func (l *Lab) Name() string { return l.rec.Name }

// StateDir returns the directory holding the lab's files.
func (l *Lab) StateDir() string { return l.rec.StateDir }

// Bridge returns the address hosts reach the machine at, the bridge's.
func (l *Lab) Bridge() (v4, v6 netip.Addr) {
	return l.rec.Subnet.Addr().Next(), l.rec.Subnet6.Addr().Next()
}

// KeyFile returns the private key the controller logs into every host
// with, as root.
func (l *Lab) KeyFile() string { return l.rec.stateFile("id_ed25519") }

// KnownHostsFile returns a known_hosts file naming every host by name and
// addresses, for strict host key checking.
func (l *Lab) KnownHostsFile() string { return l.rec.stateFile("known_hosts") }

// MarshalJSON returns the lab's record.
func (l *Lab) MarshalJSON() ([]byte, error) { return json.Marshal(l.rec) }

// UnmarshalJSON reads a record written by MarshalJSON.
func (l *Lab) UnmarshalJSON(data []byte) error {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("netns: lab record: %w", err)
	}
	if r.Name == "" || r.ID != labID(r.Name) {
		return errors.New("netns: lab record: missing or inconsistent name")
	}
	// Records of older versions number hosts in order.
	for i := range r.Hosts {
		if r.Hosts[i].Slot == 0 {
			r.Hosts[i].Slot = i + 1
		}
		r.Slots = max(r.Slots, r.Hosts[i].Slot)
	}
	l.rec = r
	return nil
}
