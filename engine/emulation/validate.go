package emulation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/netem"
	"github.com/e2c-dev/e2c/engine/probe"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/results"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Tolerances of the validation: RTT within the larger of 1 ms and 10 % of
// the expected value, throughput within 15 % of the rate.
const (
	rttFloor      = time.Millisecond
	rttShare      = 0.10
	rateTolerance = 0.15
)

// How long measurements take: 20 echoes 20 ms apart, a 2 s TCP stream.
var (
	echoes        = 20
	echoInterval  = 20 * time.Millisecond
	streamFor     = 2 * time.Second
	agentLifetime = 2 * time.Minute
)

// pair is the sample pair measured for one entry.
type pair struct {
	entry    int
	src, dst string
	addr     netip.Addr
}

// pairs picks for each entry its first constraint in host order whose
// source is one of the entry's own sources (not a symmetric reverse).
func (n *Network) pairs() []pair {
	var out []pair
	addrs := n.p.Addresses()
	for i, l := range n.p.Network {
		for _, c := range n.p.Constraints {
			if c.Entry != i || !slices.Contains(l.SrcHosts, c.Src) {
				continue
			}
			if a, ok := measureAddr(addrs[c.Dst]); ok {
				out = append(out, pair{entry: i, src: c.Src, dst: c.Dst, addr: a})
				break
			}
		}
	}
	return out
}

// measureAddr prefers IPv4, which every host has.
func measureAddr(as []netip.Addr) (netip.Addr, bool) {
	var best netip.Addr
	for _, a := range as {
		if netem.Usable(a) && (!best.IsValid() || a.Is4() && !best.Is4()) {
			best = a
		}
	}
	return best, best.IsValid()
}

// Baseline is what the sample pairs measured before any rule was applied.
type Baseline map[int]*probe.Measurement

// MeasureBaseline measures the sample pairs' round-trip times before Apply,
// so that the check afterwards compares the added delay only. Hosts the
// agent cannot run on are left out, with a warning.
func (n *Network) MeasureBaseline(ctx context.Context) Baseline {
	start := time.Now()
	b := Baseline{}
	defer func() {
		fmt.Fprintf(n.o.Out, "network: baseline of %d pairs measured in %s\n", len(b), time.Since(start).Round(time.Millisecond))
	}()
	for _, pr := range n.pairs() {
		m, err := n.measure(ctx, pr, 0)
		if err != nil {
			fmt.Fprintf(n.o.Out, "network: baseline %s -> %s not measured: %v\n", pr.src, pr.dst, err)
			continue
		}
		b[pr.entry] = m
	}
	return b
}

// measure runs the agent's server on the destination and its client on the
// source. stream > 0 also measures throughput.
func (n *Network) measure(ctx context.Context, pr pair, stream time.Duration) (*probe.Measurement, error) {
	if n.o.Agent == nil {
		return nil, errors.New("no agent to measure with")
	}
	src, srcAgent, err := n.agent(ctx, pr.src)
	if err != nil {
		return nil, err
	}
	dst, dstAgent, err := n.agent(ctx, pr.dst)
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := &readyWriter{port: make(chan int, 1)}
	served := make(chan error, 1)
	go func() {
		_, err := dst.Run(sctx, transport.Command{Script: transport.AgentCommand(dstAgent, "serve", "--for", agentLifetime.String()), Stdout: ready})
		served <- err
	}()
	var port int
	select {
	case port = <-ready.port:
	case err := <-served:
		return nil, fmt.Errorf("agent on %s: %v", pr.dst, err)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("agent on %s: not ready after 30s", pr.dst)
	}
	args := []string{"measure", "--to", pr.addr.String(), "--port", strconv.Itoa(port), "--echoes", strconv.Itoa(echoes),
		"--interval", echoInterval.String(), "--wait", "3s"}
	if stream > 0 {
		args = append(args, "--stream", stream.String())
	}
	res, err := src.Run(ctx, transport.Command{Script: transport.AgentCommand(srcAgent, args...)})
	stop()
	<-served
	if err != nil {
		return nil, fmt.Errorf("agent on %s: %w", pr.src, err)
	}
	var m probe.Measurement
	if err := json.Unmarshal([]byte(res.Stdout), &m); err != nil {
		return nil, fmt.Errorf("agent on %s printed %q: %w", pr.src, res.Stdout, err)
	}
	return &m, nil
}

// agent copies the e2c binary for the host's architecture to it (unless
// it has that build) and returns the host's transport and the agent's path.
func (n *Network) agent(ctx context.Context, host string) (transport.Runner, string, error) {
	r, err := n.o.Connect(ctx, host)
	if err != nil {
		return nil, "", err
	}
	arch := arch.Of(n.pre[host].Arch)
	local, err := n.o.Agent(arch)
	if err != nil {
		return nil, "", err
	}
	path, err := probe.Install(ctx, r, local)
	if err != nil {
		return nil, "", fmt.Errorf("copying the agent to %s: %w", host, err)
	}
	return r, path, nil
}

// readyWriter catches the port in the agent's "ready <port>" line.
type readyWriter struct {
	port chan int
	buf  bytes.Buffer
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), probe.Ready); ok {
			if port, err := strconv.Atoi(rest); err == nil {
				select {
				case w.port <- port:
				default:
				}
			}
		}
	}
}

// Check is the validation of one entry.
type Check struct {
	Entry     int       `json:"entry"`
	Pos       string    `json:"pos"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Symmetric bool      `json:"symmetric"`
	Folder    string    `json:"folder"`
	Pair      [2]string `json:"pair,omitempty"`
	Address   string    `json:"address,omitempty"`
	// RTT in milliseconds: the baseline before, the measured average after,
	// and what the constraints make expected.
	BaselineRTT  float64 `json:"baseline_rtt_ms"`
	RTT          float64 `json:"rtt_ms"`
	RTTMin       float64 `json:"rtt_min_ms"`
	RTTMax       float64 `json:"rtt_max_ms"`
	ExpectedRTT  float64 `json:"expected_rtt_ms"`
	RTTTolerance float64 `json:"rtt_tolerance_ms"`
	RTTOK        bool    `json:"rtt_ok"`
	// Throughput in bits per second, when the link has a rate.
	Throughput         float64 `json:"throughput_bit_s,omitempty"`
	ExpectedThroughput float64 `json:"expected_throughput_bit_s,omitempty"`
	ThroughputOK       *bool   `json:"throughput_ok,omitempty"`
	// Loss in percent; informative: a handful of echoes cannot estimate it.
	Loss         float64 `json:"loss_percent"`
	ExpectedLoss float64 `json:"expected_loss_percent"`
	OK           bool    `json:"ok"`
	Error        string  `json:"error,omitempty"`
}

// Summary is one line on the entry, as printed and written.
func (c *Check) Summary() string {
	head := fmt.Sprintf("%s %s -> %s (%s)", c.Pos, c.Src, c.Dst, symmetry(c.Symmetric))
	if c.Error != "" {
		return head + ": not measured: " + c.Error
	}
	s := fmt.Sprintf("%s, %s -> %s: rtt %.2f ms (expected %.2f ± %.2f) %s", head, c.Pair[0], c.Pair[1], c.RTT, c.ExpectedRTT, c.RTTTolerance, okWord(c.RTTOK))
	switch {
	case c.ThroughputOK != nil:
		s += fmt.Sprintf("; throughput %s (expected %s ± %.0f%%) %s", mbit(c.Throughput), mbit(c.ExpectedThroughput), rateTolerance*100, okWord(*c.ThroughputOK))
	case c.ExpectedThroughput > 0:
		s += fmt.Sprintf("; throughput %s (rate %s; informative: TCP backs off at each loss)", mbit(c.Throughput), mbit(c.ExpectedThroughput))
	}
	return s + fmt.Sprintf("; loss %.1f%% (expected %.1f%%, informative)", c.Loss, c.ExpectedLoss)
}

func symmetry(s bool) string {
	if s {
		return "symmetric"
	}
	return "asymmetric"
}

func okWord(ok bool) string {
	if ok {
		return "within tolerance"
	}
	return "OUT OF TOLERANCE"
}

func mbit(bps float64) string { return strconv.FormatFloat(bps/1e6, 'f', 2, 64) + " Mbit/s" }

// Validate dumps the rules and tc's state of every shaped host and measures
// the sample pair of every entry, into dir/network-validate. It returns the
// checks; an error means files could not be written.
func (n *Network) Validate(ctx context.Context, dir string, base Baseline) ([]*Check, error) {
	byHost := n.byHost()
	dumps := map[string]string{}
	var mu sync.Mutex
	err := each(ctx, n.o.Connect, n.o.Forks, slices.Sorted(maps.Keys(byHost)), func(ctx context.Context, h string, r transport.Runner) error {
		var b strings.Builder
		for _, rs := range byHost[h] {
			fmt.Fprintf(&b, "# tc -batch - (device %s)\n%s\n", rs.Device, strings.Join(rs.Batch(), "\n"))
		}
		res, err := r.Run(ctx, transport.Command{Script: netem.ShowScript(netem.Devices(byHost[h]))})
		b.WriteString(res.Stdout)
		if err != nil {
			fmt.Fprintf(&b, "# %v\n", err)
		}
		mu.Lock()
		dumps[h] = b.String()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := results.WriteJSON(dir, "network-validate/plan.json", n.Rules); err != nil {
		return nil, err
	}
	// What each host is: kernel, tc, modules; for whoever reads the numbers.
	if err := results.WriteJSON(dir, "network-validate/hosts.json", n.pre); err != nil {
		return nil, err
	}
	for h, d := range dumps {
		if err := results.WriteFile(dir, "network-validate/tc-"+h+".txt", writeString(d)); err != nil {
			return nil, err
		}
	}
	pairs := map[int]pair{}
	for _, pr := range n.pairs() {
		pairs[pr.entry] = pr
	}
	var checks []*Check
	folders := map[string]int{}
	for i, l := range n.p.Network {
		c := &Check{Entry: i, Pos: l.Pos, Src: l.Src, Dst: l.Dst, Symmetric: l.Symmetric}
		c.Folder = folderName(l.Src, l.Dst, l.Symmetric, folders)
		checks = append(checks, c)
		folder := "network-validate/" + c.Folder + "/"
		for _, h := range append(slices.Clone(l.SrcHosts), l.DstHosts...) {
			if d, ok := dumps[h]; ok && (slices.Contains(l.SrcHosts, h) || l.Symmetric) {
				if err := results.WriteFile(dir, folder+"tc-"+h+".txt", writeString(d)); err != nil {
					return nil, err
				}
			}
		}
		if pr, ok := pairs[i]; ok {
			n.check(ctx, c, pr, base[i])
			if err := results.WriteJSON(dir, folder+pr.src+"-"+pr.dst+".json", c); err != nil {
				return nil, err
			}
		} else {
			c.Error = "no pair of hosts with a usable address"
		}
		if err := results.WriteFile(dir, folder+"summary.txt", writeString(c.Summary()+"\n")); err != nil {
			return nil, err
		}
	}
	if err := results.WriteJSON(dir, "network-validate/summary.json", checks); err != nil {
		return nil, err
	}
	n.table(checks)
	return checks, nil
}

// check measures one pair and compares with what the constraints expect.
func (n *Network) check(ctx context.Context, c *Check, pr pair, base *probe.Measurement) {
	c.Pair, c.Address = [2]string{pr.src, pr.dst}, pr.addr.String()
	fwd, back := n.shape(pr.src, pr.dst), n.shape(pr.dst, pr.src)
	stream := time.Duration(0)
	if fwd.Rate > 0 {
		stream = streamFor
	}
	fmt.Fprintf(n.o.Out, "network: measuring %s -> %s (%s)\n", pr.src, pr.dst, c.Pos)
	m, err := n.measure(ctx, pr, stream)
	if err != nil {
		c.Error = err.Error()
		return
	}
	if m.RTT.Received == 0 {
		c.Error = fmt.Sprintf("all %d echoes lost", m.RTT.Sent)
		return
	}
	if base != nil {
		c.BaselineRTT = ms(base.RTT.Avg())
	}
	c.RTT, c.RTTMin, c.RTTMax = ms(m.RTT.Avg()), ms(m.RTT.Min()), ms(m.RTT.Max())
	c.ExpectedRTT = c.BaselineRTT + ms(fwd.Delay+back.Delay)
	c.RTTTolerance = math.Max(ms(rttFloor), rttShare*c.ExpectedRTT)
	c.RTTOK = math.Abs(c.RTT-c.ExpectedRTT) <= c.RTTTolerance
	c.Loss = m.RTT.Loss()
	c.ExpectedLoss = 100 * (1 - (1-fwd.Loss/100)*(1-back.Loss/100))
	c.OK = c.RTTOK
	if fwd.Rate > 0 {
		c.Throughput, c.ExpectedThroughput = m.Throughput, float64(fwd.Rate)
		// One TCP stream cannot fill a lossy link (it backs off at each
		// loss): its throughput is then informative, not a check.
		if back.Loss == 0 && fwd.Loss == 0 {
			ok := math.Abs(m.Throughput-c.ExpectedThroughput) <= rateTolerance*c.ExpectedThroughput
			c.ThroughputOK = &ok
			c.OK = c.OK && ok
		}
	}
}

// shape is the merged constraint from a to b, zero when none.
func (n *Network) shape(a, b string) netem.Shape {
	for _, c := range n.p.Constraints {
		if c.Src == a && c.Dst == b {
			return c.Shape
		}
	}
	return netem.Shape{}
}

func (n *Network) table(checks []*Check) {
	t := tablewriter.NewTable(n.o.Out, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAutoWrap(tw.WrapNone))
	t.Header("entry", "pair", "rtt ms", "expected", "throughput", "expected", "loss %", "result")
	for _, c := range checks {
		if c.Error != "" {
			t.Append(c.Pos, "", "", "", "", "", "", "not measured: "+c.Error)
			continue
		}
		tput, want := "", ""
		if c.ExpectedThroughput > 0 {
			tput, want = mbit(c.Throughput), mbit(c.ExpectedThroughput)
		}
		if c.ExpectedThroughput > 0 && c.ThroughputOK == nil {
			want += " (informative)"
		}
		result := "ok"
		if !c.OK {
			result = "OUT OF TOLERANCE"
		}
		t.Append(c.Pos, c.Pair[0]+" -> "+c.Pair[1], fmt.Sprintf("%.2f", c.RTT), fmt.Sprintf("%.2f ± %.2f", c.ExpectedRTT, c.RTTTolerance),
			tput, want, fmt.Sprintf("%.1f", c.Loss), result)
	}
	t.Render()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// folderName is the E2Clab folder of an entry, <src>-<dst>-<symmetric|
// asymmetric>, with the characters of patterns that have no place in a
// file name replaced; a second entry of the same name gets -2.
func folderName(src, dst string, sym bool, seen map[string]int) string {
	name := unsafeChars.ReplaceAllString(src, "_") + "-" + unsafeChars.ReplaceAllString(dst, "_") + "-" + symmetry(sym)
	seen[name]++
	if k := seen[name]; k > 1 {
		name += "-" + strconv.Itoa(k)
	}
	return name
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}
