package containers

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/client"
)

// Free returns the daemon's root dir (where it keeps images: Info's
// DockerRootDir) and the bytes free in its file system, as `df -Pk` says
// through the host's shell: the Engine API tells where, not how much.
func (h *Host) Free(ctx context.Context) (dir string, free int64, err error) {
	info, err := h.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", 0, h.errorf("%w", err)
	}
	dir = info.Info.DockerRootDir
	if dir == "" {
		return "", 0, h.errorf("the daemon does not say its root dir")
	}
	c, err := h.dial(ctx)
	if err != nil {
		return dir, 0, err
	}
	sess, err := c.NewSession()
	if err != nil {
		return dir, 0, fmt.Errorf("%s: free space in %s: %w", h.name, dir, err)
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	// LC_ALL=C: the header and numbers in the POSIX locale.
	err = sess.Run("LC_ALL=C df -Pk -- " + quote(dir))
	if ctx.Err() != nil {
		return dir, 0, ctx.Err()
	}
	if err != nil {
		return dir, 0, fmt.Errorf("%s: free space in %s: df -Pk: %w: %s", h.name, dir, err, strings.TrimSpace(stderr.String()))
	}
	kib, err := parseDF(stdout.String())
	if err != nil {
		return dir, 0, fmt.Errorf("%s: free space in %s: df -Pk: %w", h.name, dir, err)
	}
	return dir, kib * 1024, nil
}

var percent = regexp.MustCompile(`^(\d+%|-)$`)

// parseDF reads the available 1024-byte blocks from the output of df -Pk
// for one path. POSIX fixes each line as "name total used available
// capacity% mount", one line per file system, but the name and the mount
// point may hold spaces: the available count is the field before the
// first capacity that follows three numbers.
func parseDF(out string) (int64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "1024-blocks") {
		return 0, fmt.Errorf("unexpected output %q", out)
	}
	f := strings.Fields(lines[len(lines)-1])
	for i := 4; i < len(f); i++ {
		if !percent.MatchString(f[i]) {
			continue
		}
		var n [3]int64
		ok := true
		for j := range n {
			v, err := strconv.ParseInt(f[i-3+j], 10, 64)
			ok = ok && err == nil && v >= 0
			n[j] = v
		}
		if ok {
			return n[2], nil
		}
	}
	return 0, fmt.Errorf("no available count in %q", lines[len(lines)-1])
}

// quote makes s one word of a POSIX shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
