package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPutGet(t *testing.T) {
	forEachRunner(t, testPutGet)
	t.Run("ssh without sftp", func(t *testing.T) {
		r := startSSHD(t, sshdConfig{noSFTP: true}).runner(t)
		testPutGet(t, r)
		if !r.(*sshRunner).h.c.noSFTP.Load() {
			t.Error("the shell fallback was not used")
		}
	})
}

// writeTree writes files (relative path → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func testPutGet(t *testing.T, r Runner) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, host, local := t.TempDir(), t.TempDir(), t.TempDir()
	files := map[string]string{
		"a.txt":              "alpha\n",
		"sub/b.txt":          "bravo\n",
		"sub/deeper/c.bin":   strings.Repeat("\x00\x01charlie", 40000), // several sftp packets
		"with space/d e.txt": "delta\n",
		".hidden":            "echo\n",
	}
	writeTree(t, src, files)
	dst := filepath.Join(host, "tree x") // does not exist yet

	put := func(src, dst string, mode fs.FileMode, copied, skipped int) {
		t.Helper()
		st, err := r.Put(ctx, src, dst, mode)
		if err != nil {
			t.Fatalf("Put %s: %v", dst, err)
		}
		if st.Copied != copied || st.Skipped != skipped {
			t.Errorf("Put %s: %+v, want %d copied, %d skipped", dst, st, copied, skipped)
		}
	}
	check := func(name string, perm fs.FileMode) {
		t.Helper()
		s, _ := os.Stat(filepath.Join(src, name))
		d, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(filepath.Join(dst, name))
		want, _ := os.ReadFile(filepath.Join(src, name))
		if string(got) != string(want) {
			t.Errorf("%s: content differs", name)
		}
		if d.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, d.Mode().Perm(), perm)
		}
		if d.ModTime().Unix() != s.ModTime().Unix() {
			t.Errorf("%s: mtime %v, want %v", name, d.ModTime(), s.ModTime())
		}
	}

	// A new tree, with a mode for the files.
	st, err := r.Put(ctx, src, dst, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range files {
		total += int64(len(c))
	}
	if st != (PutStats{Copied: 5, Bytes: total, Path: dst}) {
		t.Errorf("first Put: %+v, want 5 copied, %d bytes", st, total)
	}
	for name := range files {
		check(name, 0o640)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "deeper")); err != nil || !fi.IsDir() {
		t.Errorf("sub/deeper: %v", err)
	}

	// Unchanged: nothing copied.
	put(src, dst, 0o640, 0, 5)

	// Another content of the same size, permissions and modification time
	// (a template rendered again within the same second): copied.
	a := filepath.Join(src, "a.txt")
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("ALPHA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	put(src, dst, 0o640, 1, 4)
	check("a.txt", 0o640)
	put(filepath.Join(src, "a.txt"), filepath.Join(dst, "a.txt"), 0o640, 0, 1)

	// One file changed.
	b := filepath.Join(src, "sub", "b.txt")
	if err := os.WriteFile(b, []byte("bravo 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(b, later, later); err != nil {
		t.Fatal(err)
	}
	put(src, dst, 0o640, 1, 4)
	check("sub/b.txt", 0o640)

	// KeepMode, as Ansible's copy without mode: permissions on the host
	// are kept and do not count, so nothing is copied.
	put(src, dst, KeepMode, 0, 5)
	check("a.txt", 0o640)

	// SourceMode gives src's permissions: every file's content is there,
	// only their permissions are set.
	st, err = r.Put(ctx, src, dst, SourceMode)
	if err != nil || st.Copied != 0 || st.Chmodded != 5 || st.Skipped != 0 {
		t.Errorf("Put with SourceMode: %+v %v, want 5 chmodded", st, err)
	}
	check("a.txt", 0o644)

	// A single file to a path whose parents are missing.
	one := filepath.Join(host, "new dir", "deep", "file one.txt")
	if err := os.Chmod(filepath.Join(src, "a.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	put(filepath.Join(src, "a.txt"), one, SourceMode, 1, 0)
	if fi, err := os.Stat(one); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", one, fi, err)
	}
	put(filepath.Join(src, "a.txt"), one, SourceMode, 0, 1)

	// KeepMode gives a new file 0666 less the umask of the host's
	// commands, whatever the source's permissions.
	res, err := r.Run(ctx, Command{Script: "umask"})
	if err != nil {
		t.Fatal(err)
	}
	umask, err := strconv.ParseUint(strings.TrimSpace(res.Stdout), 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(host, "fresh.txt")
	put(filepath.Join(src, "a.txt"), fresh, KeepMode, 1, 0)
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o666&^fs.FileMode(umask) {
		t.Errorf("%s: %v %v, want mode %o", fresh, fi, err, 0o666&^umask)
	}

	// A file put onto a directory goes into it.
	st, err = r.Put(ctx, filepath.Join(src, "a.txt"), filepath.Join(dst, "sub"), KeepMode)
	if want := filepath.Join(dst, "sub", "a.txt"); err != nil || st.Path != want || st.Copied != 1 {
		t.Errorf("Put onto a directory: %+v %v, want %s copied", st, err, want)
	}
	if fi, err := os.Stat(st.Path); err != nil || fi.Mode().Perm() != 0o666&^fs.FileMode(umask) {
		t.Errorf("%s: %v %v, want mode %o", st.Path, fi, err, 0o666&^umask)
	}

	// Get, into a directory that does not exist yet.
	got := filepath.Join(local, "got dir", "d copy.txt")
	if err := r.Get(ctx, filepath.Join(dst, "with space", "d e.txt"), got); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != "delta\n" {
		t.Errorf("Get: %q", b)
	}
	big := filepath.Join(local, "c.bin")
	if err := r.Get(ctx, filepath.Join(dst, "sub", "deeper", "c.bin"), big); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(big); string(b) != files["sub/deeper/c.bin"] {
		t.Errorf("Get of c.bin: %d bytes differ", len(b))
	}
	if err := r.Get(ctx, filepath.Join(dst, "missing"), filepath.Join(local, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a missing file: %v, want fs.ErrNotExist", err)
	}

	// No temporary file is left behind, on either side.
	for _, root := range []string{host, local} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if strings.Contains(d.Name(), ".e2c-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
	}
}

// TestLocalRelativePaths: host-side paths of the local runner are relative
// to its directory, caller-side ones to the working directory.
func TestLocalRelativePaths(t *testing.T) {
	dir := t.TempDir()
	r := NewLocal(filepath.Join(dir, "host")) // created
	src := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Put(ctx, src, "rel/f.txt", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "host", "rel", "f.txt")); err != nil {
		t.Error(err)
	}
	res, err := r.Run(ctx, Command{Script: `cat f.txt; echo " $PWD $HOME"`, Dir: "rel"})
	if err != nil || res.Stdout != "x "+filepath.Join(dir, "host", "rel")+" "+os.Getenv("HOME")+"\n" {
		t.Errorf("Run: %q %v", res.Stdout, err)
	}
}

// localSurvey runs surveyScript in a local sh with PATH set to path.
func localSurvey(path string) surveyor {
	return func(ctx context.Context, root string, names []string) (view, error) {
		return surveyWith(func(stdin io.Reader, stdout io.Writer) error {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", surveyScript, "sh", root)
			cmd.Env = []string{"PATH=" + path}
			cmd.Stdin, cmd.Stdout = stdin, stdout
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &ExitError{Code: ee.ExitCode()}
			}
			return err
		}, names)
	}
}

// TestSurveyScript runs the script SSH hosts survey with on this machine:
// sums of regular files (whatever their names), directories, nothing for
// missing names, and no read of a FIFO (which would block).
func TestSurveyScript(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a.txt": "alpha\n", "sub/with space.txt": "x", `back\slash.txt`: "b", "-dash": "d"})
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := localSurvey(os.Getenv("PATH"))(ctx, root, []string{".", "sub", "a.txt", "sub/with space.txt", `back\slash.txt`, "-dash", "fifo", "missing"})
	if err != nil || !v.known {
		t.Fatalf("survey: %v, known %v", err, v.known)
	}
	if v.umask != processUmask() {
		t.Errorf("umask %o, want %o", v.umask, processUmask())
	}
	have := v.have
	for _, name := range []string{"a.txt", "sub/with space.txt", "-dash"} {
		want, _ := fileSum(filepath.Join(root, name))
		if e := have[name]; !e.mode.IsRegular() || e.sum != want || e.size != int64(len(readTestFile(t, root, name))) {
			t.Errorf("%s: %+v, want a regular file with sum %s", name, e, want)
		}
	}
	if e := have[`back\slash.txt`]; !e.mode.IsRegular() || e.sum != "" {
		t.Errorf("back\\slash.txt: %+v, want a regular file without sum (sha256sum escapes its name)", e)
	}
	for _, d := range []string{".", "sub"} {
		if !have[d].mode.IsDir() {
			t.Errorf("%s: %+v, want a directory", d, have[d])
		}
	}
	if e, ok := have["fifo"]; !ok || e.mode.IsRegular() || e.sum != "" {
		t.Errorf("fifo: %+v %v", e, ok)
	}
	if _, ok := have["missing"]; ok {
		t.Error("missing: reported")
	}
	if v, err := localSurvey(os.Getenv("PATH"))(ctx, filepath.Join(root, "nope"), []string{"."}); err != nil || !v.known || len(v.have) != 0 {
		t.Errorf("missing root: %+v %v", v, err)
	}
}

func readTestFile(t *testing.T, root, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPutWithoutSurvey: a host without sha256sum cannot say what it has,
// so every file is copied, and existing directories are kept.
func TestPutWithoutSurvey(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"stat", "tr", "xargs", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not found", tool)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "d")
	writeTree(t, src, map[string]string{"a": "1", "sub/b": "2"})
	h := localFS{root: "/"}
	open := func(f func(hostFS) error) error { return f(h) }
	ctx := context.Background()
	for range 2 {
		st, err := put(ctx, localSurvey(bin), open, nil, src, dst, KeepMode)
		if err != nil || st.Copied != 2 || st.Skipped != 0 {
			t.Fatalf("put: %+v %v, want 2 copied", st, err)
		}
	}
	if got := string(readTestFile(t, dst, "sub/b")); got != "2" {
		t.Errorf("sub/b = %q", got)
	}
}

// TestSurveyReadsAllItsInput surveys, over SSH, a folder that does not
// exist with more names than the session's window holds: the survey, which
// has nothing to look at, must still read its whole input, since a command
// exiting with its stdin unread fails the session (EOF), as the first Put
// of a folder sometimes did.
func TestSurveyReadsAllItsInput(t *testing.T) {
	r := startSSHD(t, sshdConfig{}).runner(t).(*sshRunner)
	names := make([]string, 20000)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", strings.Repeat("n", 200), i)
	}
	v, err := r.survey(context.Background(), filepath.Join(t.TempDir(), "missing"), names)
	if err != nil || !v.known || len(v.have) != 0 {
		t.Fatalf("survey of a missing folder: %v known %v, %d entries", err, v.known, len(v.have))
	}
}
