package providers

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestUpdateRecord: processes (here goroutines, each with its own lock
// file descriptor) take turns, so that no update is lost, and a damaged
// record is an error saying what to do.
func TestUpdateRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				err := UpdateRecord(dir, "r.json", "remove it", func(l []int) ([]int, error) { return append(l, w*100+i), nil })
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var got []int
	if err := UpdateRecord(dir, "r.json", "", func(l []int) ([]int, error) { got = l; return l, nil }); err != nil || len(got) != 100 {
		t.Fatalf("%d entries, %v; want 100", len(got), err)
	}
	path := filepath.Join(dir, "r.json")
	os.WriteFile(path, []byte("{"), 0o600)
	err := UpdateRecord(dir, "r.json", "remove it", func(l []int) ([]int, error) { return l, nil })
	if err == nil || !strings.Contains(err.Error(), path+" is damaged") || !strings.HasSuffix(err.Error(), ": remove it") {
		t.Errorf("damaged record: %v", err)
	}
}
