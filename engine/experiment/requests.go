package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/results"
)

// A deploy holds the scenario's lock while its runs go on. e2c apply and
// e2c scale during a run's wait hand their change to it: a request file in
// SCENARIO_DIR/.e2c/requests, which the deploy answers, once the change is
// made, with an answer file beside it. The folder is the state's, readable
// by its owner alone.

const (
	requestsDir   = "requests"
	requestSuffix = ".request.json"
	answerSuffix  = ".answer.json"
)

// answer is what the deploy made of a request.
type answer struct {
	Diff  []string `json:"diff"`
	Error string   `json:"error,omitempty"`
}

// HandToRun hands e to the deploy of o.ScenarioDir whose run waits, and
// returns the difference it made (or, with e.DryRun, would make). It
// fails when no run of the scenario waits.
func HandToRun(ctx context.Context, o Options, e Edit) ([]string, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	st, err := LoadState(o.ScenarioDir)
	if err != nil {
		return nil, err
	}
	if !waiting(st.LastRun) {
		return nil, fmt.Errorf("another e2c process is working on %s and its run is not waiting: a change is handed to a deploy during a run's wait; try again then", o.ScenarioDir)
	}
	dir := filepath.Join(stateDir(o.ScenarioDir), requestsDir)
	id := fmt.Sprintf("%d-%d", time.Now().UnixNano(), os.Getpid())
	if err := results.WriteJSON(dir, id+requestSuffix, e); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "handed to the deploy working on %s (run %s), which makes the change during its wait\n", o.ScenarioDir, filepath.Base(st.LastRun))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if data, err := os.ReadFile(filepath.Join(dir, id+answerSuffix)); err == nil {
			os.Remove(filepath.Join(dir, id+answerSuffix))
			var a answer
			if err := json.Unmarshal(data, &a); err != nil {
				return nil, err
			}
			writeLines(o.Out, a.Diff)
			if a.Error != "" {
				return a.Diff, errors.New(a.Error)
			}
			return a.Diff, nil
		}
		if !waiting(st.LastRun) {
			// Taken while the wait ended: the answer may still come.
			if _, err := os.Stat(filepath.Join(dir, id+requestSuffix)); err == nil {
				os.Remove(filepath.Join(dir, id+requestSuffix))
				return nil, fmt.Errorf("the run's wait ended before the deploy took the change; nothing was changed")
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped waiting for the deploy's answer (the change may still be made; see the run's timeline.json): %w", ctx.Err())
		case <-t.C:
		}
	}
}

// waiting reports whether the run of dir is in its wait, its e2c alive.
func waiting(dir string) bool {
	rec, err := results.ReadRecord(dir)
	if err != nil || rec.Status != results.Running || rec.Owner == nil || rec.Owner.Gone() || len(rec.Steps) == 0 {
		return false
	}
	last := rec.Steps[len(rec.Steps)-1]
	return last.Name == "wait" && last.Status == results.Running
}

// requests are the change requests waiting, oldest first.
func (x *Session) requests() []string {
	names, _ := filepath.Glob(filepath.Join(stateDir(x.o.ScenarioDir), requestsDir, "*"+requestSuffix))
	slices.Sort(names) // by time: ids start with it
	return names
}

// dropRequests removes the requests and answers left by e2c processes
// that stopped waiting: a wait that starts answers only those made during
// it.
func (x *Session) dropRequests() {
	os.RemoveAll(filepath.Join(stateDir(x.o.ScenarioDir), requestsDir))
}

// answerRequests makes the changes handed to the run (see HandToRun).
func (t *timed) answerRequests(ctx context.Context) {
	for _, name := range t.r.x.requests() {
		data, err := os.ReadFile(name)
		os.Remove(name)
		if err != nil {
			continue
		}
		var e Edit
		a := answer{}
		if err := json.Unmarshal(data, &e); err != nil {
			a.Error = fmt.Sprintf("the request %s: %v", name, err)
		} else {
			diff, err := t.manual(ctx, e)
			a.Diff = diff
			if err != nil {
				a.Error = err.Error()
			}
		}
		id := strings.TrimSuffix(filepath.Base(name), requestSuffix)
		if err := results.WriteJSON(filepath.Dir(name), id+answerSuffix, a); err != nil {
			fmt.Fprintf(t.r.out, "warning: answering %s: %v\n", id, err)
		}
	}
}

// writeLines writes lines, one each.
func writeLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
