package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// runnerKinds are the transports every behaviour test runs against. The SSH
// ones reach a real sshd on 127.0.0.1, so host-side paths are local paths;
// "agent" goes through this test binary started there as the agent.
var runnerKinds = []struct {
	name string
	new  func(t *testing.T) Runner
}{
	{"local", func(t *testing.T) Runner { return NewLocal(t.TempDir()) }},
	{"ssh", func(t *testing.T) Runner { return startSSHD(t, sshdConfig{}).runner(t) }},
	{"agent", func(t *testing.T) Runner { return startSSHD(t, sshdConfig{}).agentRunner(t) }},
}

func forEachRunner(t *testing.T, test func(t *testing.T, r Runner)) {
	for _, k := range runnerKinds {
		t.Run(k.name, func(t *testing.T) { test(t, k.new(t)) })
	}
}

func TestRun(t *testing.T) { forEachRunner(t, testRun) }

func testRun(t *testing.T, r Runner) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	many := strings.Repeat("0123456789\n", 20000) // 220 000 bytes
	type runCase struct {
		name           string
		cmd            Command
		code           int // -99: any non-zero
		stdout, stderr string
		errText        string
		check          func(t *testing.T, res Result)
	}
	tests := []runCase{
		{name: "ok", cmd: Command{Script: "echo out; echo err >&2"}, stdout: "out\n", stderr: "err\n"},
		{name: "empty script", cmd: Command{}},
		{
			name: "exit status", cmd: Command{Script: "echo out; echo first >&2; echo last >&2; exit 3"},
			code: 3, stdout: "out\n", stderr: "first\nlast\n", errText: "exit status 3: last",
		},
		{
			name: "env quoting",
			cmd: Command{Script: `printf '%s|' "$Q" "$S" "$D" "$N" "$E"`, Env: map[string]string{
				"Q": `it's "quoted"`, "S": "a  b\tc", "D": "$HOME `id` $(id) \\n", "N": "l1\nl2\n", "E": "",
			}},
			stdout: "it's \"quoted\"|a  b\tc|$HOME `id` $(id) \\n|l1\nl2\n||",
		},
		{name: "dir", cmd: Command{Script: "pwd", Dir: dir}, stdout: dir + "\n"},
		{name: "missing dir", cmd: Command{Script: "touch " + marker, Dir: filepath.Join(dir, "nope")}, code: 1},
		{
			// The function wrapper: a late syntax error stops the script before its first line runs.
			name: "late syntax error", cmd: Command{Script: "touch " + marker + "\necho ran\nif then fi\n"}, code: -99,
			check: func(t *testing.T, res Result) {
				if _, err := os.Stat(marker); err == nil || res.Stdout != "" {
					t.Errorf("the script ran before its syntax error: stdout %q", res.Stdout)
				}
			},
		},
		{
			// The script is on stdin; commands must not read the rest of it.
			name: "stdin is empty", cmd: Command{Script: "cat\necho done"}, stdout: "done\n",
		},
		{
			name: "output tail", cmd: Command{Script: `i=0; while [ $i -lt 20000 ]; do echo 0123456789; i=$((i+1)); done`},
			check: func(t *testing.T, res Result) {
				if len(res.Stdout) != maxTail || !strings.HasSuffix(many, res.Stdout) {
					t.Errorf("stdout: %d bytes, want the last %d of the output", len(res.Stdout), maxTail)
				}
			},
		},
		{
			name: "killed by a signal", cmd: Command{Script: "kill -TERM $$"}, code: -99,
		},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, runCase{name: "sudo keeps env and dir", cmd: Command{Script: `echo "$(id -u) $V $(pwd)"`, Sudo: true, Dir: dir, Env: map[string]string{"V": "v"}},
			stdout: "0 v " + dir + "\n"},
			runCase{name: "sudo as another user keeps env", cmd: Command{Script: `echo "$(id -un) $V"`, Sudo: true, User: "nobody", Env: map[string]string{"V": "v"}},
				stdout: "nobody v\n"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := r.Run(ctx, tt.cmd)
			var ee *ExitError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.code != 0 && !errors.As(err, &ee):
				t.Fatalf("Run: %v, want an *ExitError", err)
			case tt.code == -99 && res.Code == 0, tt.code != -99 && res.Code != tt.code:
				t.Errorf("code %d, want %d (stderr %q)", res.Code, tt.code, res.Stderr)
			}
			if ee != nil && ee.Code != res.Code {
				t.Errorf("ExitError.Code %d, Result.Code %d", ee.Code, res.Code)
			}
			if tt.errText != "" && (err == nil || err.Error() != tt.errText) {
				t.Errorf("error %v, want %q", err, tt.errText)
			}
			if tt.check != nil {
				tt.check(t, res)
				return
			}
			if res.Stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.stdout)
			}
			if tt.code == 0 && res.Stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", res.Stderr, tt.stderr)
			}
		})
	}

	t.Run("bad env name", func(t *testing.T) {
		_, err := r.Run(context.Background(), Command{Script: "true", Env: map[string]string{"BAD-NAME": "s3cret"}})
		var ee *ExitError
		if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "BAD-NAME") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %v, want one naming BAD-NAME without its value", err)
		}
	})
}

// lineRecorder records the writes it gets and calls onLine for each line.
type lineRecorder struct {
	mu     sync.Mutex
	writes []string
	onLine func(string)
}

func (l *lineRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes = append(l.writes, string(p))
	l.mu.Unlock()
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line != "" && l.onLine != nil {
			l.onLine(line)
		}
	}
	return len(p), nil
}

func TestRunStreams(t *testing.T) { forEachRunner(t, testRunStreams) }

// testRunStreams proves output arrives while the command runs (the script
// waits for a file the test creates on seeing the first line) and in whole
// lines only.
func testRunStreams(t *testing.T, r Runner) {
	flag := filepath.Join(t.TempDir(), "go-on")
	rec := &lineRecorder{onLine: func(line string) {
		if line == "first\n" {
			_ = os.WriteFile(flag, nil, 0o644)
		}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	script := fmt.Sprintf("printf fi; sleep 0.2; printf 'rst\\n'\nwhile [ ! -e %s ]; do sleep 0.02; done\nprintf sec; printf 'ond\\nthird'", Quote(flag))
	res, err := r.Run(ctx, Command{Script: script, Stdout: rec})
	if err != nil {
		t.Fatalf("Run: %v (the first line did not arrive while the command ran?)", err)
	}
	if res.Stdout != "first\nsecond\nthird" {
		t.Errorf("Result.Stdout %q", res.Stdout)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.writes, ""); got != "first\nsecond\nthird\n" {
		t.Errorf("streamed %q", got)
	}
	for _, w := range rec.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Errorf("write %q is not whole lines (all writes: %q)", w, rec.writes)
		}
	}
}

func TestRunCancel(t *testing.T) { forEachRunner(t, testRunCancel) }

// testRunCancel cancels a script running two sleeps, one in the background,
// and checks that both are gone: the whole process group was killed.
func testRunCancel(t *testing.T, r Runner) {
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Skip("needs pgrep")
	}
	sleep := fmt.Sprintf("sleep %d", 900000+rand.IntN(99999))
	count := func() int {
		out, _ := exec.Command("pgrep", "-f", "-x", sleep).Output()
		return len(strings.Fields(string(out)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, Command{Script: sleep + " &\n" + sleep + "\n"})
		errc <- err
	}()
	for end := time.Now().Add(10 * time.Second); count() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			cancel()
			t.Fatalf("%q did not start: %v", sleep, <-errc)
		}
	}
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	t.Logf("Run returned %v after cancel", time.Since(start).Round(time.Millisecond))
	if n := count(); n != 0 {
		exec.Command("pkill", "-f", "-x", sleep).Run()
		t.Errorf("%d %q processes left after cancel", n, sleep)
	}
}
