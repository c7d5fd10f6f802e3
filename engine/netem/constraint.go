// Package netem turns the links of network.yaml into traffic control rules:
// directed constraints merged per pair of hosts, then per host and device one
// tc batch (an HTB root, a class per destination, a netem child for delay and
// loss, u32 filters on the destination addresses), the commands that remove
// them, and the readers of what tc and ip print on the hosts.
//
// It runs nothing itself: the caller sends the scripts over its transport.
package netem

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/schema"
)

// Entry is one networks entry resolved to hosts.
type Entry struct {
	Pos       string // file:line:col, for messages
	Src, Dst  string // the patterns as written
	SrcHosts  []string
	DstHosts  []string
	Delay     time.Duration // one way; 0 for none
	Rate      uint64        // bits per second; 0 for none
	Loss      float64       // percent
	Symmetric bool
}

// Shape is what one direction of a link does to packets.
type Shape struct {
	Delay time.Duration // one way
	Rate  uint64        // bits per second
	Loss  float64       // percent
}

// NeedsNetem reports whether the shape needs sch_netem: delay and loss do, a
// rate alone is HTB's.
func (s Shape) NeedsNetem() bool { return s.Delay > 0 || s.Loss > 0 }

func (s Shape) String() string {
	var parts []string
	if s.Delay > 0 {
		parts = append(parts, "delay "+FormatDelay(s.Delay))
	}
	if s.Rate > 0 {
		parts = append(parts, "rate "+FormatRate(s.Rate))
	}
	if s.Loss > 0 {
		parts = append(parts, "loss "+formatFloat(s.Loss)+"%")
	}
	return strings.Join(parts, ", ")
}

// Constraint shapes the traffic from host Src to host Dst, on Src's egress.
type Constraint struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Shape Shape  `json:"shape"`
	// From are the entries (file:line:col) that asked for it; more than one
	// when entries agree, or a symmetric entry meets its explicit reverse.
	From []string `json:"from"`
	// Entry is the index of the first entry that asked for it.
	Entry int `json:"entry"`
}

// ConflictError is two entries asking for different shapes between the
// same pair of hosts. EnOSlib keeps the last one silently; e2c refuses.
type ConflictError struct {
	Entries    [2]int    // indices of the entries, in file order
	Pos        [2]string // their positions
	Src, Dst   string    // the first pair of hosts they disagree on
	Was, Asked Shape
	More       int // other pairs the same two entries disagree on
}

func (e *ConflictError) Error() string { return e.Pos[1] + ": " + e.Msg() }

// Msg is the error without the position of the second entry.
func (e *ConflictError) Msg() string {
	more := ""
	if e.More > 0 {
		more = fmt.Sprintf(" (and %d more pairs)", e.More)
	}
	return fmt.Sprintf("traffic from %s to %s%s is shaped %s here but %s by the entry at %s: make the entries agree or narrow their patterns",
		e.Src, e.Dst, more, e.Asked, e.Was, e.Pos[0])
}

// Merge computes the directed constraints of entries, sorted by source then
// destination. Entries never erase one another: two entries sharing a
// source host add up, identical duplicates collapse into one, and
// different shapes for one pair are a *ConflictError, one for each two
// entries that disagree.
func Merge(entries []Entry) ([]Constraint, []error) {
	byPair := map[[2]string]int{}
	var out []Constraint
	conflicts := map[[2]int]*ConflictError{}
	var errs []error
	add := func(i int, src, dst string) {
		e := entries[i]
		if src == dst {
			return // a host does not shape traffic to itself
		}
		s := Shape{Delay: e.Delay, Rate: e.Rate, Loss: e.Loss}
		key := [2]string{src, dst}
		j, seen := byPair[key]
		if !seen {
			byPair[key] = len(out)
			out = append(out, Constraint{Src: src, Dst: dst, Shape: s, From: []string{e.Pos}, Entry: i})
			return
		}
		c := &out[j]
		if c.Shape != s {
			pair := [2]int{c.Entry, i}
			if ce := conflicts[pair]; ce != nil {
				ce.More++
				return
			}
			ce := &ConflictError{Entries: pair, Pos: [2]string{entries[c.Entry].Pos, e.Pos}, Src: src, Dst: dst, Was: c.Shape, Asked: s}
			conflicts[pair] = ce
			errs = append(errs, ce)
			return
		}
		if !slices.Contains(c.From, e.Pos) {
			c.From = append(c.From, e.Pos)
		}
	}
	for i, e := range entries {
		for _, a := range e.SrcHosts {
			for _, b := range e.DstHosts {
				add(i, a, b)
				if e.Symmetric {
					add(i, b, a)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Constraint) int {
		if c := strings.Compare(a.Src, b.Src); c != 0 {
			return c
		}
		return strings.Compare(a.Dst, b.Dst)
	})
	return out, errs
}

// Sources lists the hosts that shape traffic, sorted.
func Sources(cs []Constraint) []string {
	var out []string
	for _, c := range cs {
		if len(out) == 0 || out[len(out)-1] != c.Src {
			out = append(out, c.Src)
		}
	}
	return out
}

// shapeJSON is how a Shape reads in JSON files: tc's own units.
type shapeJSON struct {
	Delay string  `json:"delay,omitempty"`
	Rate  string  `json:"rate,omitempty"`
	Loss  float64 `json:"loss,omitempty"`
}

func (s Shape) MarshalJSON() ([]byte, error) {
	j := shapeJSON{Loss: s.Loss}
	if s.Delay > 0 {
		j.Delay = FormatDelay(s.Delay)
	}
	if s.Rate > 0 {
		j.Rate = FormatRate(s.Rate)
	}
	return json.Marshal(j)
}

func (s *Shape) UnmarshalJSON(data []byte) error {
	var j shapeJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*s = Shape{Loss: j.Loss}
	var err error
	if j.Delay != "" {
		if s.Delay, err = schema.ParseDelay(j.Delay); err != nil {
			return err
		}
	}
	if j.Rate != "" {
		var r schema.Rate
		if r, err = schema.ParseRate(j.Rate); err != nil {
			return err
		}
		s.Rate = uint64(r)
	}
	return nil
}
