package experiment

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/execute"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// progress prints how a play is going, at most once a second and when it
// ends.
func progress(w io.Writer) func(execute.Progress) {
	var mu sync.Mutex
	var last time.Time
	return func(p execute.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Done < p.Total && time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		line := fmt.Sprintf("  %s %s: %d/%d hosts done, %d failed", p.Phase, p.Play, p.Done, p.Total, p.Failed)
		if p.Slowest != "" {
			line += ", waiting on " + p.Slowest
		}
		fmt.Fprintln(w, line)
	}
}

// recap prints the table closing a run: per phase and play, hosts ok and
// failed, and time.
func recap(w io.Writer, reports []execute.PlayReport) {
	if len(reports) == 0 {
		return
	}
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAutoWrap(tw.WrapNone))
	t.Header("phase", "play", "hosts", "ok", "failed", "time")
	for _, r := range reports {
		t.Append(r.Phase, strconv.Itoa(r.Play+1)+" "+r.Pattern, strconv.Itoa(len(r.Hosts)),
			strconv.Itoa(len(r.Hosts)-r.Failed()), strconv.Itoa(r.Failed()), r.Took.Round(time.Millisecond).String())
	}
	t.Render()
}
