// Package fanout runs one function over many items, a bounded number at
// a time: the loop over hosts that most steps of an experiment are.
package fanout

import (
	"context"
	"sync"
)

// Each calls f(ctx, 0) ... f(ctx, n-1), at most limit at once (limit < 1:
// all at once), and returns their errors in item order: errs[i] is item
// i's, nil when it succeeded. Every item is run even if others fail;
// once ctx is done, the items not yet started are not started, and their
// error is ctx's cause. Each returns only when every call of f has
// returned: it leaves no goroutine behind.
//
// Each knows nothing of what the items are: the caller names a failed
// item in its error, and joins the errors as it reports them.
func Each(ctx context.Context, n, limit int, f func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	if limit < 1 || limit > n {
		limit = n
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	i := 0
	for ; i < n; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		// When both cases are ready the select takes either: a
		// slot taken once ctx is done starts nothing.
		if ctx.Err() != nil {
			break
		}
		item := i // i lives on past the loop, to mark the items not started
		wg.Go(func() {
			defer func() { <-slots }()
			errs[item] = f(ctx, item)
		})
	}
	for ; i < n; i++ {
		errs[i] = context.Cause(ctx)
	}
	wg.Wait()
	return errs
}
