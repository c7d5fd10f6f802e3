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
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// netnsDir is where ip netns keeps its named namespaces.
const netnsDir = "/run/netns"

// namespaces lists the named network namespaces starting with prefix.
func namespaces(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// links lists the machine's network interfaces starting with prefix.
func links(ctx context.Context, prefix string) ([]string, error) {
	out, err := run(ctx, "", "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	var ls []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &ls); err != nil {
		return nil, fmt.Errorf("netns: reading ip -j link: %w", err)
	}
	var names []string
	for _, l := range ls {
		if strings.HasPrefix(l.Name, prefix) {
			names = append(names, l.Name)
		}
	}
	return names, nil
}

// route is an entry of the machine's main routing table.
type route struct {
	Dst string `json:"dst"`
	Dev string `json:"dev"`
}

// routes lists the machine's IPv4 or IPv6 routes.
func routes(ctx context.Context, v6 bool) ([]route, error) {
	family := "-4"
	if v6 {
		family = "-6"
	}
	out, err := run(ctx, "", "ip", "-j", family, "route", "show")
	if err != nil {
		return nil, err
	}
	var rs []route
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("netns: reading ip -j route: %w", err)
	}
	return rs, nil
}

// checkOverlap refuses a subnet that overlaps a route of the machine: its
// hosts would shadow, or be shadowed by, real ones. Default routes,
// link-local and multicast ranges do not count.
func checkOverlap(p netip.Prefix, rs []route) error {
	for _, r := range rs {
		if r.Dst == "default" || r.Dst == "" {
			continue
		}
		q, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				continue
			}
			q = netip.PrefixFrom(a, a.BitLen())
		}
		if a := q.Addr(); a.IsLinkLocalUnicast() || a.IsMulticast() || q.Bits() == 0 {
			continue
		}
		if p.Overlaps(q) {
			setting := "subnet"
			if p.Addr().Is6() {
				setting = "subnet6"
			}
			dev := ""
			if r.Dev != "" {
				dev = " (dev " + r.Dev + ")"
			}
			return fmt.Errorf("netns: %s %s overlaps the route to %s%s this machine already has; choose another %s",
				setting, p, q, dev, setting)
		}
	}
	return nil
}

// lock takes the machine-wide lock of netns labs.
func lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(runDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("netns: locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// fileID identifies a namespace as ip netns pids does: by device and inode.
type fileID struct{ dev, ino uint64 }

func statID(path string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}

// processes lists the live processes in one of the network namespaces nss,
// or sshds whose command line contains one of markers: the sshds of a lab
// are found even if their namespace was already unmounted.
func processes(nss map[fileID]bool, markers ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := "/proc/" + e.Name()
		match := false
		if id, ok := statID(dir + "/ns/net"); ok && nss[id] {
			match = true
		} else if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && bytes.Contains(cmd, []byte("sshd")) {
			match = slices.ContainsFunc(markers, func(m string) bool { return m != "" && bytes.Contains(cmd, []byte(m)) })
		}
		if match && !zombie(dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie tells a dead process not yet reaped by its parent, which no
// signal can remove.
func zombie(dir string) bool {
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}
