package netem

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		entries []Entry
		want    []string // "src>dst shape from..."
		errs    []string
	}{{
		name: "two entries sharing a source host both hold",
		entries: []Entry{
			{Pos: "n:2", SrcHosts: []string{"fog1"}, DstHosts: []string{"cloud1"}, Delay: 5 * ms},
			{Pos: "n:3", SrcHosts: []string{"fog1"}, DstHosts: []string{"edge1", "edge2"}, Rate: 150e6},
		},
		want: []string{"fog1>cloud1 delay 5ms n:2", "fog1>edge1 rate 150mbit n:3", "fog1>edge2 rate 150mbit n:3"},
	}, {
		name: "symmetric adds the reverse; a host never shapes itself",
		entries: []Entry{
			{Pos: "n:2", SrcHosts: []string{"a", "b"}, DstHosts: []string{"b", "c"}, Delay: ms, Loss: 1, Symmetric: true},
		},
		want: []string{"a>b delay 1ms, loss 1% n:2", "a>c delay 1ms, loss 1% n:2", "b>a delay 1ms, loss 1% n:2",
			"b>c delay 1ms, loss 1% n:2", "c>a delay 1ms, loss 1% n:2", "c>b delay 1ms, loss 1% n:2"},
	}, {
		name: "a symmetric entry meeting its explicit reverse collapses",
		entries: []Entry{
			{Pos: "n:2", SrcHosts: []string{"a"}, DstHosts: []string{"b"}, Rate: 1e9, Symmetric: true},
			{Pos: "n:3", SrcHosts: []string{"b"}, DstHosts: []string{"a"}, Rate: 1e9},
		},
		want: []string{"a>b rate 1gbit n:2", "b>a rate 1gbit n:2 n:3"},
	}, {
		name: "different shapes for one pair conflict, once per two entries",
		entries: []Entry{
			{Pos: "n:2", SrcHosts: []string{"a", "b"}, DstHosts: []string{"c"}, Rate: 1e9},
			{Pos: "n:5", SrcHosts: []string{"a", "b"}, DstHosts: []string{"c", "d"}, Rate: 2e9},
		},
		want: []string{"a>c rate 1gbit n:2", "a>d rate 2gbit n:5", "b>c rate 1gbit n:2", "b>d rate 2gbit n:5"},
		errs: []string{"n:5: traffic from a to c (and 1 more pairs) is shaped rate 2gbit here but rate 1gbit by the entry at n:2: make the entries agree or narrow their patterns"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, errs := Merge(tt.entries)
			var got []string
			for _, c := range cs {
				got = append(got, c.Src+">"+c.Dst+" "+c.Shape.String()+" "+strings.Join(c.From, " "))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("constraints\n got %q\nwant %q", got, tt.want)
			}
			var gotErrs []string
			for _, err := range errs {
				gotErrs = append(gotErrs, err.Error())
			}
			if !reflect.DeepEqual(gotErrs, tt.errs) {
				t.Errorf("errors\n got %q\nwant %q", gotErrs, tt.errs)
			}
		})
	}
}

// The reference's example: fog-1 towards two edge hosts (one with IPv6) and
// the cloud, each destination numbered in order.
func TestBatch(t *testing.T) {
	cs, _ := Merge([]Entry{
		{Pos: "n:2", SrcHosts: []string{"fog-1"}, DstHosts: []string{"edge-1", "edge-2"}, Delay: 40 * time.Millisecond, Rate: 200e6, Loss: 1},
		{Pos: "n:3", SrcHosts: []string{"fog-1"}, DstHosts: []string{"cloud-1"}, Rate: 1e9},
		{Pos: "n:4", SrcHosts: []string{"fog-1"}, DstHosts: []string{"far-1"}, Delay: 50 * time.Millisecond},
	})
	addrs := map[string][]netip.Addr{
		"edge-1":  {netip.MustParseAddr("10.20.1.11"), netip.MustParseAddr("2001:db8:20::11"), netip.MustParseAddr("fe80::1")},
		"edge-2":  {netip.MustParseAddr("10.20.1.12"), netip.MustParseAddr("127.0.1.3")},
		"cloud-1": {netip.MustParseAddr("10.20.3.5")},
		"far-1":   {netip.MustParseAddr("10.20.9.9")},
	}
	rules, err := Build(cs, addrs, func(string, netip.Addr) string { return "eno1" })
	if err != nil || len(rules) != 1 {
		t.Fatalf("Build: %v, %d rules", err, len(rules))
	}
	want := []string{
		"qdisc add dev eno1 root handle 1: htb default ffff",
		"class add dev eno1 parent 1: classid 1:ffff htb rate 100gbit ceil 100gbit burst 12500000 cburst 12500000 quantum 1514",
		"class add dev eno1 parent 1: classid 1:1 htb rate 1gbit ceil 1gbit burst 125000 cburst 125000 quantum 1514",
		"filter add dev eno1 parent 1: protocol ip prio 1 u32 match ip dst 10.20.3.5/32 flowid 1:1",
		"class add dev eno1 parent 1: classid 1:2 htb rate 200mbit ceil 200mbit burst 25000 cburst 25000 quantum 1514",
		"qdisc add dev eno1 parent 1:2 handle 3: netem delay 40ms loss 1% limit 1000",
		"filter add dev eno1 parent 1: protocol ip prio 1 u32 match ip dst 10.20.1.11/32 flowid 1:2",
		"filter add dev eno1 parent 1: protocol ipv6 prio 2 u32 match ip6 dst 2001:db8:20::11/128 flowid 1:2",
		"class add dev eno1 parent 1: classid 1:3 htb rate 200mbit ceil 200mbit burst 25000 cburst 25000 quantum 1514",
		"qdisc add dev eno1 parent 1:3 handle 4: netem delay 40ms loss 1% limit 1000",
		"filter add dev eno1 parent 1: protocol ip prio 1 u32 match ip dst 10.20.1.12/32 flowid 1:3",
		// No rate: the class does not limit, and netem's queue is sized
		// for 10 gbit over 50 ms.
		"class add dev eno1 parent 1: classid 1:4 htb rate 100gbit ceil 100gbit burst 12500000 cburst 12500000 quantum 1514",
		"qdisc add dev eno1 parent 1:4 handle 5: netem delay 50ms limit 62500",
		"filter add dev eno1 parent 1: protocol ip prio 1 u32 match ip dst 10.20.9.9/32 flowid 1:4",
	}
	if got := rules[0].Batch(); !reflect.DeepEqual(got, want) {
		t.Errorf("batch\n got %q\nwant %q", got, want)
	}
	if !rules[0].NeedsNetem() {
		t.Error("NeedsNetem: false with delays")
	}
	if got := rules[0].Line(6); !strings.Contains(got, "traffic to edge-1 (delay 40ms, rate 200mbit, loss 1%, from n:2): qdisc add") {
		t.Errorf("Line(6) = %q", got)
	}
	if got := rules[0].Line(4); !strings.Contains(got, "traffic to cloud-1") {
		t.Errorf("Line(4) = %q", got)
	}
}

func TestBuildDevicesAndAddresses(t *testing.T) {
	cs, _ := Merge([]Entry{{Pos: "n:2", SrcHosts: []string{"a"}, DstHosts: []string{"b", "c"}, Rate: 1e6}})
	v4, v6 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")
	addrs := map[string][]netip.Addr{"b": {v4, v6}, "c": {netip.MustParseAddr("10.0.0.1")}}
	// IPv6 leaves through another device; c is a itself (routed through lo).
	rules, err := Build(cs, addrs, func(_ string, a netip.Addr) string {
		switch a {
		case v6:
			return "eth1"
		case v4:
			return "eth0"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		for _, d := range r.Dests {
			got = append(got, r.Device+" "+d.Host+" "+d.Addrs[0].String())
		}
	}
	if want := []string{"eth0 b 10.0.0.2", "eth1 b fd00::2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = Build(cs, map[string][]netip.Addr{"b": {netip.MustParseAddr("127.0.1.2")}}, func(string, netip.Addr) string { return "lo" })
	if err == nil || !strings.Contains(err.Error(), "host b has no address that traffic from a can be shaped to") {
		t.Errorf("loopback-only destination: %v", err)
	}
}

func TestQueueLimit(t *testing.T) {
	for _, tt := range []struct {
		s    Shape
		want uint64
	}{
		{Shape{Rate: 200e6, Delay: 40 * time.Millisecond}, 1000},
		{Shape{Rate: 1e9, Delay: 50 * time.Millisecond}, 6250},
		{Shape{Rate: 10e9, Delay: 100 * time.Millisecond}, 125000},
		{Shape{Delay: time.Hour}, 1 << 24},
	} {
		if got := QueueLimit(tt.s); got != tt.want {
			t.Errorf("QueueLimit(%s) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{FormatRate(150e6), "150mbit"}, {FormatRate(1500), "1500bit"}, {FormatRate(2e12), "2tbit"},
		{FormatDelay(2 * time.Second), "2s"}, {FormatDelay(1500 * time.Microsecond), "1500us"}, {FormatDelay(50 * time.Millisecond), "50ms"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParsePreflight(t *testing.T) {
	out := "kernel=6.18.44\narch=x86_64\nuid=1000\ntc=tc utility, iproute2-6.1.0\nprivileged=yes\nhtb=yes\nnetem=no Error: Specified qdisc kind is unknown.\nu32=yes\n"
	p := ParsePreflight(out)
	want := Preflight{Kernel: "6.18.44", Arch: "x86_64", TC: "tc utility, iproute2-6.1.0", Sudo: true, Privileged: true, HTB: true, U32: true,
		Why: "Error: Specified qdisc kind is unknown."}
	if p != want {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if msg := p.Problem(false); msg != "" {
		t.Errorf("rate only: %q", msg)
	}
	if msg := p.Problem(true); !strings.Contains(msg, "kernel 6.18.44 has no sch_netem") {
		t.Errorf("delay: %q", msg)
	}
	for out, want := range map[string]string{
		"kernel=5\nuid=0\ntc=\n": "tc not found: install iproute2",
		"kernel=5\nuid=5\ntc=tc 6\nprivileged=no RTNETLINK answers: Operation not permitted\n":                           "needs root or passwordless sudo (CAP_NET_ADMIN): RTNETLINK answers: Operation not permitted",
		"kernel=5\nuid=0\ntc=tc 6\nprivileged=yes\nhtb=no Error: Specified qdisc kind is unknown.\nnetem=yes\nu32=yes\n": "kernel 5 lacks sch_htb or cls_u32",
	} {
		if got := ParsePreflight(out).Problem(false); !strings.HasPrefix(got, want) {
			t.Errorf("%q: got %q, want %q", out, got, want)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	v4, v6, self := netip.MustParseAddr("10.231.0.3"), netip.MustParseAddr("fd00:e2c::3"), netip.MustParseAddr("10.231.0.2")
	out := "10.231.0.3 dev eth0 src 10.231.0.2 uid 0 \\    cache \n" +
		"fd00:e2c::3 from :: dev eth0 proto kernel src fd00:e2c::2 metric 256 pref medium\n" +
		"local 10.231.0.2 dev lo src 10.231.0.2 uid 0 \\    cache <local> \n"
	got, err := ParseRoutes([]netip.Addr{v4, v6, self}, out, "")
	want := map[netip.Addr]string{v4: "eth0", v6: "eth0", self: ""}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v", got, err)
	}
	far := netip.MustParseAddr("8.8.8.8")
	for _, tt := range []struct{ stdout, stderr, want string }{
		{out, "RTNETLINK answers: Network is unreachable\nCommand failed -:4\n", "no route to 8.8.8.8: RTNETLINK answers: Network is unreachable"},
		{out + "8.8.8.8 via 10.0.0.1 dev $(reboot)\n", "", `device name "$(reboot)" is not one e2c writes`},
		{out, "", "no route to 8.8.8.8: ip gave no answer"},
	} {
		if _, err := ParseRoutes([]netip.Addr{v4, v6, self, far}, tt.stdout, tt.stderr); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

func TestApplyError(t *testing.T) {
	cs, _ := Merge([]Entry{{Pos: "network.yaml:3:3", SrcHosts: []string{"a"}, DstHosts: []string{"b"}, Delay: time.Millisecond}})
	rules, _ := Build(cs, map[string][]netip.Addr{"b": {netip.MustParseAddr("10.0.0.2")}}, func(string, netip.Addr) string { return "eth0" })
	stderr := "e2c-tc-device eth0\nError: Specified qdisc kind is unknown.\nCommand failed -:4\n"
	got := ApplyError(rules, stderr)
	want := "device eth0: Error: Specified qdisc kind is unknown.; tc refused traffic to b (delay 1ms, from network.yaml:3:3): qdisc add dev eth0 parent 1:1 handle 2: netem delay 1ms limit 1250"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if s := ApplyScript(rules); !strings.Contains(s, "e2c_del eth0 || exit 3\ntc -batch - <<'E2C_TC' || exit 4\nqdisc add dev eth0 root") {
		t.Errorf("apply script:\n%s", s)
	}
	if s := ResetScript([]string{"eth0", "eth1"}); !strings.Contains(s, "e2c_del eth0 || rc=1\ne2c_del eth1 || rc=1\nexit $rc") {
		t.Errorf("reset script:\n%s", s)
	}
}
