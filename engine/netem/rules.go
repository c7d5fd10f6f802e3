package netem

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Unshaped is the rate of the default class (traffic to no destination of
// the plan) and of a destination with a delay or loss but no rate: far
// above any NIC, so that it never limits.
const Unshaped uint64 = 100e9

// lineRate sizes netem's queue when a constraint has no rate of its own.
const lineRate uint64 = 10e9

// defaultMinor is the HTB class of everything else.
const defaultMinor = 0xffff

// maxDests is the most destinations one device can have: class minors run
// from 1, netem majors from 2, and both stay below the default class.
const maxDests = 0xfffd

// Dest is one destination host of a source's traffic on one device.
type Dest struct {
	Host  string       `json:"host"`
	Addrs []netip.Addr `json:"addresses"`
	Shape Shape        `json:"shape"`
	From  []string     `json:"from"`
}

// Rules are the tc rules of one host and device, destinations sorted by
// host so that class numbers are stable between runs.
type Rules struct {
	Host   string `json:"host"`
	Device string `json:"device"`
	Dests  []Dest `json:"destinations"`
}

// MarshalJSON adds the batch to the rules, for the plan and the run folder.
func (r *Rules) MarshalJSON() ([]byte, error) {
	type plain Rules
	return json.Marshal(struct {
		*plain
		Batch []string `json:"batch"`
	}{(*plain)(r), r.Batch()})
}

// Usable reports whether traffic to a can be shaped on the wire: loopback,
// link-local and unspecified addresses never leave the machine or the link
// the way experiment traffic does.
func Usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified() && !a.IsMulticast()
}

// Build groups the constraints into rules per source host and device.
// addrs gives each destination host's addresses; device says which device of
// the source carries traffic to an address ("" when it cannot be shaped, such
// as an address of the source itself).
func Build(cs []Constraint, addrs map[string][]netip.Addr, device func(src string, a netip.Addr) string) ([]*Rules, error) {
	byKey := map[[2]string]*Rules{}
	var out []*Rules
	for _, c := range cs {
		usable := slices.DeleteFunc(slices.Clone(addrs[c.Dst]), func(a netip.Addr) bool { return !Usable(a) })
		if len(usable) == 0 {
			return nil, fmt.Errorf("%s: host %s has no address that traffic from %s can be shaped to (only loopback or link-local ones)", c.From[0], c.Dst, c.Src)
		}
		for _, a := range usable {
			dev := device(c.Src, a)
			if dev == "" {
				continue
			}
			key := [2]string{c.Src, dev}
			r := byKey[key]
			if r == nil {
				r = &Rules{Host: c.Src, Device: dev}
				byKey[key] = r
				out = append(out, r)
			}
			if n := len(r.Dests); n > 0 && r.Dests[n-1].Host == c.Dst {
				r.Dests[n-1].Addrs = append(r.Dests[n-1].Addrs, a)
				continue
			}
			r.Dests = append(r.Dests, Dest{Host: c.Dst, Addrs: []netip.Addr{a}, Shape: c.Shape, From: c.From})
		}
	}
	for _, r := range out {
		if len(r.Dests) > maxDests {
			return nil, fmt.Errorf("host %s, device %s: %d destinations, at most %d per device", r.Host, r.Device, len(r.Dests), maxDests)
		}
	}
	slices.SortFunc(out, func(a, b *Rules) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return strings.Compare(a.Device, b.Device)
	})
	return out, nil
}

// NeedsNetem reports whether any destination needs sch_netem.
func (r *Rules) NeedsNetem() bool {
	return slices.ContainsFunc(r.Dests, func(d Dest) bool { return d.Shape.NeedsNetem() })
}

// Batch is the input of `tc -batch -` that builds the whole tree on an empty
// device: lines without the leading "tc".
func (r *Rules) Batch() []string {
	dev := r.Device
	lines := []string{
		fmt.Sprintf("qdisc add dev %s root handle 1: htb default %x", dev, defaultMinor),
		fmt.Sprintf("class add dev %s parent 1: classid 1:%x htb %s", dev, defaultMinor, htbRate(Unshaped)),
	}
	for i, d := range r.Dests {
		class := fmt.Sprintf("1:%x", i+1)
		rate := d.Shape.Rate
		if rate == 0 {
			rate = Unshaped
		}
		lines = append(lines, fmt.Sprintf("class add dev %s parent 1: classid %s htb %s", dev, class, htbRate(rate)))
		if d.Shape.NeedsNetem() {
			lines = append(lines, fmt.Sprintf("qdisc add dev %s parent %s handle %x: netem %s", dev, class, i+2, netemArgs(d.Shape)))
		}
		for _, a := range d.Addrs {
			if a.Is4() {
				lines = append(lines, fmt.Sprintf("filter add dev %s parent 1: protocol ip prio 1 u32 match ip dst %s/32 flowid %s", dev, a, class))
			} else {
				lines = append(lines, fmt.Sprintf("filter add dev %s parent 1: protocol ipv6 prio 2 u32 match ip6 dst %s/128 flowid %s", dev, a, class))
			}
		}
	}
	return lines
}

// Line says which destination line n (1-based) of the batch is about, for
// the error tc gives as "Command failed -:n".
func (r *Rules) Line(n int) string {
	lines := r.Batch()
	if n < 1 || n > len(lines) {
		return ""
	}
	if n <= 2 {
		return fmt.Sprintf("the HTB root of %s: %s", r.Device, lines[n-1])
	}
	// Count the destination whose lines hold n.
	at := 2
	for _, d := range r.Dests {
		k := 1 + len(d.Addrs)
		if d.Shape.NeedsNetem() {
			k++
		}
		if n <= at+k {
			return fmt.Sprintf("traffic to %s (%s, from %s): %s", d.Host, d.Shape, strings.Join(d.From, ", "), lines[n-1])
		}
		at += k
	}
	return lines[n-1]
}

// htbRate is a class's rate and ceil (equal: a class never borrows), an
// explicit quantum (tc's own, rate/10, is out of range above about 16 mbit
// and makes the kernel warn) and a burst of one millisecond at the rate, so
// that fast classes are not held back by timer resolution.
func htbRate(rate uint64) string {
	burst := max(1600, rate/8/1000)
	return fmt.Sprintf("rate %s ceil %s burst %d cburst %d quantum 1514", FormatRate(rate), FormatRate(rate), burst, burst)
}

func netemArgs(s Shape) string {
	var b strings.Builder
	if s.Delay > 0 {
		b.WriteString("delay " + FormatDelay(s.Delay) + " ")
	}
	if s.Loss > 0 {
		b.WriteString("loss " + formatFloat(s.Loss) + "% ")
	}
	fmt.Fprintf(&b, "limit %d", QueueLimit(s))
	return b.String()
}

// QueueLimit is netem's queue length in packets: it holds every delayed
// packet, so it must hold 1.5 × rate × delay of 1500-byte packets, or netem
// drops packets that look like extra loss. Never below tc's 1000, never above
// 2^24 (a 10 gbit link delayed 2 s).
func QueueLimit(s Shape) uint64 {
	rate := s.Rate
	if rate == 0 {
		rate = lineRate
	}
	n := math.Ceil(1.5 * float64(rate) / 8 * s.Delay.Seconds() / 1500)
	return uint64(min(max(n, 1000), 1<<24))
}

// FormatRate writes a rate in bits per second the way tc reads it, in the
// largest unit that keeps it whole.
func FormatRate(r uint64) string {
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}} {
		if r >= u.mult && r%u.mult == 0 {
			return strconv.FormatUint(r/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

// FormatDelay writes a delay the way tc reads it: whole milliseconds when
// exact, else microseconds (tc's resolution).
func FormatDelay(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return strconv.FormatInt(int64(d.Round(time.Microsecond)/time.Microsecond), 10) + "us"
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
