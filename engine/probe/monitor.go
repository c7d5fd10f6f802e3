package probe

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Monitor's groups of columns: dstat's names for --cpu, --mem, --net and
// --disk, so that tools reading dstat's output read this one. CPU in
// percent, memory in bytes, network and disk in bytes per second.
var monitorColumns = map[string][]string{
	"cpu":  {"usr", "sys", "idl", "wai", "stl"},
	"mem":  {"used", "free", "buff", "cach"},
	"net":  {"recv", "send"},
	"disk": {"read", "writ"},
}

// DefaultStats are the groups sampled when monitoring gives no options.
var DefaultStats = []string{"cpu", "mem", "net", "disk"}

// dstat's flags for the groups Monitor writes.
var statFlags = map[string]string{
	"-c": "cpu", "--cpu": "cpu", "-m": "mem", "--mem": "mem",
	"-n": "net", "--net": "net", "-d": "disk", "--disk": "disk",
}

// MonitorStats reads dstat options, as E2Clab's monitoring.options passes
// them ("-m -c -n", "-cmn", "--cpu --disk"), into the groups of columns
// they ask for, in order: what Monitor writes, and what dstat is given
// (DstatFlags). -T and --epoch are accepted: the epoch is always the first
// column. Any other option is an error naming it, since e2c's own sampler,
// which stands in for dstat on hosts without it, could not honour it.
func MonitorStats(options string) ([]string, error) {
	var stats []string
	add := func(flag string) error {
		g, ok := statFlags[flag]
		switch {
		case flag == "-T" || flag == "--epoch":
		case !ok:
			return fmt.Errorf("dstat option %q is not supported (e2c samples with its own agent where dstat is missing); supported: -c/--cpu, -m/--mem, -n/--net, -d/--disk, -T/--epoch", flag)
		case !slices.Contains(stats, g):
			stats = append(stats, g)
		}
		return nil
	}
	for _, word := range strings.Fields(options) {
		if len(word) > 2 && word[0] == '-' && word[1] != '-' {
			for _, c := range word[1:] { // -cmn
				if err := add("-" + string(c)); err != nil {
					return nil, err
				}
			}
		} else if err := add(word); err != nil {
			return nil, err
		}
	}
	if len(stats) == 0 {
		return nil, fmt.Errorf("dstat options %q ask for no statistics; expected some of -c, -m, -n, -d", options)
	}
	return stats, nil
}

// DstatFlags are dstat's long options for stats, after --epoch.
func DstatFlags(stats []string) string {
	flags := []string{"--epoch"}
	for _, g := range stats {
		flags = append(flags, "--"+g)
	}
	return strings.Join(flags, " ")
}

// MonitorHeader is the CSV header Monitor writes for stats.
func MonitorHeader(stats []string) string {
	cols := []string{`"epoch"`}
	for _, g := range stats {
		for _, c := range monitorColumns[g] {
			cols = append(cols, `"`+c+`"`)
		}
	}
	return strings.Join(cols, ",")
}

// Monitor samples the machine from /proc every interval and writes one CSV
// line per sample, with the columns of stats, until ctx ends: what dstat
// would, where dstat is not installed (a bare Raspberry Pi image).
func Monitor(ctx context.Context, interval time.Duration, stats []string, w io.Writer) error {
	for _, g := range stats {
		if monitorColumns[g] == nil {
			return fmt.Errorf("monitor: unknown statistics %q", g)
		}
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, MonitorHeader(stats))
	if err := bw.Flush(); err != nil {
		return err
	}
	prev, err := sample()
	if err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := sample()
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "%.3f", float64(cur.at.UnixNano())/1e9)
		for _, g := range stats {
			for _, v := range cur.columns(g, prev) {
				bw.WriteString("," + v)
			}
		}
		bw.WriteString("\n")
		if err := bw.Flush(); err != nil {
			return err
		}
		prev = cur
	}
}

// columns are the values of group g since the snapshot prev.
func (cur snapshot) columns(g string, prev snapshot) []string {
	secs := cur.at.Sub(prev.at).Seconds()
	rate := func(now, before uint64) string {
		return strconv.FormatFloat(float64(now-before)/secs, 'f', 1, 64)
	}
	switch g {
	case "cpu":
		cpu := cur.cpu.sub(prev.cpu)
		total := cpu.total()
		pct := func(v uint64) string {
			if total == 0 {
				return "0"
			}
			return strconv.FormatFloat(100*float64(v)/float64(total), 'f', 3, 64)
		}
		return []string{pct(cpu.user + cpu.nice), pct(cpu.system + cpu.irq + cpu.softirq), pct(cpu.idle), pct(cpu.iowait), pct(cpu.steal)}
	case "mem":
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		return []string{u(cur.mem.used()), u(cur.mem.free), u(cur.mem.buffers), u(cur.mem.cached)}
	case "net":
		return []string{rate(cur.rx, prev.rx), rate(cur.tx, prev.tx)}
	case "disk":
		return []string{rate(cur.read, prev.read), rate(cur.write, prev.write)}
	}
	return nil
}

type cpuTimes struct{ user, nice, system, idle, iowait, irq, softirq, steal uint64 }

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{a.user - b.user, a.nice - b.nice, a.system - b.system, a.idle - b.idle, a.iowait - b.iowait,
		a.irq - b.irq, a.softirq - b.softirq, a.steal - b.steal}
}

func (a cpuTimes) total() uint64 {
	return a.user + a.nice + a.system + a.idle + a.iowait + a.irq + a.softirq + a.steal
}

type memInfo struct{ total, free, buffers, cached uint64 } // bytes

// used is dstat's: what is neither free nor buffers nor page cache.
func (m memInfo) used() uint64 {
	if u := m.free + m.buffers + m.cached; u < m.total {
		return m.total - u
	}
	return 0
}

type snapshot struct {
	at                  time.Time
	cpu                 cpuTimes
	mem                 memInfo
	rx, tx, read, write uint64 // bytes since boot
}

func sample() (snapshot, error) {
	s := snapshot{at: time.Now()}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	v := make([]uint64, 8)
	for i := range v {
		v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
	}
	s.cpu = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	mem, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(mem), "\n") {
		k, rest, _ := strings.Cut(l, ":")
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		switch k {
		case "MemTotal":
			s.mem.total = kb * 1024
		case "MemFree":
			s.mem.free = kb * 1024
		case "Buffers":
			s.mem.buffers = kb * 1024
		case "Cached":
			s.mem.cached = kb * 1024
		}
	}
	if net, err := os.ReadFile("/proc/net/dev"); err == nil {
		for _, l := range strings.Split(string(net), "\n") {
			name, rest, ok := strings.Cut(l, ":")
			f := strings.Fields(rest)
			if !ok || strings.TrimSpace(name) == "lo" || len(f) < 9 {
				continue
			}
			rx, _ := strconv.ParseUint(f[0], 10, 64)
			tx, _ := strconv.ParseUint(f[8], 10, 64)
			s.rx, s.tx = s.rx+rx, s.tx+tx
		}
	}
	if disks, err := os.ReadFile("/proc/diskstats"); err == nil {
		for _, l := range strings.Split(string(disks), "\n") {
			f := strings.Fields(l)
			if len(f) < 10 || !wholeDisk(f[2]) {
				continue
			}
			r, _ := strconv.ParseUint(f[5], 10, 64)
			w, _ := strconv.ParseUint(f[9], 10, 64)
			s.read, s.write = s.read+r*512, s.write+w*512 // sectors of 512 bytes, whatever the disk's
		}
	}
	return s, nil
}

// wholeDisk keeps disks and leaves out their partitions (counted twice
// otherwise) and loop and RAM devices.
func wholeDisk(name string) bool {
	if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
		return false
	}
	_, err := os.Stat(filepath.Join("/sys/block", name))
	return err == nil
}
