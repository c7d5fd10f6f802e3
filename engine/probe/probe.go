// Package probe measures a network path between two hosts with nothing but
// itself on both ends: round-trip times and loss with UDP echoes, and
// throughput with one TCP stream timed by the receiver. e2c copies itself to
// the hosts and runs `e2c agent serve` on one end and `e2c agent measure` on
// the other, so that validation needs no ping, fping or iperf3 on a bare
// Raspberry Pi image.
package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ready starts the line Serve prints once it listens: "ready <port>".
const Ready = "ready "

// Serve answers UDP echoes and TCP streams on one port of every address
// until ctx ends. A stream's receiver answers with the bytes it read and the
// nanoseconds from its first byte to the sender's end of stream.
func Serve(ctx context.Context, port int, ready func(port int)) error {
	var lc net.ListenConfig
	tl, err := lc.Listen(ctx, "tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer tl.Close()
	port = tl.Addr().(*net.TCPAddr).Port
	ul, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer ul.Close()
	go func() {
		<-ctx.Done()
		tl.Close()
		ul.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := ul.ReadFrom(buf)
			if err != nil {
				return
			}
			ul.WriteTo(buf[:n], from)
		}
	}()
	ready(port)
	for {
		c, err := tl.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			receive(c)
		}()
	}
}

// receive reads a stream to its end and answers "<bytes> <nanoseconds>".
func receive(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	buf := make([]byte, 256<<10)
	var n int64
	var first time.Time
	for {
		k, err := c.Read(buf)
		if k > 0 && first.IsZero() {
			first = time.Now()
		}
		n += int64(k)
		if err != nil {
			break
		}
	}
	took := time.Duration(0)
	if !first.IsZero() {
		took = time.Since(first)
	}
	fmt.Fprintf(c, "%d %d\n", n, took.Nanoseconds())
}

// RTT is the outcome of a series of UDP echoes.
type RTT struct {
	Sent     int             `json:"sent"`
	Received int             `json:"received"`
	Samples  []time.Duration `json:"samples_ns"` // of the echoes that came back, in order
}

// Min, Avg and Max summarise the samples; zero without any.
func (r RTT) Min() time.Duration { return r.fold(func(a, b time.Duration) bool { return b < a }) }
func (r RTT) Max() time.Duration { return r.fold(func(a, b time.Duration) bool { return b > a }) }
func (r RTT) Avg() time.Duration {
	if len(r.Samples) == 0 {
		return 0
	}
	var sum time.Duration
	for _, s := range r.Samples {
		sum += s
	}
	return sum / time.Duration(len(r.Samples))
}

func (r RTT) fold(better func(a, b time.Duration) bool) time.Duration {
	var out time.Duration
	for i, s := range r.Samples {
		if i == 0 || better(out, s) {
			out = s
		}
	}
	return out
}

// Loss is the share of echoes lost, in percent.
func (r RTT) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 100 * float64(r.Sent-r.Received) / float64(r.Sent)
}

// Echo sends n UDP echoes to addr, one every interval, and waits up to wait
// for the last answers. Each echo carries its sequence number and send
// time, so late and duplicate answers are told apart.
func Echo(ctx context.Context, addr string, n int, interval, wait time.Duration) (RTT, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return RTT{}, err
	}
	defer c.Close()
	start := time.Now()
	got := make([]time.Duration, n)
	done := make(chan struct{})
	all := make(chan struct{}) // every echo came back
	go func() {
		defer close(done)
		left := n
		buf := make([]byte, 64)
		for {
			k, err := c.Read(buf)
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // an ICMP error for an earlier echo: that one is lost
			}
			if err != nil {
				return
			}
			if k < 16 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf)
			sent := time.Duration(binary.BigEndian.Uint64(buf[8:]))
			if seq < uint64(n) && got[seq] == 0 {
				got[seq] = max(time.Since(start)-sent, 1)
				if left--; left == 0 {
					close(all)
				}
			}
		}
	}()
	msg := make([]byte, 64)
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(msg, uint64(i))
		binary.BigEndian.PutUint64(msg[8:], uint64(time.Since(start)))
		if _, err := c.Write(msg); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return RTT{}, err
		}
		if i < n-1 {
			select {
			case <-ctx.Done():
				return RTT{}, ctx.Err()
			case <-t.C:
			}
		}
	}
	select {
	case <-ctx.Done():
	case <-all:
	case <-time.After(wait):
	}
	c.SetReadDeadline(time.Now())
	<-done
	r := RTT{Sent: n}
	for _, s := range got {
		if s > 0 {
			r.Received++
			r.Samples = append(r.Samples, s)
		}
	}
	return r, ctx.Err()
}

// Stream sends as much as it can to addr over TCP for d, then returns the
// rate the receiver measured, in bits per second: bytes received over the
// time from its first byte to the end of the stream, so that what sat in
// buffers when the sender stopped is counted at the pace it arrived.
func Stream(ctx context.Context, addr string, d time.Duration) (float64, error) {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 128<<10)
	end := time.Now().Add(d)
	// A path that stops moving must not hold the sender for ever.
	c.SetWriteDeadline(end.Add(time.Minute))
	for time.Now().Before(end) {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading the receiver's count: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, fmt.Errorf("the receiver answered %q, expected bytes and nanoseconds", line)
	}
	bytes, err1 := strconv.ParseInt(f[0], 10, 64)
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || ns <= 0 {
		return 0, fmt.Errorf("the receiver answered %q, expected bytes and nanoseconds", line)
	}
	return float64(bytes) * 8 / (float64(ns) / 1e9), nil
}
