// Command quickstart is the application of e2c's quickstart experiment, a
// small stream-processing pipeline:
//
//	producer: replays rides (id, start time, latitude, longitude) at a rate
//	gateway:  finds the landmark closest to each ride's start, forwards it
//	sink:     records each record's end-to-end latency and the throughput
//
// Each role runs until SIGTERM or SIGINT, then writes its metrics and exits.
// Latencies compare clocks of different hosts: on one machine (local, netns)
// they share a clock; on a real cluster, synchronise them (NTP, PTP).
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: quickstart producer|gateway|sink [flags]")
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	os.WriteFile("quickstart.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	role, args := os.Args[1], os.Args[2:]
	var err error
	switch role {
	case "producer":
		err = producer(args, stop)
	case "gateway":
		err = gateway(args, stop)
	case "sink":
		err = sink(args, stop)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		log.Fatalf("%s: %v", role, err)
	}
	log.Printf("%s: done", role)
}

// dial connects to addr, retrying while the other side starts.
func dial(addr string, within time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(within)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func producer(args []string, stop chan os.Signal) error {
	fs := flag.NewFlagSet("producer", flag.ExitOnError)
	id := fs.String("id", "p", "producer id")
	rides := fs.String("rides", "rides.csv", "ride dataset")
	to := fs.String("to", "", "gateway address")
	rate := fs.Float64("rate", 100, "records per second")
	out := fs.String("out", "producer.csv", "metrics file")
	fs.Parse(args)
	records, err := readCSV(*rides)
	if err != nil {
		return err
	}
	conn, err := dial(*to, 30*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	w := bufio.NewWriter(conn)
	sent := map[int64]int{}
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	log.Printf("producer %s: %d rides to %s at %.0f/s", *id, len(records), *to, *rate)
	for i := 0; ; i++ {
		select {
		case <-stop:
			w.Flush()
			return writeCounts(*out, "sent", sent)
		case now := <-tick.C:
			r := records[i%len(records)]
			fmt.Fprintf(w, "%s-%d,%s,%s,%s,%d\n", r[0], i/len(records), r[1], r[2], r[3], now.UnixNano())
			sent[now.Unix()]++
			if i%16 == 0 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
		}
	}
}

type landmark struct {
	name     string
	lat, lon float64
}

func gateway(args []string, stop chan os.Signal) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	listen := fs.String("listen", "", "address to listen on")
	marks := fs.String("landmarks", "landmarks.csv", "landmarks dataset")
	to := fs.String("to", "", "sink address")
	out := fs.String("out", "gateway.csv", "metrics file")
	fs.Parse(args)
	rows, err := readCSV(*marks)
	if err != nil {
		return err
	}
	var lms []landmark
	for _, r := range rows {
		lat, _ := strconv.ParseFloat(r[1], 64)
		lon, _ := strconv.ParseFloat(r[2], 64)
		lms = append(lms, landmark{r[0], lat, lon})
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sinkConn, err := dial(*to, 30*time.Second)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	sw := bufio.NewWriter(sinkConn)
	var processed atomic.Int64
	var procNanos atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					start := time.Now()
					f := strings.Split(sc.Text(), ",")
					if len(f) != 5 {
						continue
					}
					lat, _ := strconv.ParseFloat(f[2], 64)
					lon, _ := strconv.ParseFloat(f[3], 64)
					best, dist := "", math.Inf(1)
					for _, l := range lms {
						if d := haversine(lat, lon, l.lat, l.lon); d < dist {
							best, dist = l.name, d
						}
					}
					mu.Lock()
					fmt.Fprintf(sw, "%s,%s,%.0f,%s\n", f[0], best, dist, f[4])
					if processed.Add(1)%16 == 0 {
						sw.Flush()
					}
					mu.Unlock()
					procNanos.Add(int64(time.Since(start)))
				}
			}()
		}
	}()
	log.Printf("gateway: %d landmarks, listening on %s, forwarding to %s", len(lms), *listen, *to)
	flush := time.NewTicker(100 * time.Millisecond)
	defer flush.Stop()
	for {
		select {
		case <-flush.C:
			mu.Lock()
			sw.Flush()
			mu.Unlock()
		case <-stop:
			ln.Close()
			mu.Lock()
			sw.Flush()
			mu.Unlock()
			n := processed.Load()
			mean := 0.0
			if n > 0 {
				mean = float64(procNanos.Load()) / float64(n) / 1e3
			}
			return os.WriteFile(*out, []byte(fmt.Sprintf("processed,mean_processing_us\n%d,%.1f\n", n, mean)), 0o644)
		}
	}
}

// haversine is the distance in metres between two points on the Earth.
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371e3
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

func sink(args []string, stop chan os.Signal) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", "", "address to listen on")
	out := fs.String("out", "latency.csv", "per-record latency file")
	tput := fs.String("throughput", "throughput.csv", "records per second file")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "record,landmark,distance_m,latency_ms")
	counts := map[int64]int{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					now := time.Now()
					f := strings.Split(sc.Text(), ",")
					if len(f) != 4 {
						continue
					}
					sent, _ := strconv.ParseInt(f[3], 10, 64)
					mu.Lock()
					fmt.Fprintf(w, "%s,%s,%s,%.3f\n", f[0], f[1], f[2], float64(now.UnixNano()-sent)/1e6)
					counts[now.Unix()]++
					mu.Unlock()
				}
			}()
		}
	}()
	log.Printf("sink: listening on %s", *listen)
	<-stop
	ln.Close()
	mu.Lock()
	defer mu.Unlock()
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return writeCounts(*tput, "records", counts)
}

func readCSV(name string) ([][]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	if _, err := r.Read(); err != nil { // header
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var rows [][]string
	for {
		row, err := r.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, row)
	}
}

// writeCounts writes per-second counts, in time order.
func writeCounts(name, what string, counts map[int64]int) error {
	var secs []int64
	for s := range counts {
		secs = append(secs, s)
	}
	for i := 1; i < len(secs); i++ {
		for j := i; j > 0 && secs[j] < secs[j-1]; j-- {
			secs[j], secs[j-1] = secs[j-1], secs[j]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "unix_second,%s\n", what)
	for _, s := range secs {
		fmt.Fprintf(&b, "%d,%d\n", s, counts[s])
	}
	return os.WriteFile(name, []byte(b.String()), 0o644)
}
