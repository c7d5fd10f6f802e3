package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachErrorsInItemOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, limit int
		fail     []int
	}{
		{"none", 0, 4, nil},
		{"one", 1, 4, nil},
		{"all succeed", 10, 3, nil},
		{"some fail", 10, 3, []int{0, 4, 9}},
		{"all fail", 5, 2, []int{0, 1, 2, 3, 4}},
		{"one at a time", 6, 1, []int{2, 3}},
		{"limit above n", 3, 100, []int{1}},
		{"no limit", 20, 0, []int{19}},
		{"negative limit", 20, -1, []int{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := make([]atomic.Int32, tc.n)
			errs := Each(t.Context(), tc.n, tc.limit, func(ctx context.Context, i int) error {
				calls[i].Add(1)
				if slices.Contains(tc.fail, i) {
					return fmt.Errorf("item %d", i)
				}
				return nil
			})
			if len(errs) != tc.n {
				t.Fatalf("%d errors for %d items", len(errs), tc.n)
			}
			for i, err := range errs {
				if c := calls[i].Load(); c != 1 {
					t.Errorf("item %d run %d times, want once", i, c)
				}
				want := ""
				if slices.Contains(tc.fail, i) {
					want = fmt.Sprintf("item %d", i)
				}
				if got := fmt.Sprint(err); err == nil && want != "" || err != nil && got != want {
					t.Errorf("errs[%d] = %v, want %q", i, err, want)
				}
			}
		})
	}
}

// TestEachHonoursLimit holds every call until the test lets it go: limit
// calls must be running at once before any is let go (so Each does run
// them side by side), and no call may find more than limit running.
func TestEachHonoursLimit(t *testing.T) {
	for _, tc := range []struct{ n, limit, want int }{
		{12, 1, 1},
		{12, 3, 3},
		{12, 12, 12},
		{7, 0, 7},
		{5, 9, 5},
	} {
		t.Run(fmt.Sprintf("%d items, limit %d", tc.n, tc.limit), func(t *testing.T) {
			var running, over atomic.Int32
			started := make(chan int, tc.n)
			release := make(chan struct{})
			done := make(chan []error)
			go func() {
				done <- Each(t.Context(), tc.n, tc.limit, func(ctx context.Context, i int) error {
					if running.Add(1) > int32(tc.want) {
						over.Add(1)
					}
					started <- i
					<-release
					running.Add(-1)
					return nil
				})
			}()
			// A failing Each would leave the test waiting: give up
			// after a while rather than at the test binary's timeout.
			stuck := time.After(time.Minute)
			wait := func() {
				select {
				case <-started:
				case <-stuck:
					t.Fatalf("%d calls running at once, want %d", running.Load(), tc.want)
				}
			}
			for range tc.want {
				wait()
			}
			for range tc.n - tc.want {
				release <- struct{}{}
				wait()
			}
			close(release)
			<-done
			if n := over.Load(); n > 0 {
				t.Errorf("%d calls found more than %d running", n, tc.want)
			}
		})
	}
}

// TestEachStopsStartingOnCancel cancels the context in the third call, one
// at a time: the calls after it are not made and their errors carry the
// cause; the ones before keep their own result.
func TestEachStopsStartingOnCancel(t *testing.T) {
	cause := errors.New("interrupted")
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	var called []int // one call at a time: no lock needed
	errs := Each(ctx, 6, 1, func(ctx context.Context, i int) error {
		called = append(called, i)
		if i == 2 {
			cancel(cause)
			return ctx.Err()
		}
		return nil
	})
	if want := []int{0, 1, 2}; !slices.Equal(called, want) {
		t.Errorf("called %v, want %v", called, want)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], context.Canceled) {
		t.Errorf("the calls made: %v", errs[:3])
	}
	for i, err := range errs[3:] {
		if err != cause {
			t.Errorf("errs[%d] = %v, want %v", i+3, err, cause)
		}
	}
}

func TestEachCancelledBefore(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var calls atomic.Int32
	errs := Each(ctx, 4, 2, func(context.Context, int) error { calls.Add(1); return nil })
	if calls.Load() != 0 {
		t.Errorf("%d calls made with the context done before", calls.Load())
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
}

// TestEachRace runs many items that write what they are given; run with
// -race, it fails if Each returned before every call had (reading errs
// and seen would race with the calls still writing them).
func TestEachRace(t *testing.T) {
	const n = 500
	seen := make([]int, n)
	var returned atomic.Int32
	errs := Each(t.Context(), n, 8, func(ctx context.Context, i int) error {
		defer returned.Add(1)
		seen[i] = i + 1
		if i%7 == 0 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if r := returned.Load(); r != n {
		t.Fatalf("Each returned with %d of %d calls done", r, n)
	}
	for i := range n {
		if seen[i] != i+1 || (errs[i] != nil) != (i%7 == 0) {
			t.Fatalf("item %d: seen %d, error %v", i, seen[i], errs[i])
		}
	}
}
