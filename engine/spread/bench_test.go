package spread

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/transport"
)

// BenchmarkSpread: 100 MB to 8, 32 and 64 emulated hosts, e2c's link
// shaped to 100 mbit (a laptop driving a testbed, a Pi cluster behind
// one switch): the spread against e2c putting the file to every host at
// once through the same pool. Run as root, once:
//
//	go test -run - -bench Spread -benchtime 1x ./engine/spread/
//
// The direct copy to 64 hosts takes about 9 minutes: it runs only with
// E2C_SPREAD_DIRECT64=1.
func BenchmarkSpread(b *testing.B) {
	const hosts, size = 64, 100 << 20
	l := newLab(b, hosts)
	src, sum := writePayload(b, size)
	// The agents are copied before the link is shaped.
	ts, _ := l.targets(b, hosts, "")
	l.shape(b, "100mbit")
	for _, n := range []int{8, 32, 64} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			ts := ts[:n]
			direct := n <= 32 || os.Getenv("E2C_SPREAD_DIRECT64") == "1"
			if !direct {
				b.Logf("the direct copy to %d hosts is skipped (about 9 minutes): E2C_SPREAD_DIRECT64=1 runs it", n)
			}
			var spreadTook, directTook time.Duration
			var sent, spreadWire, directWire int64
			for b.Loop() {
				l.clean(b)
				start, wire := time.Now(), l.sentBytes(b)
				res, err := Spread(context.Background(), src, dst, ts, Options{})
				spreadTook += time.Since(start)
				spreadWire += l.sentBytes(b) - wire
				sent += res.Sent
				if err == nil {
					err = errors.Join(mapValues(res.Errors)...)
				}
				if err != nil {
					b.Fatal(err)
				}
				l.checkHosts(b, ts, sum, "")
				if !direct {
					continue
				}
				l.clean(b)
				start, wire = time.Now(), l.sentBytes(b)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i, t := range ts {
					wg.Go(func() {
						_, errs[i] = t.Agent.(transport.Runner).Put(context.Background(), src, dst, 0o644)
					})
				}
				wg.Wait()
				directTook += time.Since(start)
				directWire += l.sentBytes(b) - wire
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				l.checkHosts(b, ts, sum, "")
			}
			runs := float64(b.N)
			b.ReportMetric(spreadTook.Seconds()/runs, "spread-s/op")
			b.ReportMetric(float64(sent)/1e6/runs, "spread-sent-MB")
			b.ReportMetric(float64(spreadWire)/1e6/runs, "spread-wire-MB")
			if direct {
				b.ReportMetric(directTook.Seconds()/runs, "direct-s/op")
				b.ReportMetric(float64(directWire)/1e6/runs, "direct-wire-MB")
				b.ReportMetric(directTook.Seconds()/spreadTook.Seconds(), "speedup")
			}
		})
	}
	l.clean(b)
}

func mapValues(m map[string]error) []error {
	var errs []error
	for _, err := range m {
		errs = append(errs, err)
	}
	return errs
}
