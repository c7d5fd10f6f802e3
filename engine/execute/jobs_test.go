package execute

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/transport"
)

// alive tells whether process pid runs (a zombie does not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// jobPid is the pid of the leader of the first background job under home.
func jobPid(t *testing.T, home string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(read(t, jobFile(t, home, "pid"))))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestStopJobsSparesReusedPid: after a reboot a job's pid file (with no
// exit status, as the power cut left it) may name another process group;
// StopJobs must leave it alone and count the job as ended.
func TestStopJobsSparesReusedPid(t *testing.T) {
	home := t.TempDir()
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a job's leader
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	job := ".e2c/jobs/1-1"
	os.MkdirAll(filepath.Join(home, job), 0o755)
	os.WriteFile(filepath.Join(home, job, "pid"), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644)
	connect := func(context.Context, string) (transport.Runner, error) { return transport.NewLocal(home), nil }
	stopped, err := StopJobs(context.Background(), connect, Jobs{"h": {job}})
	if err != nil || len(stopped["h"]) != 1 {
		t.Errorf("StopJobs: stopped %v, %v; want the job counted as ended", stopped, err)
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(other.Process.Pid) {
		t.Error("StopJobs killed a process that only got the pid of a job")
	}
}

// TestStopJobsInterruptedKeepsJobs: with the context done before a host's
// turn, the host is not reached and keeps every job it had (an unreachable
// host is TestStopJobsKeepsUnreachable).
func TestStopJobsInterruptedKeepsJobs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	connect := func(context.Context, string) (transport.Runner, error) { return transport.NewLocal(t.TempDir()), nil }
	stopped, err := StopJobs(ctx, connect, Jobs{"a": {".e2c/jobs/1-1", ".e2c/jobs/1-2"}, "b": {".e2c/jobs/2-1"}, "none": nil})
	want := "stopping background jobs: a: context canceled; b: context canceled"
	if len(stopped) != 0 || err == nil || err.Error() != want {
		t.Errorf("StopJobs: stopped %v, %v; want none stopped and %q", stopped, err, want)
	}
}

// asUser reaches a local host as a login user that is not root (nobody):
// commands run through setpriv, those with Sudo as root (when sudo is
// true), as sudo -n gives them on a real host.
type asUser struct {
	transport.Runner
	sudo *atomic.Bool
}

func (u asUser) Run(ctx context.Context, c transport.Command) (transport.Result, error) {
	if !c.Sudo || !u.sudo.Load() {
		c.Script = "exec setpriv --reuid=65534 --regid=65534 --clear-groups sh -c " + quote(c.Script)
	}
	c.Sudo = false
	return u.Runner.Run(ctx, c)
}

// TestStopJobsOfBecome: a become job runs as root while the login user is
// not; StopJobs signals it through sudo, and a job it cannot stop (no
// sudo) is reported and kept, not forgotten as stopped.
func TestStopJobsOfBecome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a job of another user needs root to start")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is needed to log in as another user")
	}
	var sudo atomic.Bool
	sudo.Store(true)
	ex, out, homes := setupWith(t, 1, "- hosts: all\n  launch:\n  - {shell: sleep 300, async: 600, poll: 0, become: true}\n",
		func(_ string, r transport.Runner) (transport.Runner, error) { return asUser{r, &sudo}, nil })
	home := homes["edge-node-1-1"]
	os.MkdirAll(home, 0o755)
	for d := home; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody reaches the home
	}
	t.Cleanup(func() { // as root, whatever the test did
		StopJobs(context.Background(), func(context.Context, string) (transport.Runner, error) { return transport.NewLocal(home), nil }, ex.Memory().Jobs)
	})
	start := func() int {
		t.Helper()
		if _, err := ex.Phase(context.Background(), "launch"); err != nil {
			t.Fatalf("launch: %v\n%s", err, out)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			m, _ := filepath.Glob(filepath.Join(home, ".e2c", "jobs", "*", "pid"))
			if len(m) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the job wrote no pid")
			}
		}
		return jobPid(t, home)
	}

	pid := start()
	if err := ex.StopJobs(context.Background()); err != nil {
		t.Fatalf("StopJobs with sudo: %v", err)
	}
	if alive(pid) {
		t.Error("the become job still runs after StopJobs")
	}
	if jobs := ex.Memory().Jobs; len(jobs) != 0 {
		t.Errorf("jobs kept after they were stopped: %v", jobs)
	}

	os.RemoveAll(filepath.Join(home, ".e2c"))
	pid = start()
	sudo.Store(false)
	err := ex.StopJobs(context.Background())
	if err == nil || !strings.Contains(err.Error(), "edge-node-1-1") || !strings.Contains(err.Error(), "not stopped") {
		t.Errorf("StopJobs without sudo: %v; want the job named as not stopped", err)
	}
	if !alive(pid) {
		t.Fatal("the job was stopped without sudo: nothing tested")
	}
	if jobs := ex.Memory().Jobs; len(jobs["edge-node-1-1"]) != 1 {
		t.Errorf("the job that could not be stopped was forgotten: %v", jobs)
	}
}

// TestStopJobsKeepsUnreachable: the jobs of a host that cannot be reached
// stay known (for a later stop), those of the others are forgotten once
// stopped.
func TestStopJobsKeepsUnreachable(t *testing.T) {
	var down atomic.Bool
	ex, out, homes := setupWith(t, 2, "- hosts: all\n  launch:\n  - {shell: sleep 300, async: 600, poll: 0}\n",
		func(host string, r transport.Runner) (transport.Runner, error) {
			if host == "edge-node-1-2" && down.Load() {
				return nil, errors.New("connection refused")
			}
			return r, nil
		})
	if _, err := ex.Phase(context.Background(), "launch"); err != nil {
		t.Fatalf("launch: %v\n%s", err, out)
	}
	t.Cleanup(func() { down.Store(false); ex.StopJobs(context.Background()) })
	want := ex.Memory().Jobs["edge-node-1-2"]
	for h, jobs := range ex.Memory().Jobs {
		if len(jobs) != 1 || strings.HasPrefix(jobs[0], "/") {
			t.Errorf("%s: jobs %v, want one, relative to the home as journaled", h, jobs)
		}
	}
	down.Store(true)
	err := ex.StopJobs(context.Background())
	if err == nil || !strings.Contains(err.Error(), "edge-node-1-2: connection refused") {
		t.Errorf("StopJobs: %v", err)
	}
	if jobs := ex.Memory().Jobs; len(jobs) != 1 || len(jobs["edge-node-1-2"]) != 1 || jobs["edge-node-1-2"][0] != want[0] {
		t.Errorf("after StopJobs the executor keeps %v, want the unreachable host's job alone", jobs)
	}
	// Stopped right after it started, and yet stopped.
	if alive(jobPid(t, homes["edge-node-1-1"])) {
		t.Error("the reachable host's job still runs")
	}
}
