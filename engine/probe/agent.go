package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	hostagent "github.com/e2c-dev/e2c/engine/agent"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/spf13/cobra"
)

// Measurement is what `agent measure` prints, as one JSON object.
type Measurement struct {
	To         string  `json:"to"`
	RTT        RTT     `json:"rtt"`
	Throughput float64 `json:"throughput_bit_s,omitempty"` // 0 when not measured
}

const (
	serveExample   = "  e2c agent serve --for 2m"
	measureExample = "  e2c agent measure --to 10.0.0.2 --port 40000 --echoes 10 --stream 2s"
	monitorExample = "  e2c agent monitor --interval 1s --stats cpu,mem --out monitoring.csv"
	sessionExample = "  e2c agent session"
)

// Command is the agent's command line, `e2c agent`: serve (until --for has
// passed, or it is killed), measure, monitor (until --for has passed,
// or a TERM), or session (engine/agent, until its stdin closes). It is what e2c runs on the hosts, and a test binary copied
// as the agent runs it too.
func Command() *cobra.Command {
	cmd := &cobra.Command{
		Use:          "agent serve|measure|monitor|session [flags]",
		Short:        "Measure the network between hosts, or sample a host (run by e2c on the hosts)",
		Example:      serveExample + "\n" + measureExample + "\n" + monitorExample + "\n" + sessionExample,
		Hidden:       true,
		Args:         cobra.NoArgs,
		SilenceUsage: true, // a failed measurement is not a mistake in its command line
		RunE: func(*cobra.Command, []string) error {
			return errors.New("agent: expected serve, measure, monitor or session")
		},
	}

	var port int
	var life time.Duration
	serve := &cobra.Command{
		Use:     "serve",
		Short:   "Answer the measurements of another host's agent, printing the port when ready",
		Example: serveExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), life)
			defer cancel()
			return Serve(ctx, port, func(p int) { fmt.Fprintf(cmd.OutOrStdout(), "%s%d\n", Ready, p) })
		},
	}
	serve.Flags().IntVar(&port, "port", 0, "port for TCP and UDP (0: any free one)")
	serve.Flags().DurationVar(&life, "for", 2*time.Minute, "stop after this long, whatever happens")

	var (
		m                      Measurement
		mport, echoes          int
		interval, wait, stream time.Duration
	)
	measure := &cobra.Command{
		Use:     "measure",
		Short:   "Measure the RTT (UDP echoes) and throughput (a TCP stream) to a serving agent, printed as JSON",
		Example: measureExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if echoes < 1 {
				return errors.New("agent measure: --echoes: expected at least one")
			}
			m.To = net.JoinHostPort(m.To, strconv.Itoa(mport))
			var err error
			if m.RTT, err = Echo(cmd.Context(), m.To, echoes, interval, wait); err != nil {
				return err
			}
			if stream > 0 {
				if m.Throughput, err = Stream(cmd.Context(), m.To, stream); err != nil {
					return err
				}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(m)
		},
	}
	measure.Flags().StringVar(&m.To, "to", "", "address of the serving agent")
	measure.Flags().IntVar(&mport, "port", 0, "its port")
	measure.Flags().IntVar(&echoes, "echoes", 10, "UDP echoes")
	measure.Flags().DurationVar(&interval, "interval", 100*time.Millisecond, "between echoes")
	measure.Flags().DurationVar(&wait, "wait", 2*time.Second, "for the last echoes")
	measure.Flags().DurationVar(&stream, "stream", 0, "TCP stream length (0: no throughput)")
	measure.MarkFlagRequired("to")
	measure.MarkFlagRequired("port")

	var (
		every, mlife time.Duration
		file         string
		stats        []string
	)
	monitor := &cobra.Command{
		Use:     "monitor",
		Short:   "Sample the host's CPU, memory, network and disk as CSV",
		Example: monitorExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every <= 0 {
				return errors.New("agent monitor: --interval must be positive")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), mlife)
			defer cancel()
			// A TERM (e2c stopping it) ends the sampling cleanly, its last
			// line written.
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
			defer stop()
			w := cmd.OutOrStdout()
			if file != "" {
				f, err := os.Create(file)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return Monitor(ctx, every, stats, w)
		},
	}
	monitor.Flags().DurationVar(&every, "interval", time.Second, "between samples")
	monitor.Flags().DurationVar(&mlife, "for", 24*time.Hour, "stop after this long, whatever happens")
	monitor.Flags().StringVar(&file, "out", "", "CSV file to write (default: standard output)")
	monitor.Flags().StringSliceVar(&stats, "stats", DefaultStats, "groups of columns, in order: cpu, mem, net, disk")

	session := &cobra.Command{
		Use:     "session",
		Short:   "Run commands and serve files for e2c on streams multiplexed over stdin and stdout, until stdin closes",
		Example: sessionExample,
		Args:    cobra.NoArgs,
		RunE:    func(*cobra.Command, []string) error { return hostagent.ServeStdio() },
	}

	cmd.AddCommand(serve, measure, monitor, session)
	return cmd
}

// AgentPath is where e2c puts the agent on a host, relative to the login
// directory.
const AgentPath = transport.AgentPath

// Install copies the local e2c binary to the host as the agent, unless
// the host has that build (transport.InstallAgent), and returns its path,
// for transport.AgentCommand.
func Install(ctx context.Context, r transport.Runner, local string) (string, error) {
	return transport.InstallAgent(ctx, r, AgentPath, local)
}
