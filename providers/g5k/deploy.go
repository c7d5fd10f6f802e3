package g5k

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/e2c-dev/e2c/engine/fanout"
)

// deploy installs env_name on every node with kadeploy, one deployment per
// site, and retries the nodes that failed (a terminated deployment can still
// hold failed nodes, even all of them) a bounded number of times.
func (p *Provider) deploy(ctx context.Context, c *client, cfg config, st *state, out io.Writer) error {
	pub, _, err := cfg.publicKey()
	if err != nil {
		return err
	}
	_, _, poll, tries := p.durations()
	out = &lockedWriter{w: out} // the sites deploy at once
	errs := fanout.Each(ctx, len(st.Jobs), 0, func(ctx context.Context, i int) error {
		js := st.Jobs[i]
		todo := slices.Clone(js.Nodes)
		var why map[string]string
		var err error
		for try := 1; try <= tries && len(todo) > 0; try++ {
			fmt.Fprintf(out, "g5k: %s: deploying %s on %d nodes (attempt %d of %d)\n", js.Site, cfg.EnvName, len(todo), try, tries)
			if todo, why, err = deployOnce(ctx, c, js.Site, todo, cfg.EnvName, pub, poll, out); err != nil {
				return err
			}
		}
		if len(todo) > 0 {
			var lines []string
			for _, n := range todo {
				lines = append(lines, n+": "+why[n])
			}
			return fmt.Errorf("%s: kadeploy failed %d times on %d nodes: %s", js.Site, tries, len(todo), strings.Join(lines, "; "))
		}
		return nil
	})
	return errors.Join(errs...)
}

// deployOnce runs one deployment and returns the nodes that failed, with
// why. Interrupted, it cancels the deployment rather than leave kadeploy
// rebooting the nodes.
func deployOnce(ctx context.Context, c *client, site string, nodes []string, env, key string, poll time.Duration, out io.Writer) ([]string, map[string]string, error) {
	base := "/sites/" + url.PathEscape(site) + "/deployments"
	var d deployment
	if _, err := c.call(ctx, http.MethodPost, base, deploymentRequest{Nodes: nodes, Environment: env, Key: key}, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: kadeploy: %w", site, err)
	}
	cancel := func() error {
		cctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer stop()
		if _, err := c.call(cctx, http.MethodDelete, base+"/"+url.PathEscape(d.UID), nil, nil); err != nil {
			fmt.Fprintf(out, "g5k: %s: canceling deployment %s: %v\n", site, d.UID, err)
		} else {
			fmt.Fprintf(out, "g5k: %s: deployment %s canceled\n", site, d.UID)
		}
		return ctx.Err()
	}
	for d.Status == "processing" || d.Status == "waiting" {
		select {
		case <-ctx.Done():
			return nil, nil, cancel()
		case <-time.After(poll):
		}
		if _, err := c.call(ctx, http.MethodGet, base+"/"+url.PathEscape(d.UID), nil, &d); err != nil {
			if ctx.Err() != nil {
				return nil, nil, cancel()
			}
			return nil, nil, fmt.Errorf("%s: deployment %s: %w", site, d.UID, err)
		}
	}
	if d.Status == "canceled" {
		return nil, nil, fmt.Errorf("%s: deployment %s was canceled", site, d.UID)
	}
	var failed []string
	why := map[string]string{}
	for _, n := range nodes {
		r, ok := d.Result[n]
		if ok && r.State == "OK" {
			continue
		}
		failed = append(failed, n)
		switch {
		case r.Error != "":
			why[n] = r.Error
		case d.Output != "":
			why[n] = d.Output
		default:
			why[n] = "deployment " + d.Status
		}
	}
	return failed, why, nil
}

// lockedWriter serializes the writes of goroutines to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
