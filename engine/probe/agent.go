package probe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/e2c-dev/e2c/engine/transport"
)

// Measurement is what `agent measure` prints, as one JSON object.
type Measurement struct {
	To         string  `json:"to"`
	RTT        RTT     `json:"rtt"`
	Throughput float64 `json:"throughput_bit_s,omitempty"` // 0 when not measured
}

// Main runs the agent's command line: `serve` (until -for has passed, or it
// is killed), `measure`, or `monitor`. It is what `e2c agent` runs on the
// hosts.
func Main(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("agent: expected serve or measure")
	}
	fs := flag.NewFlagSet("agent "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	switch args[0] {
	case "serve":
		port := fs.Int("port", 0, "port for TCP and UDP (0: any free one)")
		life := fs.Duration("for", 2*time.Minute, "stop after this long, whatever happens")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *life)
		defer cancel()
		return Serve(ctx, *port, func(p int) { fmt.Fprintf(out, "%s%d\n", Ready, p) })
	case "measure":
		to := fs.String("to", "", "address of the serving agent")
		port := fs.Int("port", 0, "its port")
		echoes := fs.Int("echoes", 10, "UDP echoes")
		interval := fs.Duration("interval", 100*time.Millisecond, "between echoes")
		wait := fs.Duration("wait", 2*time.Second, "for the last echoes")
		stream := fs.Duration("stream", 0, "TCP stream length (0: no throughput)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *to == "" || *port <= 0 || *echoes < 1 {
			return errors.New("agent measure: needs -to, -port and at least one echo")
		}
		addr := net.JoinHostPort(*to, strconv.Itoa(*port))
		m := Measurement{To: addr}
		var err error
		if m.RTT, err = Echo(ctx, addr, *echoes, *interval, *wait); err != nil {
			return err
		}
		if *stream > 0 {
			if m.Throughput, err = Stream(ctx, addr, *stream); err != nil {
				return err
			}
		}
		return json.NewEncoder(out).Encode(m)
	case "monitor":
		interval := fs.Duration("interval", time.Second, "between samples")
		life := fs.Duration("for", 24*time.Hour, "stop after this long, whatever happens")
		file := fs.String("out", "", "CSV file to write (default: standard output)")
		stats := fs.String("stats", strings.Join(DefaultStats, ","), "groups of columns, in order: cpu, mem, net, disk")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *interval <= 0 {
			return errors.New("agent monitor: -interval must be positive")
		}
		ctx, cancel := context.WithTimeout(ctx, *life)
		defer cancel()
		// A TERM (e2c stopping it) ends the sampling cleanly.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
		defer stop()
		w := out
		if *file != "" {
			f, err := os.Create(*file)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return Monitor(ctx, *interval, strings.Split(*stats, ","), w)
	}
	return fmt.Errorf("agent: unknown command %q, expected serve, measure or monitor", args[0])
}

// AgentPath is where e2c puts the agent on a host, relative to the login
// directory.
const AgentPath = ".cache/e2c/e2c-agent"

// AgentCommand is the agent's command line on a host. E2C_AGENT lets a
// test binary, copied as the agent, know it is one.
func AgentCommand(args ...string) string {
	return "E2C_AGENT=1 exec ./" + AgentPath + " agent " + strings.Join(args, " ")
}

// Install copies the local e2c binary to the host as the agent; an
// identical copy already there is kept.
func Install(ctx context.Context, r transport.Runner, local string) error {
	_, err := r.Put(ctx, local, AgentPath, 0o755)
	return err
}
