package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Network is network.yaml: the emulated links between groups of hosts.
type Network struct {
	Node
	Links []Link
}

// Link is one networks entry: traffic from Src hosts to Dst hosts is delayed,
// limited and dropped on the sender's egress. Symmetric also shapes Dst to Src.
// Has tells which keys were written: a timed change (timeline.yaml) sets
// only those.
type Link struct {
	Node
	Src, Dst  string
	Delay     time.Duration // one way; 0 when not given
	Rate      Rate          // 0 when not given
	Loss      float64       // percent
	Symmetric bool
}

// Rate is a bandwidth in bits per second.
type Rate uint64

var rateUnits = []struct {
	suffix string
	mult   float64
}{{"tbit", 1e12}, {"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}

// String writes the rate the way tc reads it, in the largest exact unit.
func (r Rate) String() string {
	for _, u := range rateUnits {
		if m := uint64(u.mult); uint64(r)%m == 0 && uint64(r) >= m {
			return strconv.FormatUint(uint64(r)/m, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(r), 10) + "bit"
}

// ParseRate reads a rate such as 150mbit. tc's bps, kbps and mbps mean bytes
// per second, which is rarely what a researcher means, so they are refused.
func ParseRate(s string) (Rate, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	if strings.HasSuffix(low, "bps") {
		return 0, fmt.Errorf("found %q: tc reads \"bps\" as bytes per second; write bits, such as \"8mbit\" for 1 megabyte per second", s)
	}
	for _, u := range rateUnits {
		if num, ok := strings.CutSuffix(low, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || !(v > 0) || math.IsInf(v, 0) || v*u.mult > math.MaxInt64 || v*u.mult < 1 {
				break
			}
			return Rate(math.Round(v * u.mult)), nil
		}
	}
	return 0, fmt.Errorf("found %q, expected a positive rate with a unit: bit, kbit, mbit, gbit or tbit (such as \"150mbit\")", s)
}

// ParseDelay reads a one-way delay such as 50ms. A bare number is refused:
// tc would read it as microseconds, which nobody means.
func ParseDelay(s string) (time.Duration, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}} {
		if num, ok := strings.CutSuffix(low, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || !(v >= 0) || v*float64(u.unit) > float64(time.Hour) {
				break
			}
			d := time.Duration(math.Round(v * float64(u.unit)))
			if d == 0 && v > 0 {
				return 0, fmt.Errorf("found %q: below tc's resolution of 1us", s)
			}
			return d, nil
		}
	}
	return 0, fmt.Errorf("found %q, expected a delay with a unit: us, ms or s (such as \"50ms\"), at most one hour", s)
}

// ParseLoss reads a loss percentage such as 2% or 0.5%.
func ParseLoss(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || v < 0 || v > 100 || math.IsNaN(v) {
		return 0, fmt.Errorf("found %q, expected a percentage from 0%% to 100%% such as \"2%%\"", s)
	}
	return v, nil
}

var linkKeys = []string{"src", "dst", "delay", "rate", "loss", "symmetric"}

// DecodeNetwork reads network.yaml. networks may be empty or null: no
// emulation.
func DecodeNetwork(file string, data []byte) (*Network, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	net := &Network{}
	root := d.document(data, `"networks:" with a list of links (or null for none)`)
	if root == nil {
		return net, errs.Err()
	}
	fs, node := d.fields(root, "network", []string{"networks"})
	net.Node = node
	d.require(node, "network", "networks")
	for _, f := range fs {
		if isNull(f.v) {
			continue
		}
		v := resolve(f.v)
		if v.Kind != yaml.SequenceNode {
			d.errorf(v, "networks: found %s, expected a list of links with src, dst, delay, rate, loss", describe(v))
			continue
		}
		for _, c := range v.Content {
			net.Links = append(net.Links, d.link(c))
		}
	}
	return net, errs.Err()
}

func (d *decoder) link(n *yaml.Node) Link {
	l, bad := d.linkFields(n, "networks")
	if l.Delay == 0 && l.Rate == 0 && !bad && resolve(n).Kind == yaml.MappingNode {
		d.errs.At(l.Pos, "network link: needs a delay or a rate above zero (or both); loss alone is not a link constraint")
	}
	return l
}

// linkFields reads a link's keys, as network.yaml and timeline.yaml write
// them; prefix names the values in messages. bad reports a value already
// reported.
func (d *decoder) linkFields(n *yaml.Node, prefix string) (l Link, bad bool) {
	fs, node := d.fields(n, "network link", linkKeys)
	l.Node = node
	for _, f := range fs {
		key := prefix + "." + f.key
		var err error
		switch f.key {
		case "src":
			l.Src = d.str(f.v, key)
		case "dst":
			l.Dst = d.str(f.v, key)
		case "delay":
			l.Delay, err = ParseDelay(d.str(f.v, key))
		case "rate":
			l.Rate, err = ParseRate(d.str(f.v, key))
		case "loss":
			l.Loss, err = ParseLoss(d.str(f.v, key))
		case "symmetric":
			l.Symmetric = d.boolean(f.v, key)
		}
		if err != nil && f.v.Kind == yaml.ScalarNode && !isNull(f.v) {
			d.errorf(f.v, "%s: %v", key, err)
		}
		bad = bad || err != nil
	}
	if resolve(n).Kind == yaml.MappingNode {
		d.require(node, "network link", "src", "dst")
	}
	return l, bad
}
