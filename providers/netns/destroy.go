package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Destroy kills every process of the lab, its sshds and whatever ran on
// its hosts, and removes its namespaces, links, bridge and files. What is
// already gone is skipped, so it can be called again, or on a lab a crash
// left half built.
func (l *Lab) Destroy(ctx context.Context) error {
	return teardown(ctx, &l.rec, io.Discard)
}

// Cleanup removes every leftover of the lab called name, as after a crash
// that lost its Lab value. It finds them from the system itself
// (namespaces, links and processes named from name) and, when the machine
// still has it, from the lab's record, which also locates its files.
func Cleanup(ctx context.Context, name string) error {
	r := &record{Name: name, ID: labID(name)}
	if data, err := os.ReadFile(r.runRecord()); err == nil {
		var l Lab
		if l.UnmarshalJSON(data) == nil && l.rec.ID == r.ID {
			r = &l.rec
		}
	}
	return teardown(ctx, r, io.Discard)
}

// teardown removes what r names, and whatever else the system holds under
// its prefix. out receives what had to be killed.
func teardown(ctx context.Context, r *record, out io.Writer) error {
	var errs []error
	nss, err := namespaces(r.prefix())
	if err != nil {
		return err
	}
	// Each dockerd first, while it can stop its containers: killed with
	// the other processes of its host, it would leave them running, and
	// its mounts and cgroups behind. Files under a mount that is left are
	// not removed.
	dockerErr := stopDockers(ctx, r, out)
	if dockerErr != nil {
		errs = append(errs, dockerErr)
	}
	// Processes first: a namespace lives on as long as one of its
	// processes does, and the sshds hold the hosts' mounts.
	ids := map[fileID]bool{}
	for _, ns := range nss {
		if id, ok := statID(filepath.Join(netnsDir, ns)); ok {
			ids[id] = true
		}
	}
	if err := killAll(ctx, ids, r.viewDir()+"/"); err != nil {
		errs = append(errs, err)
	}

	// Removing a namespace removes its veth pair in the background, far
	// faster than deleting each veth, which waits for the kernel every
	// time: wait a little for that, then delete what is left.
	if len(nss) > 0 {
		var b strings.Builder
		for _, ns := range nss {
			fmt.Fprintf(&b, "netns del %s\n", ns)
		}
		// -force goes on past errors; what is left is checked below.
		if _, err := run(ctx, b.String(), "ip", "-force", "-batch", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	var ls []string
	for deadline := time.Now().Add(3 * time.Second); ; {
		if ls, err = links(ctx, r.prefix()); err != nil {
			return err
		}
		if len(ls) == 0 || len(ls) == 1 && ls[0] == r.bridge() || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ls) > 0 {
		var b strings.Builder
		for _, l := range ls {
			fmt.Fprintf(&b, "link del %s\n", l)
		}
		if _, err := run(ctx, b.String(), "ip", "-force", "-batch", "-"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := verifyGone(ctx, r); err != nil {
		return errors.Join(append(errs, err)...)
	}

	if dockerErr == nil {
		if err := removeFiles(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netns: destroying lab %q: %w", r.Name, errors.Join(errs...))
	}
	return nil
}

// killAll kills the processes of a lab, or of some of its hosts, until
// none is left.
func killAll(ctx context.Context, nss map[fileID]bool, markers ...string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processes(nss, markers...)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns: processes %v survive SIGKILL", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// verifyGone checks that no namespace or link of r is left.
func verifyGone(ctx context.Context, r *record) error {
	nss, err := namespaces(r.prefix())
	if err != nil {
		return err
	}
	ls, err := links(ctx, r.prefix())
	if err != nil {
		return err
	}
	if left := append(nss, ls...); len(left) > 0 {
		return fmt.Errorf("netns: still there after removal: %s", strings.Join(left, ", "))
	}
	return nil
}

// removeFiles removes the files of r: only those the lab writes, so that
// a state directory shared with other files keeps them.
func removeFiles(r *record) error {
	var errs []error
	rm := func(path string, all bool) {
		var err error
		if all {
			err = os.RemoveAll(path)
		} else {
			err = os.Remove(path)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// The view directory is a mount point in the sshds' namespaces only,
	// and they are dead; Remove, not RemoveAll, in case one was not.
	rm(r.viewDir(), false)
	rm(r.runRecord(), false)
	if r.StateDir != "" {
		for _, h := range r.Hosts {
			rm(r.hostDir(h.Name), true)
		}
		rm(filepath.Join(r.StateDir, "hosts"), false)
		for _, f := range []string{"id_ed25519", "id_ed25519.pub", "authorized_keys", "known_hosts", "lab.json"} {
			rm(r.stateFile(f), false)
		}
		if r.OwnsStateDir {
			rm(r.StateDir, false)
		}
	}
	return errors.Join(errs...)
}
