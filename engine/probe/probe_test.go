package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serve starts a server on loopback and returns its port.
func serve(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ports := make(chan int, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, 0, func(p int) { ports <- p }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case p := <-ports:
		return p
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return 0
}

func TestEchoAndStreamOnLoopback(t *testing.T) {
	port := serve(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	r, err := Echo(context.Background(), addr, 5, 10*time.Millisecond, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 5 || r.Received != 5 || r.Loss() != 0 {
		t.Fatalf("echoes %+v: want 5 sent, 5 received", r)
	}
	if r.Min() <= 0 || r.Min() > r.Avg() || r.Avg() > r.Max() || r.Max() > 100*time.Millisecond {
		t.Fatalf("loopback RTTs min %v avg %v max %v: want 0 < min <= avg <= max < 100ms", r.Min(), r.Avg(), r.Max())
	}
	bps, err := Stream(context.Background(), addr, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Loopback moves gigabits; anything below 50 Mbit/s means the count
	// or the clock is wrong.
	if bps < 50e6 {
		t.Fatalf("loopback throughput %.0f bit/s, want above 50 Mbit/s", bps)
	}
}

func TestEchoCountsLosses(t *testing.T) {
	// Nothing answers on this port: every echo is lost.
	port := serve(t)
	r, err := Echo(context.Background(), "127.0.0.1:"+strconv.Itoa(port+1), 3, time.Millisecond, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 3 || r.Received != 0 || r.Loss() != 100 || r.Avg() != 0 {
		t.Fatalf("echoes to nobody: %+v loss %v", r, r.Loss())
	}
}

// agent runs the agent's command line with args.
func agent(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := Command()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func TestCommandMeasure(t *testing.T) {
	port := serve(t)
	out, err := agent("measure", "--to", "::1", "--port", strconv.Itoa(port), "--echoes", "3", "--interval", "1ms", "--wait", "200ms", "--stream", "100ms")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	var m Measurement
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if m.RTT.Received != 3 || m.Throughput <= 0 || m.To != "[::1]:"+strconv.Itoa(port) {
		t.Fatalf("measurement %+v", m)
	}
	for _, bad := range [][]string{{}, {"fly"}, {"measure", "--port", "1"}, {"measure", "-to", "::1", "--port", "1"}, {"monitor", "--interval", "0s"}} {
		if out, err := agent(bad...); err == nil {
			t.Errorf("agent %q: no error\n%s", bad, out)
		}
	}
}

// Monitor reads this machine's /proc: each line has every column, CPU
// shares adding up to 100 and memory within the machine's.
func TestMonitor(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 350*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := Monitor(ctx, 100*time.Millisecond, DefaultStats, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	header := `"epoch","usr","sys","idl","wai","stl","used","free","buff","cach","recv","send","read","writ"`
	if lines[0] != header || len(lines) < 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	cols := len(strings.Split(header, ","))
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != cols {
			t.Fatalf("%d columns in %q, want %d", len(f), l, cols)
		}
		var cpu float64
		for _, v := range f[1:6] {
			x, _ := strconv.ParseFloat(v, 64)
			cpu += x
		}
		epoch, _ := strconv.ParseFloat(f[0], 64)
		used, _ := strconv.ParseFloat(f[6], 64)
		if (cpu < 99 || cpu > 101) && cpu != 0 || time.Since(time.Unix(int64(epoch), 0)) > time.Minute || used <= 0 {
			t.Errorf("sample %q: cpu %.1f%%, epoch %v, used %v", l, cpu, epoch, used)
		}
	}
}

// TestMonitorStats: dstat's options as E2Clab passes them choose the
// columns, in their order; what e2c's sampler cannot do is refused by name.
func TestMonitorStats(t *testing.T) {
	for _, c := range []struct{ options, stats, header, err string }{
		{options: "-m -c -n", stats: "mem,cpu,net", header: `"epoch","used","free","buff","cach","usr","sys","idl","wai","stl","recv","send"`},
		{options: "-cmnd", stats: "cpu,mem,net,disk"},
		{options: "--disk -T --epoch -d", stats: "disk", header: `"epoch","read","writ"`},
		{options: "-c -g", err: `dstat option "-g" is not supported`},
		{options: "--top-cpu", err: `"--top-cpu" is not supported`},
		{options: "-cy", err: `"-y" is not supported`},
		{options: "--epoch", err: "ask for no statistics"},
	} {
		stats, err := MonitorStats(c.options)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.options, err, c.err)
			}
		case err != nil || strings.Join(stats, ",") != c.stats:
			t.Errorf("%q: %v %v, want %s", c.options, stats, err, c.stats)
		case c.header != "" && MonitorHeader(stats) != c.header:
			t.Errorf("%q: header %s", c.options, MonitorHeader(stats))
		}
	}
	if got := DstatFlags([]string{"mem", "cpu"}); got != "--epoch --mem --cpu" {
		t.Errorf("DstatFlags = %q", got)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	if err := Monitor(ctx, 100*time.Millisecond, []string{"net"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != `"epoch","recv","send"` || len(lines) < 2 || len(strings.Split(lines[1], ",")) != 3 {
		t.Errorf("net only:\n%s", out.String())
	}
}
