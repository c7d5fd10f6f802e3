package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// The crash tests kill a real e2c process with SIGKILL, as a power cut or a
// second Ctrl-C would, and check what the next e2c command finds. The
// process is this test binary, re-executed with E2C_TEST_CHILD naming what
// it runs (see TestMain).

// runChild is the e2c process a crash test kills.
func runChild(what string) int {
	ctx := context.Background()
	dir, artifacts := os.Getenv("E2C_TEST_SCENARIO"), os.Getenv("E2C_TEST_ARTIFACTS")
	var err error
	switch what {
	case "deploy":
		_, err = deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: time.Minute, Out: os.Stdout}, ReleaseIfInterrupted)
	case "launch":
		err = workflow(ctx, dir, "launch", "", os.Stdout)
	default:
		err = fmt.Errorf("unknown child %q", what)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is an e2c process started by a test, to be killed.
type child struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, what, dir, artifacts string) *child {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(self), out: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "E2C_TEST_CHILD="+what, "E2C_TEST_SCENARIO="+dir, "E2C_TEST_ARTIFACTS="+artifacts)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	return c
}

// killWhen kills the child with SIGKILL as soon as cond holds.
func (c *child) killWhen(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		select {
		case <-c.done:
			t.Fatalf("the e2c process ended before %s:\n%s", what, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 90s:\n%s", what, c.out.String())
		}
	}
	c.cmd.Process.Kill()
	<-c.done
}

// TestCrashDuringNetnsReserve kills e2c while the netns provider builds its
// lab (some sshds started, others not): e2c destroy must find and remove
// every namespace, link, sshd and record, and a new deploy must work.
func TestCrashDuringNetnsReserve(t *testing.T) {
	var layers strings.Builder
	layers.WriteString("layers:\n- name: edge\n  services: [{name: node, quantity: 24}]\n")
	dir, artifacts := scenario(t, "10.232.10.0/24", layers.String(), touchWorkflow)
	c := startChild(t, "deploy", dir, artifacts)
	c.killWhen(t, "a started sshd", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, ".e2c", "netns", "hosts", "*", "sshd.pid"))
		return len(m) > 0
	})
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := st.Reservations["netns"]
	if r == nil || !r.Incomplete {
		t.Fatalf("after the kill, the state holds %+v: want the lab being created, journaled as incomplete", r)
	}
	var lab netns.Lab
	if err := json.Unmarshal(r.State, &lab); err != nil {
		t.Fatal(err)
	}
	h := lab.Hosts()[0]
	prefix := strings.TrimSuffix(h.Namespace, h.Name)
	if left := labLeftovers(t, prefix); len(left) == 0 {
		t.Fatal("nothing of the lab on the system after the kill: the kill came too late to test anything")
	}

	var out strings.Builder
	if err := destroy(context.Background(), dir, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "nothing to release") {
		t.Errorf("destroy saw nothing to release:\n%s", out.String())
	}
	if left := labLeftovers(t, prefix); len(left) > 0 {
		t.Errorf("left after destroy: %s", strings.Join(left, ", "))
	}

	out.Reset()
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out}, Release); err != nil {
		t.Fatalf("the deploy after destroy: %v\n%s", err, out.String())
	}
}

// labLeftovers lists what the system holds of the netns lab whose names
// start with prefix: namespaces, links, sshd processes, the record in
// /run/e2c-netns.
func labLeftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var left []string
	nss, _ := os.ReadDir("/run/netns")
	for _, e := range nss {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, "namespace "+e.Name())
		}
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], prefix) {
			left = append(left, "link "+strings.TrimSuffix(f[1], ":"))
		}
	}
	id := strings.TrimSuffix(strings.TrimPrefix(prefix, "e2c"), "-")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if cmd, err := os.ReadFile(p); err == nil && bytes.Contains(cmd, []byte("sshd")) && bytes.Contains(cmd, []byte("/run/e2c-netns/"+id+"/")) {
			left = append(left, "process "+filepath.Base(filepath.Dir(p)))
		}
	}
	if _, err := os.Stat("/run/e2c-netns/" + id + ".json"); err == nil {
		left = append(left, "/run/e2c-netns/"+id+".json")
	}
	return left
}

// jobScenario is a scenario on the local provider whose launch starts a
// background job that writes its pid to ticks.txt ten times a second.
func jobScenario(t *testing.T) (dir, artifacts string) {
	t.Helper()
	dir, artifacts = localScenario(t)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  prepare:
  - shell: rm -f ticks.txt
  launch:
  - shell: while true; do echo $$ >> ticks.txt; sleep 0.1; done
    async: 600
    poll: 0
  finalize:
  - shell: kill $(tail -n 1 ticks.txt) && sleep 0.2  # a file still written would fail the fetch's checksum
  - fetch: {src: ticks.txt, dest: "{{ working_dir }}/ticks.txt", flat: yes}
`), 0o644)
	// No job outlives the test, however it ends.
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	return dir, artifacts
}

// ticks is what the job of jobScenario wrote on the host so far.
func ticks(dir string) []string {
	data, _ := os.ReadFile(filepath.Join(dir, ".e2c", "local", "hosts", "edge-node-1-1", "ticks.txt"))
	return strings.Fields(string(data))
}

// crashDuringWait starts a deploy of jobScenario and kills it once the job
// runs, during the wait. It returns the pid of the job's command (which
// writes the ticks), to tell whether it still runs however starved on a
// loaded machine.
func crashDuringWait(t *testing.T) (dir, artifacts, run string, job int) {
	t.Helper()
	dir, artifacts = jobScenario(t)
	c := startChild(t, "deploy", dir, artifacts)
	c.killWhen(t, "the background job's output", func() bool { return len(ticks(dir)) >= 3 && strings.Contains(c.out.String(), "WAIT") })
	st, err := LoadState(dir)
	if err != nil || len(st.jobs()["edge-node-1-1"]) != 1 {
		t.Fatalf("the state does not record the background job: %+v %v", st.Memory, err)
	}
	list := ticks(dir)
	if job, err = strconv.Atoi(list[len(list)-1]); err != nil {
		t.Fatal(err)
	}
	return dir, artifacts, st.LastRun, job
}

// TestCrashedRunMarked: a run whose e2c was killed is shown crashed by the
// listing at once (its process is gone), and the next e2c command on the
// scenario records it so, with the step it died in.
func TestCrashedRunMarked(t *testing.T) {
	dir, artifacts, run, job := crashDuringWait(t)
	recs, err := results.Runs(dir)
	if err != nil || len(recs) != 1 || recs[0].Status != results.Crashed {
		t.Fatalf("the listing after the kill: %v %v", recs, err)
	}
	if rec, _ := readRecord(run); rec.Status != results.Running {
		t.Fatalf("run.json says %s before any command: want running, as the killed e2c left it", rec.Status)
	}

	if !alive(job) {
		t.Fatal("the background job died with e2c: nothing to test")
	}
	// The next command is a new deploy on the kept hosts: it records the
	// crash, and stops the crashed run's job before the hosts are reused.
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: time.Second, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	rec, err := readRecord(run)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]results.Status{}
	for _, s := range rec.Steps {
		steps[s.Name] = s.Status
	}
	if rec.Status != results.Crashed || steps["wait"] != results.Crashed || steps["launch"] != results.Succeeded || rec.End == nil ||
		!strings.Contains(rec.Error, "died during step wait") || rec.Owner != nil {
		t.Errorf("the crashed run's record: status %s, steps %v, end %v, error %q, owner %v", rec.Status, steps, rec.End, rec.Error, rec.Owner)
	}
	if !strings.Contains(out.String(), "marked crashed") || !strings.Contains(out.String(), "background jobs an earlier run started on 1 hosts: stopped where still running") {
		t.Errorf("the deploy did not say what it found:\n%s", out.String())
	}
	pids := map[string]bool{}
	for _, p := range strings.Fields(readFile(t, filepath.Join(runs[0], "ticks.txt"))) {
		pids[p] = true
	}
	if len(pids) != 1 {
		t.Errorf("the new run's ticks.txt holds the output of %d jobs, want its own only", len(pids))
	}
	if alive(job) {
		t.Error("a background job still runs after deploy --destroy")
	}
	if st, _ := LoadState(dir); len(st.jobs()) != 0 {
		t.Errorf("the state still lists jobs of released hosts: %v", st.jobs())
	}
}

// TestDestroyAfterCrash: e2c destroy stops the background jobs a killed
// e2c left, where it used to see "nothing to release" in them.
func TestDestroyAfterCrash(t *testing.T) {
	dir, _, run, job := crashDuringWait(t)
	if !alive(job) {
		t.Fatal("the background job died with e2c: nothing to test")
	}
	var out strings.Builder
	if err := destroy(context.Background(), dir, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if alive(job) {
		t.Errorf("the background job still runs after destroy:\n%s", out.String())
	}
	st, _ := LoadState(dir)
	if len(st.jobs()) != 0 || len(st.Reservations) != 0 {
		t.Errorf("the state after destroy: jobs %v, reservations %v", st.jobs(), st.Reservations)
	}
	if rec, _ := readRecord(run); rec.Status != results.Crashed {
		t.Errorf("destroy left the run %s", rec.Status)
	}
}

// TestStepModeRunNotCrashed: between two step commands a run is running
// with no e2c working on it, which is not a crash; a step command killed
// during its step is.
func TestStepModeRunNotCrashed(t *testing.T) {
	dir, artifacts := localScenario(t)
	os.WriteFile(filepath.Join(dir, "workflow.yaml"), []byte(`- hosts: all
  prepare:
  - shell: echo prepared > prepared.txt
  launch:
  - shell: touch started; sleep 10
  finalize:
  - fetch: {src: prepared.txt, dest: "{{ working_dir }}/prepared.txt", flat: yes}
`), 0o644)
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	var out strings.Builder
	ctx := context.Background()
	run, err := layersServices(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out})
	if err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	if err := workflow(ctx, dir, "Prepare", "", &out); err != nil { // E2Clab's spelling
		t.Fatalf("workflow Prepare: %v\n%s", err, out.String())
	}
	// Any command taking the lock looks for crashed runs.
	if err := destroyNetwork(ctx, dir, &out); err != nil {
		t.Fatal(err)
	}
	recs, _ := results.Runs(dir)
	if rec, _ := readRecord(run); rec.Status != results.Running || len(recs) != 1 || recs[0].Status != results.Running {
		t.Fatalf("between two step commands the run is %s (listed %v):\n%s", rec.Status, recs, out.String())
	}

	c := startChild(t, "launch", dir, artifacts)
	c.killWhen(t, "the launched command", func() bool {
		_, err := os.Stat(filepath.Join(dir, ".e2c", "local", "hosts", "edge-node-1-1", "started"))
		return err == nil
	})
	if recs, _ := results.Runs(dir); recs[0].Status != results.Crashed {
		t.Errorf("a step command killed in its step: listed %s", recs[0].Status)
	}
	out.Reset()
	if err := finalize(ctx, dir, "", true, &out); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out.String())
	}
	rec, _ := readRecord(run)
	status := map[string]results.Status{}
	for _, s := range rec.Steps {
		status[s.Name] = s.Status
	}
	if rec.Status != results.Crashed || status["launch"] != results.Crashed || status["finalize"] != results.Succeeded || readFile(t, filepath.Join(run, "prepared.txt")) != "prepared\n" {
		t.Errorf("after finalize: status %s, steps %v\n%s", rec.Status, status, out.String())
	}
}

// TestRecordCannotBeWritten fills the scenario's disk during the wait (a
// small tmpfs): the run's record cannot be written, which is said on the
// terminal and in the run's error, never ignored.
func TestRecordCannotBeWritten(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	root := t.TempDir()
	disk := filepath.Join(root, "disk")
	os.MkdirAll(disk, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", disk).Run() })
	src, artifacts := localScenario(t)
	dir := filepath.Join(disk, "scenario")
	if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	go func() {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			runs, _ := filepath.Glob(filepath.Join(dir, "2*", "run.json"))
			if len(runs) == 1 && strings.Contains(readFileQuiet(runs[0]), `"name": "wait"`) {
				f, err := os.Create(filepath.Join(disk, "filler"))
				if err == nil {
					f.Write(make([]byte, 2<<20)) // fails when the disk is full
					f.Close()
				}
				return
			}
		}
	}()
	var out strings.Builder
	_, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Duration: 2 * time.Second, Out: &out}, Release)
	if err == nil || !strings.Contains(err.Error(), "run.json") || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("deploy on a full disk: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "error: the run's record cannot be written") {
		t.Errorf("the terminal was not told:\n%s", out.String())
	}
}

func readFileQuiet(name string) string {
	data, _ := os.ReadFile(name)
	return string(data)
}
