package results

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestRunsInTheOrderTheyRan: runs of one second are listed in the order
// they ran, not by name (where -10 comes before -2).
func TestRunsInTheOrderTheyRan(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	var want []string
	for i := 1; i <= 11; i++ {
		name := "20261202-150405"
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		want = append(want, name)
		run := filepath.Join(dir, name)
		os.Mkdir(run, 0o755)
		rec := &Record{Status: Succeeded, Start: start.Add(time.Duration(i) * time.Millisecond), dir: run}
		if err := WriteJSON(run, RecordFile, rec); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := Runs(dir)
	if err != nil || len(recs) != len(want) {
		t.Fatalf("runs %d, %v", len(recs), err)
	}
	for i, r := range recs {
		if filepath.Base(r.dir) != want[i] {
			t.Errorf("run %d is %s, want %s", i+1, filepath.Base(r.dir), want[i])
		}
	}
}
