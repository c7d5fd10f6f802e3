package local

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long the processes of a working area have between TERM
// and KILL.
const stopGrace = 3 * time.Second

// process is one working in a host's working area.
type process struct {
	pid      int
	name     string
	dir      string
	terminal bool // it has a controlling terminal
}

func (p process) String() string { return fmt.Sprintf("%d (%s) in %s", p.pid, p.name, p.dir) }

// stopProcesses ends every process whose current directory is in one of
// dirs: what the hosts' tasks started and left running, in the background
// or not, whatever a failed run left. A process with a controlling
// terminal is a person's (a shell looking at the files): it is named in
// out and left alone, as the background jobs e2c starts have none.
func stopProcesses(dirs []string, out io.Writer) error {
	dirs = slices.Clone(dirs)
	for i, d := range dirs {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			dirs[i] = real // /proc shows resolved paths
		}
	}
	sig, deadline := syscall.SIGTERM, time.Now().Add(stopGrace)
	warned := map[int]bool{}
	for {
		var left []process
		for _, p := range processesIn(dirs) {
			if p.terminal {
				if !warned[p.pid] {
					fmt.Fprintf(out, "left running, on a terminal: %s\n", p)
					warned[p.pid] = true
				}
				continue
			}
			left = append(left, p)
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if sig == syscall.SIGKILL {
				var names []string
				for _, p := range left {
					names = append(names, p.String())
				}
				return fmt.Errorf("could not stop %s; stop them (sudo kill) and release again", strings.Join(names, ", "))
			}
			sig, deadline = syscall.SIGKILL, time.Now().Add(stopGrace)
		}
		for _, p := range left {
			_ = syscall.Kill(p.pid, sig) // one that cannot be signalled is reported above
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesIn lists the processes of this machine working in one of dirs,
// among those this user may inspect.
func processesIn(dirs []string) []process {
	entries, _ := os.ReadDir("/proc")
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue // gone, a zombie, or another user's
		}
		cwd = strings.TrimSuffix(cwd, " (deleted)")
		for _, d := range dirs {
			if cwd != d && !strings.HasPrefix(cwd, d+"/") {
				continue
			}
			p := process{pid: pid, dir: d}
			// stat is "pid (name) state ppid pgrp session tty_nr ...";
			// the name may hold spaces and parentheses.
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				break
			}
			s := string(stat)
			open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if open < 0 || closing < open {
				break
			}
			p.name = s[open+1 : closing]
			if f := strings.Fields(s[closing+1:]); len(f) > 4 {
				p.terminal = f[4] != "0"
			}
			out = append(out, p)
			break
		}
	}
	return out
}
