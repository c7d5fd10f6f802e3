package ansiblediff

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/e2c-dev/e2c/engine/ansiblediff/ansible"
	"github.com/e2c-dev/e2c/providers/netns"
)

// caseTimeout bounds one case, both tools.
const caseTimeout = 5 * time.Minute

// TestSameAsAnsible runs every case of testdata/ with Ansible and with e2c
// and fails for each case whose results differ, unless the case says e2c
// differs on purpose. It prints a table of every case. Environment:
// E2C_DIFF_PARALLEL, cases run at once (default 4); E2C_DIFF_DIR, a
// folder that keeps each case's files, both tools' (scenario, playbook,
// what they printed, Ansible's report); by default they are removed.
func TestSameAsAnsible(t *testing.T) {
	cases, err := LoadCases("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	if err := ansible.Available(); err != nil {
		t.Skip(err)
	}
	root := os.Getenv("E2C_DIFF_DIR")
	keep := root != ""
	if !keep {
		root = t.TempDir()
	}
	parallel := 4
	if n, err := strconv.Atoi(os.Getenv("E2C_DIFF_PARALLEL")); err == nil && n > 0 {
		parallel = n
	}

	type job struct {
		i    int
		out  Outcome
		done chan struct{}
	}
	var jobs []*job
	start := time.Now()
	t.Cleanup(func() {
		var outs []Outcome
		for _, j := range jobs {
			outs = append(outs, j.out)
		}
		var table strings.Builder
		printTable(&table, outs, time.Since(start), parallel)
		fmt.Print(table.String())
		if keep {
			if err := os.WriteFile(filepath.Join(root, "summary.txt"), []byte(table.String()), 0o644); err != nil {
				t.Error(err)
			}
		}
	})
	for i, c := range cases {
		j := &job{i: i, out: Outcome{Case: c}, done: make(chan struct{})}
		t.Run(c.Name, func(t *testing.T) {
			jobs = append(jobs, j) // while the parent waits: -run selects
			t.Parallel()
			<-j.done
			switch o := j.out; {
			case o.Err != nil:
				t.Fatalf("%s: %v", c.File, o.Err)
			case o.Skip != "":
				t.Skip(o.Skip)
			case len(o.Differences) > 0:
				t.Errorf("%s (%s): e2c differs from Ansible:\n  %s", c.File, c.About, strings.Join(o.Differences, "\n  "))
			}
		})
	}
	sem := make(chan struct{}, parallel)
	for _, j := range jobs {
		go func() {
			defer close(j.done)
			sem <- struct{}{}
			defer func() { <-sem }()
			subnet, err := Subnet(j.i)
			if err != nil {
				j.out.Err = err
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
			defer cancel()
			dir := filepath.Join(root, j.out.Case.Name)
			if err := os.RemoveAll(dir); err != nil { // E2C_DIFF_DIR's earlier run
				j.out.Err = err
				return
			}
			j.out = j.out.Case.Run(ctx, dir, subnet)
		}()
	}
}

// printTable writes every case's result, the count of same results and
// the list of cases that differ.
func printTable(out io.Writer, outs []Outcome, took time.Duration, parallel int) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "case\tresult\tansible\te2c\twhat differs")
	count := map[string]int{}
	var differ []string
	for _, o := range outs {
		count[o.Status()]++
		if o.Status() == "different" || o.Status() == "error" {
			differ = append(differ, o.Case.Name)
		}
		fmt.Fprintf(w, "%s\t%s\t%.1fs\t%.1fs\t%s\n", o.Case.Name, o.Status(), o.Ansible.Seconds(), o.E2C.Seconds(), o.Summary())
	}
	w.Flush()
	ran := len(outs) - count["skipped"]
	fmt.Fprintf(out, "%d of %d cases give the same results (%d different, %d errors; %d skipped); %s, %d at a time\n",
		count["same"], ran, count["different"], count["error"], count["skipped"], took.Round(100*time.Millisecond), parallel)
	if len(differ) > 0 {
		fmt.Fprintf(out, "differing: %s\n", strings.Join(differ, ", "))
	}
}
