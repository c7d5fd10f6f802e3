package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
)

// checkAdd tells whether names can join the lab once it keeps kept of its
// hosts: valid, new names (neither held nor retired), and room for all.
func (l *Lab) checkAdd(kept int, names []string) error {
	r := &l.rec
	for _, n := range names {
		if !hostNameRE.MatchString(n) {
			return fmt.Errorf("netns: host name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 bytes", n)
		}
		if slices.Contains(r.Retired, n) || slices.ContainsFunc(r.Hosts, func(h Host) bool { return h.Name == n }) {
			return fmt.Errorf("netns: lab %q already had a host %q", r.Name, n)
		}
	}
	if err := r.fits(kept + len(names)); err != nil {
		c, _ := r.capacity()
		return fmt.Errorf("netns: lab %q keeps %d hosts and is asked for %d more: %w (it holds %d)", r.Name, kept, len(names), err, c)
	}
	return nil
}

// AddHosts adds hosts named names to the running lab, on its bridge, each
// with its own sshd as Create makes them, and returns them once every sshd
// accepts connections. They take the slots (addresses) past every slot the
// lab gave while there are, then the first free ones. journal, if set, is
// given the grown record before anything is created, as in Create; on
// failure the lab holds its hosts as before, the new ones removed.
func (l *Lab) AddHosts(ctx context.Context, names []string, journal func(*Lab) error) ([]Host, error) {
	r := &l.rec
	if len(names) == 0 {
		return nil, nil
	}
	if err := l.checkAdd(len(r.Hosts), names); err != nil {
		return nil, err
	}
	held := map[int]bool{}
	for _, h := range r.Hosts {
		held[h.Slot] = true
	}
	capacity, _ := r.capacity()
	var added, reused []Host
	for _, n := range names {
		slot := r.Slots + 1
		for slot <= capacity && held[slot] {
			slot++
		}
		if slot > capacity {
			for slot = 1; held[slot]; slot++ {
			}
			reused = append(reused, r.newHost(n, slot))
		}
		held[slot] = true
		added = append(added, r.newHost(n, slot))
	}
	before := *r
	r.Hosts = append(slices.Clone(r.Hosts), added...)
	for _, h := range added {
		r.Slots = max(r.Slots, h.Slot)
	}
	if journal != nil {
		if err := journal(l); err != nil {
			*r = before
			return nil, fmt.Errorf("netns: recording the hosts before creating them: %w", err)
		}
	}
	err := l.createAdded(ctx, before.Hosts, added, reused)
	if err != nil {
		err = errors.Join(err, l.RemoveHosts(context.WithoutCancel(ctx), names, io.Discard))
		return nil, err
	}
	return added, nil
}

// createAdded writes the files of the added hosts and creates them.
func (l *Lab) createAdded(ctx context.Context, kept, added, reused []Host) error {
	r := &l.rec
	unlock, err := lock()
	if err != nil {
		return err
	}
	err = l.writeRecord()
	for _, h := range added {
		if err == nil {
			err = l.writeHost(h)
		}
	}
	if err == nil {
		err = l.writeShared()
	}
	if err == nil {
		_, err = run(ctx, r.addHosts(added), "ip", "-batch", "-")
	}
	unlock()
	if err == nil && len(reused) > 0 {
		err = r.forgetNeighbours(ctx, kept, reused)
	}
	if err == nil {
		err = l.createHosts(ctx, added)
	}
	return err
}

// forgetNeighbours removes the addresses of hosts from the neighbour
// tables of the kept hosts and of the machine's bridge: they had a removed
// host's link-layer address for them, which they would go on using for up
// to a minute (the gratuitous ARP of a new link comes before the bridge
// forwards it).
func (r *record) forgetNeighbours(ctx context.Context, kept, hosts []Host) error {
	flush := func(dev string) string {
		var b strings.Builder
		for _, h := range hosts {
			fmt.Fprintf(&b, "neigh flush to %s dev %s\nneigh flush to %s dev %s\n", h.Address4, dev, h.Address6, dev)
		}
		return b.String()
	}
	if _, err := run(ctx, flush(r.bridge()), "ip", "-force", "-batch", "-"); err != nil {
		return err
	}
	return errors.Join(fanout.Each(ctx, len(kept), workers, func(ctx context.Context, i int) error {
		_, err := run(ctx, flush("eth0"), "ip", "-n", kept[i].Namespace, "-force", "-batch", "-")
		return err
	})...)
}

// RemoveHosts stops and removes the named hosts of the lab: their dockerd
// with its containers, every process of their namespace (their sshd and
// whatever ran there), their namespace and veth, and their files. The
// other hosts go on running; their /etc/hosts and the known_hosts file no
// longer name the removed ones, whose names are not given again.
func (l *Lab) RemoveHosts(ctx context.Context, names []string, out io.Writer) error {
	r := &l.rec
	var gone []Host
	for _, n := range names {
		i := slices.IndexFunc(r.Hosts, func(h Host) bool { return h.Name == n })
		if i < 0 {
			return fmt.Errorf("netns: lab %q has no host %q", r.Name, n)
		}
		gone = append(gone, r.Hosts[i])
	}
	if len(gone) == 0 {
		return nil
	}
	// As in teardown: each dockerd first, while it can stop its
	// containers, then the processes, then the namespaces.
	dockerErr := errors.Join(fanout.Each(context.WithoutCancel(ctx), len(gone), 0, func(ctx context.Context, i int) error {
		return dockerdOf(r, gone[i]).stop(ctx, out)
	})...)
	ids := map[fileID]bool{}
	var markers, veths []string
	var del strings.Builder
	for _, h := range gone {
		if id, ok := statID(filepath.Join(netnsDir, h.Namespace)); ok {
			ids[id] = true
			fmt.Fprintf(&del, "netns del %s\n", h.Namespace)
		}
		markers = append(markers, r.viewFile("hosts", h.Name)+"/")
		veths = append(veths, r.veth(h))
	}
	errs := []error{dockerErr, killAll(ctx, ids, markers...)}
	if del.Len() > 0 {
		_, err := run(ctx, del.String(), "ip", "-force", "-batch", "-")
		errs = append(errs, err)
	}
	// The veths go with their namespaces, in the background.
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ls, err := links(ctx, r.prefix())
		if err != nil {
			return err
		}
		left = slices.DeleteFunc(ls, func(l string) bool { return !slices.Contains(veths, l) })
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		_, err := run(ctx, "link del "+strings.Join(left, "\nlink del ")+"\n", "ip", "-force", "-batch", "-")
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: removing hosts %s of lab %q: %w", strings.Join(names, ", "), r.Name, err)
	}
	r.Hosts = slices.DeleteFunc(slices.Clone(r.Hosts), func(h Host) bool { return slices.Contains(names, h.Name) })
	r.Retired = append(r.Retired, names...)
	for _, h := range gone {
		if err := os.RemoveAll(r.hostDir(h.Name)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, l.writeRecord(), l.writeShared())
	return errors.Join(errs...)
}
