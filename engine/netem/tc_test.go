package netem

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// inNamespace runs sh scripts in a network namespace of its own holding a
// veth pair, so that real tc runs on a real device and nothing else is
// touched. It skips where that cannot be made (not root, no iproute2).
func inNamespace(t *testing.T) func(script string) (string, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs tc (iproute2)")
	}
	ns := fmt.Sprintf("e2ctc%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run := func(script string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c", script).CombinedOutput()
		return string(out), err
	}
	if out, err := run("ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up"); err != nil {
		t.Fatalf("veth: %v: %s", err, out)
	}
	return run
}

func TestRealTC(t *testing.T) {
	run := inNamespace(t)
	out, err := run(PreflightScript)
	if err != nil {
		t.Fatalf("preflight: %v: %s", err, out)
	}
	pf := ParsePreflight(out)
	if msg := pf.Problem(false); msg != "" {
		t.Fatalf("preflight as root in a namespace: %s (%s)", msg, out)
	}
	entries := []Entry{
		{Pos: "n:2", SrcHosts: []string{"me"}, DstHosts: []string{"b"}, Rate: 10e6},
		{Pos: "n:3", SrcHosts: []string{"me"}, DstHosts: []string{"c"}, Rate: 1e9},
	}
	if pf.Netem {
		entries = append(entries, Entry{Pos: "n:4", SrcHosts: []string{"me"}, DstHosts: []string{"d"}, Delay: 20 * time.Millisecond, Loss: 1})
	}
	cs, _ := Merge(entries)
	addrs := map[string][]netip.Addr{
		"b": {netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")},
		"c": {netip.MustParseAddr("192.0.2.3")},
		"d": {netip.MustParseAddr("192.0.2.4")},
	}
	rules, err := Build(cs, addrs, func(string, netip.Addr) string { return "v0" })
	if err != nil {
		t.Fatal(err)
	}
	// Twice: applying again replaces the tree instead of failing on it.
	for i := 0; i < 2; i++ {
		if out, err := run(ApplyScript(rules)); err != nil {
			t.Fatalf("apply %d: %v: %s", i, err, out)
		}
	}
	out, err = run(ShowScript(Devices(rules)))
	if err != nil {
		t.Fatalf("show: %v: %s", err, out)
	}
	for _, want := range []string{"qdisc htb 1: root", "class htb 1:1 root", "rate 10Mbit ceil 10Mbit", "class htb 1:2 root", "rate 1Gbit",
		"class htb 1:ffff", "match c0000202/ffffffff", "flowid 1:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("tc state lacks %q:\n%s", want, out)
		}
	}
	t.Run("delay and loss", func(t *testing.T) {
		if !pf.Netem {
			t.Skipf("kernel has no sch_netem (%s): delay and loss not applied; only the rate classes were applied for real", pf.Why)
		}
		if !strings.Contains(out, "netem 4: parent 1:3") {
			t.Errorf("no netem qdisc:\n%s", out)
		}
	})
	// Reset twice: the second finds nothing to delete, which is success.
	for i := 0; i < 2; i++ {
		if out, err := run(ResetScript(Devices(rules))); err != nil {
			t.Fatalf("reset %d: %v: %s", i, err, out)
		}
	}
	if out, _ := run("tc qdisc show dev v0"); strings.Contains(out, "htb") {
		t.Errorf("after reset: %s", out)
	}
	if out, err := run(ResetScript([]string{"nosuchdev"})); err == nil {
		t.Errorf("reset of a missing device succeeded: %s", out)
	}
}

func TestRealTCRefusal(t *testing.T) {
	run := inNamespace(t)
	out, _ := run(PreflightScript)
	if ParsePreflight(out).Netem {
		t.Skip("this kernel has sch_netem: the refusal of a netem line cannot be seen here")
	}
	cs, _ := Merge([]Entry{{Pos: "network.yaml:2:3", SrcHosts: []string{"me"}, DstHosts: []string{"b"}, Delay: 5 * time.Millisecond, Rate: 1e6}})
	rules, _ := Build(cs, map[string][]netip.Addr{"b": {netip.MustParseAddr("192.0.2.2")}}, func(string, netip.Addr) string { return "v0" })
	out, err := run(ApplyScript(rules))
	if err == nil {
		t.Fatalf("netem applied on a kernel without it: %s", out)
	}
	if got := ApplyError(rules, out); !strings.Contains(got, "device v0: Error: Specified qdisc kind is unknown.; tc refused traffic to b (delay 5ms, rate 1mbit, from network.yaml:2:3)") {
		t.Errorf("error: %q from %q", got, out)
	}
}
