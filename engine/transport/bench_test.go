package transport

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sync/errgroup"
)

// BenchmarkPut copies a 2 MB directory of 20 files to 8 loopback endpoints
// at once: "fresh" into new directories, "unchanged" over an identical copy,
// where only the skip check runs.
func BenchmarkPut(b *testing.B) {
	s := startSSHD(b, sshdConfig{ports: 8})
	p := newTestPool(b, PoolOptions{})
	ctx := context.Background()
	var runners []Runner
	for _, port := range s.ports {
		r, err := p.Runner(ctx, s.endpoint(b, port))
		if err != nil {
			b.Fatal(err)
		}
		runners = append(runners, r)
	}
	src := b.TempDir()
	for i := range 20 {
		data := make([]byte, 100<<10)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	hosts := b.TempDir()
	putAll := func(dst string, want func(PutStats) bool) {
		var g errgroup.Group
		for i, r := range runners {
			g.Go(func() error {
				st, err := r.Put(ctx, src, filepath.Join(hosts, dst, strconv.Itoa(i)), 0)
				if err == nil && !want(st) {
					err = fmt.Errorf("host %d: %+v", i, st)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(8 * 20 * 100 << 10)
		for i := 0; i < b.N; i++ {
			putAll("fresh", func(st PutStats) bool { return st.Copied == 20 })
			b.StopTimer()
			if err := os.RemoveAll(filepath.Join(hosts, "fresh")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		putAll("same", func(st PutStats) bool { return true })
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			putAll("same", func(st PutStats) bool { return st.Skipped == 20 })
		}
	})
}

// BenchmarkTrue runs `true` one after another on one loopback endpoint,
// through an SSH session each and through the agent: the cost of a command
// beyond its work.
func BenchmarkTrue(b *testing.B) {
	s := startSSHD(b, sshdConfig{})
	for _, k := range []struct {
		name string
		r    func() Runner
	}{
		{"ssh", func() Runner { return s.runner(b) }},
		{"agent", func() Runner { return s.agentRunner(b) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			r := k.r()
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Run(ctx, Command{Script: "true"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
