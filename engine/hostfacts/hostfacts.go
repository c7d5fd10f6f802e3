// Package hostfacts asks a host what it is, in one script and one parser:
// its architecture, kernel, processor, memory, free disk and privileges.
// The providers check hosts with it before using them, and every run
// records it.
package hostfacts

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/e2c-dev/e2c/engine/transport"
)

// Facts is what a host said of itself. A fact it could not tell is zero.
type Facts struct {
	Arch       string // uname -m
	Kernel     string // uname -r
	CPU        string // model
	CPUs       int
	MemKB      int64 // total
	MemFreeKB  int64 // available
	RootFreeKB int64 // free space on /
	TmpFreeKB  int64 // free space on /tmp
	Root       bool  // logged in as root (Privileges)
	Sudo       bool  // root, or sudo -n works (Privileges)
}

// Script prints the facts as key=value lines. It sticks to POSIX sh, awk
// and df -P, which busybox images have too.
const Script = `echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "cpu=$( (grep -m1 '^model name' /proc/cpuinfo || grep -m1 '^Model' /proc/cpuinfo || grep -m1 '^Hardware' /proc/cpuinfo) 2>/dev/null | cut -d: -f2-)"
echo "cpus=$(nproc 2>/dev/null)"
awk '/^MemTotal:/ { print "mem=" $2 } /^MemAvailable:/ { print "mem_free=" $2 }' /proc/meminfo 2>/dev/null
df -Pk / 2>/dev/null | awk 'NR == 2 { print "root_free=" $4 }'
df -Pk /tmp 2>/dev/null | awk 'NR == 2 { print "tmp_free=" $4 }'
`

// Privileges adds to Script whether the user is root or may use sudo -n.
// It is apart because sudo may log, or mail, a refusal: asked only where
// sudo is needed.
const Privileges = `echo "uid=$(id -u)"
if [ "$(id -u)" = 0 ] || sudo -n true >/dev/null 2>&1; then echo sudo=yes; else echo sudo=no; fi
`

// Parse reads what Script (and Privileges) printed.
func Parse(out string) Facts {
	var f Facts
	num := func(v string) int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		v = strings.TrimSpace(v)
		switch k {
		case "arch":
			f.Arch = v
		case "kernel":
			f.Kernel = v
		case "cpu":
			f.CPU = v
		case "cpus":
			f.CPUs = int(num(v))
		case "mem":
			f.MemKB = num(v)
		case "mem_free":
			f.MemFreeKB = num(v)
		case "root_free":
			f.RootFreeKB = num(v)
		case "tmp_free":
			f.TmpFreeKB = num(v)
		case "uid":
			f.Root = v == "0"
		case "sudo":
			f.Sudo = v == "yes"
		}
	}
	return f
}

// Learn runs script (Script, maybe with Privileges) on a host and parses
// its answer.
func Learn(ctx context.Context, r transport.Runner, script string) (Facts, error) {
	res, err := r.Run(ctx, transport.Command{Script: script})
	if err != nil {
		return Facts{}, err
	}
	return Parse(res.Stdout), nil
}
