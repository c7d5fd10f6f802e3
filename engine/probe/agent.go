package probe

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Measurement is what `agent measure` prints, as one JSON object.
type Measurement struct {
	To         string  `json:"to"`
	RTT        RTT     `json:"rtt"`
	Throughput float64 `json:"throughput_bit_s,omitempty"` // 0 when not measured
}

// Main runs the agent's command line: `serve` (until -for has passed, or it
// is killed) or `measure`. It is what `e2c agent` runs on the hosts.
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
	}
	return fmt.Errorf("agent: unknown command %q, expected serve or measure", args[0])
}
