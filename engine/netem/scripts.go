package netem

import (
	"bufio"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The scripts below are POSIX sh, run on the hosts as root (or through
// sudo -n: see Preflight.Sudo). tc and ip live in /usr/sbin, which a normal
// user's PATH on Debian lacks.
const pathLine = "PATH=\"$PATH:/usr/sbin:/sbin\"; export PATH\n"

// PreflightScript checks a host before anything is touched: tc, the
// privileges, and whether the kernel can build each part of the tree, by
// building it on a throw-away device. It prints key=value lines.
const PreflightScript = pathLine + `S=
[ "$(id -u)" = 0 ] || S="sudo -n"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
if ! command -v tc >/dev/null 2>&1; then echo "tc="; exit 0; fi
echo "tc=$(tc -V 2>&1 | head -n 1)"
$S modprobe -a sch_htb sch_netem cls_u32 >/dev/null 2>&1
d=e2cprobe0
$S ip link del "$d" >/dev/null 2>&1
if ! err=$($S ip link add "$d" type dummy 2>&1) && ! err=$($S ip link add "$d" type veth peer name e2cprobe1 2>&1); then
  echo "privileged=no $err" | head -n 1; exit 0
fi
echo "privileged=yes"
if err=$($S tc qdisc add dev "$d" root handle 1: htb 2>&1); then echo htb=yes; else echo "htb=no $err" | head -n 1; fi
$S tc class add dev "$d" parent 1: classid 1:1 htb rate 1mbit >/dev/null 2>&1
if err=$($S tc qdisc add dev "$d" parent 1:1 handle 2: netem delay 1ms 2>&1); then echo netem=yes; else echo "netem=no $err" | head -n 1; fi
if err=$($S tc filter add dev "$d" parent 1: protocol ip prio 1 u32 match ip dst 192.0.2.1/32 flowid 1:1 2>&1); then echo u32=yes; else echo "u32=no $err" | head -n 1; fi
$S ip link del "$d" >/dev/null 2>&1
exit 0
`

// Preflight is what PreflightScript found on a host.
type Preflight struct {
	Kernel     string `json:"kernel"`
	Arch       string `json:"arch"`
	TC         string `json:"tc"`                // tc -V; "" when missing
	Sudo       bool   `json:"sudo"`              // not root: tc runs through sudo -n
	Privileged bool   `json:"privileged"`        // could create a device
	HTB        bool   `json:"sch_htb"`           // the kernel has them
	Netem      bool   `json:"sch_netem"`         //
	U32        bool   `json:"cls_u32"`           //
	Why        string `json:"problem,omitempty"` // the first error tc or ip gave
}

// ParsePreflight reads the output of PreflightScript.
func ParsePreflight(out string) Preflight {
	var p Preflight
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		word, why, _ := strings.Cut(v, " ")
		ok := word == "yes"
		if word == "no" && why != "" && p.Why == "" {
			p.Why = why
		}
		switch k {
		case "kernel":
			p.Kernel = v
		case "arch":
			p.Arch = v
		case "uid":
			p.Sudo = v != "0"
		case "tc":
			p.TC = v
		case "privileged":
			p.Privileged = ok
		case "htb":
			p.HTB = ok
		case "netem":
			p.Netem = ok
		case "u32":
			p.U32 = ok
		}
	}
	return p
}

// Problem says why rules cannot go on the host, or "" when they can.
// Without netem only rate constraints can.
func (p Preflight) Problem(needNetem bool) string {
	switch {
	case p.TC == "":
		return "tc not found: install iproute2"
	case !p.Privileged:
		why := "needs root or passwordless sudo (CAP_NET_ADMIN)"
		if p.Why != "" {
			why += ": " + p.Why
		}
		return why
	case !p.HTB || !p.U32:
		return fmt.Sprintf("kernel %s lacks sch_htb or cls_u32 (%s)", p.Kernel, p.Why)
	case needNetem && !p.Netem:
		return fmt.Sprintf("kernel %s has no sch_netem, which delay and loss need (%s): load it with modprobe sch_netem, or install the kernel's extra modules (linux-modules-extra-%s on Ubuntu), or leave delay and loss out with --network rates-only (on e2c deploy, or e2c network in step mode)", p.Kernel, p.Why, p.Kernel)
	}
	return ""
}

// RouteScript asks the host which device carries traffic to each address:
// one ip process answers for all of them (a process per address costs
// minutes on a host with hundreds of destinations).
func RouteScript(addrs []netip.Addr) string {
	var b strings.Builder
	b.WriteString(pathLine + "ip -o -force -batch - <<'E2C_IP'\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "route get %s\n", a)
	}
	b.WriteString("E2C_IP\n")
	return b.String()
}

var (
	devField   = regexp.MustCompile(`\bdev (\S+)`)
	deviceName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)
)

// ParseRoutes reads what RouteScript printed for addrs: the device of each.
// An address routed through lo is the host's own: it maps to "". An address
// without a route is an error, with ip's reason.
func ParseRoutes(addrs []netip.Addr, stdout, stderr string) (map[netip.Addr]string, error) {
	asked := map[netip.Addr]bool{}
	for _, a := range addrs {
		asked[a] = true
	}
	devs := map[netip.Addr]string{}
	for _, line := range strings.Split(stdout, "\n") {
		// The destination is the first address of the line: "10.0.0.2 dev
		// eth0 ...", "local 10.0.0.1 dev lo ...", "fd00::2 from :: dev ...".
		var dst netip.Addr
		for _, f := range strings.Fields(line) {
			if a, err := netip.ParseAddr(f); err == nil {
				dst = a
				break
			}
		}
		if !asked[dst] {
			continue
		}
		m := devField.FindStringSubmatch(line)
		switch {
		case m == nil:
			return nil, fmt.Errorf("route to %s: no device in %q", dst, strings.TrimSpace(line))
		case m[1] == "lo":
			m[1] = ""
		case !deviceName.MatchString(m[1]):
			return nil, fmt.Errorf("route to %s: device name %q is not one e2c writes into a script", dst, m[1])
		}
		devs[dst] = m[1]
	}
	why := ""
	for _, l := range strings.Split(stderr, "\n") {
		if !failedLine.MatchString(l) && strings.TrimSpace(l) != "" && why == "" {
			why = strings.TrimSpace(l)
		}
	}
	var missing []string
	for _, a := range addrs {
		if _, ok := devs[a]; !ok {
			missing = append(missing, a.String())
		}
	}
	if len(missing) > 0 {
		if why == "" {
			why = "ip gave no answer"
		}
		return nil, fmt.Errorf("no route to %s: %s", strings.Join(missing, ", "), why)
	}
	return devs, nil
}

// deleteRoot is a shell function that deletes a device's root qdisc and
// takes "nothing to delete" as success. Its wording varies with the kernel
// and iproute2; every other error stands.
const deleteRoot = `e2c_del() {
  out=$(tc qdisc del dev "$1" root 2>&1) && return 0
  case $out in
  *"handle of zero"*|*"No such file or directory"*) return 0 ;;
  esac
  printf '%s\n' "$out" >&2
  return 1
}
`

// devMarker starts the stderr line that says which device's batch follows,
// so that a failure maps back to its rules.
const devMarker = "e2c-tc-device "

// ApplyScript replaces the root qdisc of each device of one host with its
// rules: the old root is deleted, then one batch builds the whole tree, so
// applying again gives the same state.
func ApplyScript(rules []*Rules) string {
	var b strings.Builder
	b.WriteString(pathLine + deleteRoot)
	for _, r := range rules {
		fmt.Fprintf(&b, "printf '%s%%s\\n' %s >&2\n", devMarker, r.Device)
		fmt.Fprintf(&b, "e2c_del %s || exit 3\n", r.Device)
		b.WriteString("tc -batch - <<'E2C_TC' || exit 4\n")
		for _, l := range r.Batch() {
			b.WriteString(l + "\n")
		}
		b.WriteString("E2C_TC\n")
	}
	return b.String()
}

// ResetScript deletes the root qdisc of each device: the kernel puts the
// distribution's default back. Only the devices e2c shaped are named.
func ResetScript(devices []string) string {
	var b strings.Builder
	b.WriteString(pathLine + deleteRoot + "rc=0\n")
	for _, d := range devices {
		fmt.Fprintf(&b, "e2c_del %s || rc=1\n", d)
	}
	b.WriteString("exit $rc\n")
	return b.String()
}

var failedLine = regexp.MustCompile(`Command failed -:(\d+)`)

// ApplyError explains a failed ApplyScript from its stderr: which device,
// and for a batch line, which destination and entries it came from.
func ApplyError(rules []*Rules, stderr string) string {
	var dev string
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if d, ok := strings.CutPrefix(l, devMarker); ok {
			dev, msgs = d, nil
			continue
		}
		if m := failedLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			for _, r := range rules {
				if r.Device == dev {
					l = fmt.Sprintf("tc refused %s", r.Line(n))
				}
			}
		}
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "Warning:") {
			msgs = append(msgs, l)
		}
	}
	if dev != "" {
		return "device " + dev + ": " + strings.Join(msgs, "; ")
	}
	return strings.Join(msgs, "; ")
}

// Devices lists the devices of a host's rules, sorted.
func Devices(rules []*Rules) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Device)
	}
	sort.Strings(out)
	return out
}

// ShowScript dumps the state of each device for the validation folder.
func ShowScript(devices []string) string {
	var b strings.Builder
	b.WriteString(pathLine)
	for _, d := range devices {
		fmt.Fprintf(&b, "echo '# tc -s qdisc show dev %s'; tc -s qdisc show dev %s\n", d, d)
		fmt.Fprintf(&b, "echo '# tc -s class show dev %s'; tc -s class show dev %s\n", d, d)
		fmt.Fprintf(&b, "echo '# tc filter show dev %s parent 1:'; tc filter show dev %s parent 1:\n", d, d)
	}
	return b.String()
}
