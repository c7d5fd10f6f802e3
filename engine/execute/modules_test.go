package execute

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2c-dev/e2c/engine/ordered"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/schema"
)

// moduleCase runs tasks twice on one real local host: want is checked on
// the host's files after both runs, first and again on what the tasks
// registered after the first and the second run (dotted paths, printed).
type moduleCase struct {
	name   string
	before map[string]string // host files, relative to its home
	tasks  string            // launch tasks, indented as list items
	want   map[string]string // host files after the runs; {home} is the host's home as it sees it
	absent []string          // host files there are not after the runs
	modes  map[string]os.FileMode
	fails  string            // the first run fails with this, when set
	first  map[string]string // registered values after the first run
	again  map[string]string // and after the second
}

// moduleHost makes the executor of a workflow on one host, edge-node-1-1,
// and tells where its files are here and where the host sees its home.
type moduleHost func(t *testing.T, workflow string) (ex *Executor, out fmt.Stringer, home, artifacts, seen string)

// onLocal is a host of the local transport, in a folder of its own.
func onLocal(t *testing.T, workflow string) (*Executor, fmt.Stringer, string, string, string) {
	ex, out, homes := setup(t, 1, workflow)
	return ex, out, homes["edge-node-1-1"], homes["artifacts"], homes["edge-node-1-1"]
}

// runModuleCase runs c on a local host and returns the host's home.
func runModuleCase(t *testing.T, c moduleCase, prepare func(home, artifacts string)) string {
	t.Helper()
	return runModuleCaseOn(t, onLocal, c, prepare)
}

// runModuleCaseOn runs c on the host of on and returns where its home is here.
func runModuleCaseOn(t *testing.T, on moduleHost, c moduleCase, prepare func(home, artifacts string)) string {
	t.Helper()
	ex, out, home, artifacts, seen := on(t, "- hosts: all\n  launch:\n"+c.tasks)
	for p, content := range c.before {
		os.MkdirAll(filepath.Dir(filepath.Join(home, p)), 0o755)
		if err := os.WriteFile(filepath.Join(home, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(home, artifacts)
	}
	for run, want := range []map[string]string{c.first, c.again} {
		_, err := ex.Phase(context.Background(), "launch")
		switch {
		case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
			t.Fatalf("run %d: error %v, want one with %q\n%s", run+1, err, c.fails, out)
		case c.fails == "" && err != nil:
			t.Fatalf("run %d: %v\n%s", run+1, err, out)
		}
		reg := ex.Memory().Registered["edge-node-1-1"]
		for path, v := range want {
			if got := lookup(reg, path); got != v {
				t.Errorf("run %d: %s = %s, want %s", run+1, path, got, v)
			}
		}
	}
	for p, content := range c.want {
		content = strings.ReplaceAll(content, "{home}", seen)
		if got := read(t, filepath.Join(home, p)); got != content {
			t.Errorf("%s = %q, want %q", p, got, content)
		}
	}
	for _, p := range c.absent {
		if _, err := os.Lstat(filepath.Join(home, p)); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for p, mode := range c.modes {
		st, err := os.Lstat(filepath.Join(home, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), mode)
		}
	}
	return home
}

// lookup is the value at a dotted path of registered results, printed;
// <none> when there is none.
func lookup(v any, path string) string {
	for _, k := range strings.Split(path, ".") {
		if d, isOrdered := v.(*ordered.Map); isOrdered {
			if v, isOrdered = d.Get(k); !isOrdered {
				return "<none>"
			}
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			if l, isList := v.([]any); isList {
				var i int
				if _, err := fmt.Sscan(k, &i); err == nil && i < len(l) {
					v = l[i]
					continue
				}
			}
			return "<none>"
		}
		if v, ok = m[k]; !ok {
			return "<none>"
		}
	}
	return fmt.Sprint(v)
}

func TestFileModules(t *testing.T)    { runModuleCases(t, onLocal, fileCases()) }
func TestFactModules(t *testing.T)    { runModuleCases(t, onLocal, factCases()) }
func TestCommandModules(t *testing.T) { runModuleCases(t, onLocal, commandCases()) }
func TestTransferModules(t *testing.T) {
	runModuleCases(t, onLocal, transferCases(moduleServer(t, "127.0.0.1:0")))
}

// runModuleCases runs each case on a host of its own.
func runModuleCases(t *testing.T, on moduleHost, cases []moduleCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runModuleCaseOn(t, on, c, moduleFiles(t)) })
	}
}

// moduleServer serves what get_url and uri fetch, on addr; it returns its URL.
func moduleServer(t *testing.T, addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/f.txt": // answers If-Modified-Since, as Python's http.server
			http.ServeContent(w, r, "f.txt", time.Unix(1e9, 0), strings.NewReader("hello\n"))
		case "/api":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok": true, "n": 2}`)
		case "/echo": // what the request's headers and body were
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "X-Test=%s type=%s body=%s", r.Header.Get("X-Test"), r.Header.Get("Content-Type"), body)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// moduleFiles writes what the cases' tasks use: the script s.sh and the
// archives of ARTIFACTS_DIR/tree, and the folders x and y on the host.
func moduleFiles(t *testing.T) func(home, artifacts string) {
	return func(home, artifacts string) {
		os.WriteFile(filepath.Join(artifacts, "s.sh"), []byte("#!/bin/sh\necho \"args: $*\"\necho oops >&2\npwd > where\nexit ${CODE:-0}\n"), 0o644)
		src := filepath.Join(artifacts, "tree")
		for name, flag := range map[string]string{"t.tgz": "-z", "t.tar.bz2": "-j"} {
			if out, err := exec.Command("tar", "-c", flag, "-f", filepath.Join(artifacts, name), "-C", src, ".").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, out)
			}
		}
		os.MkdirAll(filepath.Join(home, "x"), 0o755)
		os.MkdirAll(filepath.Join(home, "y"), 0o755)
	}
}

// installed is the version of a Debian package this machine has, "" for none.
func installed(pkg string) string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status} ${Version}", pkg).Output()
	v, _ := strings.CutPrefix(string(out), "install ok installed ")
	if v == string(out) {
		return ""
	}
	return v
}

// TestAptModules installs and removes Debian's small "hello" package on
// this machine for real, from its configured mirror.
func TestAptModules(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("apt needs apt-get and root")
	}
	if installed("hello") != "" {
		t.Skip("the package hello is already installed here: the test would remove it")
	}
	if out, err := exec.Command("apt-get", "install", "-y", "-q", "--download-only", "hello").CombinedOutput(); err != nil {
		t.Skipf("no reachable Debian mirror to install from: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("apt-get", "purge", "-y", "-q", "hello").Run() })
	for _, c := range []moduleCase{
		{
			name: "absent and missing",
			tasks: `  - apt: {name: hello, state: absent}
    register: a
  - package: {name: e2c-no-such-package, state: present}
    register: bad
    ignore_errors: yes
`,
			first: map[string]string{"a.changed": "false", "a.cache_updated": "<none>", "a.failed": "false",
				"bad.failed": "true", "bad.msg": "No package matching 'e2c-no-such-package' is available", "bad.cache_updated": "<none>"},
			again: map[string]string{"a.changed": "false"},
		},
		{
			name:  "install",
			tasks: "  - apt: {name: hello, install_recommends: no}\n    register: i\n",
			first: map[string]string{"i.changed": "true", "i.cache_updated": "false", "i.failed": "false"},
			again: map[string]string{"i.changed": "false", "i.stdout": "<none>"},
		},
		{
			name:  "remove",
			tasks: "  - package: {name: hello, state: absent}\n    register: r\n",
			first: map[string]string{"r.changed": "true", "r.cache_updated": "<none>"},
			again: map[string]string{"r.changed": "false"},
		},
	} {
		runModuleCase(t, c, nil)
		if got := installed("hello"); (got != "") != (c.name == "install") {
			t.Errorf("%s: hello installed = %q", c.name, got)
		}
		if t.Failed() {
			return
		}
	}
}

// TestUserModule creates and removes users of this machine for real.
func TestUserModule(t *testing.T) {
	if _, err := exec.LookPath("useradd"); err != nil || os.Geteuid() != 0 {
		t.Skip("user needs useradd and root")
	}
	const made, gone = "e2c-modtest-a", "e2c-modtest-b"
	for _, u := range []string{made, gone} {
		if exec.Command("getent", "passwd", u).Run() == nil {
			t.Skipf("user %s already exists here", u)
		}
		t.Cleanup(func() { exec.Command("userdel", "-r", u).Run() })
	}
	if out, err := exec.Command("useradd", "-M", gone).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	runModuleCase(t, moduleCase{
		tasks: `  - user: {name: ` + made + `, shell: /bin/sh, comment: e2c test, home: /tmp/` + made + `}
    register: u
  - user: {name: ` + gone + `, state: absent}
    register: g
`,
		first: map[string]string{"u.changed": "true", "u.name": made, "u.shell": "/bin/sh", "u.comment": "e2c test",
			"u.home": "/tmp/" + made, "u.create_home": "true", "u.state": "present", "g.changed": "true", "g.state": "absent"},
		again: map[string]string{"u.changed": "false", "u.create_home": "<none>", "u.append": "false", "g.changed": "false"},
	}, nil)
	out, err := exec.Command("getent", "passwd", made).Output()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ":e2c test:/tmp/"+made+":/bin/sh") {
		t.Errorf("passwd entry of %s = %q (%v)", made, out, err)
	}
	if st, err := os.Stat("/tmp/" + made); err != nil || !st.IsDir() {
		t.Errorf("home of %s: %v", made, err)
	}
	if exec.Command("getent", "passwd", gone).Run() == nil {
		t.Errorf("%s is still a user", gone)
	}
}

// TestServiceModules runs a real init script of this machine with service;
// systemd is checked for what it says where systemd does not run.
func TestServiceModules(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("service needs root to write /etc/init.d")
	}
	const name = "e2c-modtest"
	script, pid := "/etc/init.d/"+name, "/run/"+name+".pid"
	if _, err := os.Stat(script); err == nil {
		t.Skipf("%s already exists here", script)
	}
	body := `#!/bin/sh
p=` + pid + `
case "$1" in
start) sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > $p ;;
stop) kill "$(cat $p)" && rm -f $p ;;
status) [ -f $p ] && kill -0 "$(cat $p)" 2>/dev/null ;;
restart) "$0" stop; "$0" start ;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command(script, "stop").Run()
		os.Remove(script)
	})
	running := func() bool { return exec.Command(script, "status").Run() == nil }
	runModuleCase(t, moduleCase{
		tasks: "  - service: {name: " + name + ", state: started}\n    register: s\n",
		first: map[string]string{"s.changed": "true", "s.name": name, "s.state": "started", "s.status": "<none>"},
		again: map[string]string{"s.changed": "false"},
	}, nil)
	if !running() {
		t.Error("service started: the script's status says it is not running")
	}
	runModuleCase(t, moduleCase{
		tasks: "  - service: {name: " + name + ", state: stopped}\n    register: s\n",
		first: map[string]string{"s.changed": "true", "s.state": "stopped"},
		again: map[string]string{"s.changed": "false"},
	}, nil)
	if running() {
		t.Error("service stopped: the script's status says it runs")
	}
	runModuleCase(t, moduleCase{
		tasks: "  - service: {name: e2c-no-such-service, state: started}\n    register: s\n    ignore_errors: yes\n",
		first: map[string]string{"s.failed": "true", "s.msg": "Could not find the requested service e2c-no-such-service: host"},
		again: map[string]string{"s.failed": "true"},
	}, nil)

}

// TestSystemdModule checks what systemd says where systemd does not run;
// units are started for real only where it does.
func TestSystemdModule(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: starting and enabling real units is not tested, so as not to change this machine's services")
	}
	ex, out, _ := setup(t, 1, "- hosts: all\n  launch:\n  - systemd: {name: ssh, state: started}\n")
	_, err := ex.Phase(context.Background(), "launch")
	if err == nil || !strings.Contains(err.Error(), "systemd is not running on the host") {
		t.Errorf("systemd where it does not run: %v\n%s", err, out)
	}
	t.Skip("systemd is not PID 1 here: only its refusal was tested; starting, stopping and enabling units was not run")
}

func fileCases() []moduleCase {
	return []moduleCase{
		{
			name: "file",
			tasks: `  - file: {path: d/e, state: directory, mode: "0750"}
    register: dir
  - file: {path: d/e/f, state: touch, mode: "0600"}
    register: touch
  - file: {path: d/link, src: e/f, state: link}
    register: link
  - file: {path: gone, state: absent}
    register: gone
`,
			before: map[string]string{"gone/x": "x"},
			want:   map[string]string{"d/link": ""},
			modes:  map[string]os.FileMode{"d/e": os.ModeDir | 0o750, "d/e/f": 0o600, "d/link": os.ModeSymlink | 0o777},
			first: map[string]string{"dir.changed": "true", "dir.state": "directory", "dir.mode": "0750",
				"touch.changed": "true", "link.changed": "true", "link.state": "link", "link.src": "e/f",
				"gone.changed": "true", "gone.state": "absent"},
			again: map[string]string{"dir.changed": "false", "touch.changed": "true", "link.changed": "false", "gone.changed": "false"},
		},
		{
			name:   "stat",
			before: map[string]string{"s.txt": "hello\n"},
			tasks: `  - stat: {path: s.txt}
    register: s
  - stat: {path: nothing}
    register: n
`,
			first: map[string]string{"s.changed": "false", "s.stat.exists": "true", "s.stat.size": "6",
				"s.stat.isreg": "true", "s.stat.mode": "0644", "s.stat.checksum": "f572d396fae9206628714fb2ce00f72e94f2258f",
				"n.stat.exists": "false"},
			again: map[string]string{"s.stat.exists": "true"},
		},
		{
			name:   "lineinfile",
			before: map[string]string{"conf": "a=1\nport=80\n# end\n"},
			tasks: `  - lineinfile: {path: conf, regexp: "^port=", line: "port=8080"}
    register: replaced
  - lineinfile: {path: conf, line: "b=2", insertafter: "^a="}
    register: added
  - lineinfile: {path: conf, regexp: "^# end", state: absent}
    register: removed
  - lineinfile: {path: new.conf, line: "x", create: yes, mode: "0600"}
    register: created
`,
			want:  map[string]string{"conf": "a=1\nb=2\nport=8080\n", "new.conf": "x\n"},
			modes: map[string]os.FileMode{"new.conf": 0o600},
			first: map[string]string{"replaced.changed": "true", "replaced.msg": "line replaced",
				"added.changed": "true", "added.msg": "line added", "removed.changed": "true", "removed.found": "1",
				"created.changed": "true"},
			again: map[string]string{"replaced.changed": "false", "replaced.msg": "", "added.changed": "false",
				"removed.changed": "false", "removed.found": "0", "created.changed": "false"},
		},
		{
			name:  "lineinfile missing file",
			tasks: "  - lineinfile: {path: none, line: x}\n    register: r\n    ignore_errors: yes\n",
			first: map[string]string{"r.failed": "true", "r.rc": "257", "r.msg": "Destination none does not exist !"},
			again: map[string]string{"r.failed": "true"},
		},
		{
			name:   "blockinfile",
			before: map[string]string{"hosts": "127.0.0.1 localhost\n"},
			tasks: `  - blockinfile:
      path: hosts
      block: |
        10.0.0.1 a
        10.0.0.2 b
    register: b
  - blockinfile: {path: other, block: "x", marker: "## {mark} e2c", create: yes}
    register: o
`,
			want: map[string]string{
				"hosts": "127.0.0.1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.1 a\n10.0.0.2 b\n# END ANSIBLE MANAGED BLOCK\n",
				"other": "## BEGIN e2c\nx\n## END e2c\n"},
			first: map[string]string{"b.changed": "true", "b.msg": "Block inserted", "o.changed": "true", "o.msg": "File created"},
			again: map[string]string{"b.changed": "false", "b.msg": "", "o.changed": "false"},
		},
		{
			name:  "copy content",
			tasks: "  - copy: {content: \"hi\\n\", dest: c.txt}\n    register: c\n",
			want:  map[string]string{"c.txt": "hi\n"},
			modes: map[string]os.FileMode{"c.txt": 0o644},
			first: map[string]string{"c.changed": "true", "c.checksum": "55ca6286e3e4f4fba5d0448333fa99fc5a404a73"},
			again: map[string]string{"c.changed": "false"},
		},
	}
}

func factCases() []moduleCase {
	return []moduleCase{
		{
			name: "set_fact and assert",
			tasks: `  - set_fact: {port: 8080, url: "http://{{ inventory_hostname }}:8080"}
  - assert:
      that: ["port == 8080", "':8080' in url"]
      success_msg: ports fine
    register: ok
  - debug: {msg: "{{ url }}"}
    register: shown
`,
			first: map[string]string{"ok.changed": "false", "ok.msg": "ports fine", "shown.msg": "http://edge-node-1-1:8080"},
			again: map[string]string{"ok.msg": "ports fine"},
		},
		{
			name: "assert fails",
			tasks: `  - assert: {that: "1 == 2", fail_msg: "one is not two"}
    register: a
    ignore_errors: yes
`,
			first: map[string]string{"a.failed": "true", "a.msg": "one is not two", "a.assertion": "1 == 2", "a.evaluated_to": "false"},
			again: map[string]string{"a.failed": "true"},
		},
		{
			name:  "fail",
			tasks: "  - fail: {msg: stop here}\n",
			fails: "stop here",
		},
	}
}

func commandCases() []moduleCase {
	return []moduleCase{
		{
			name:  "raw",
			tasks: "  - raw: echo one; echo two >&2; printf 'a\\r\\nb'\n    register: r\n",
			first: map[string]string{"r.changed": "true", "r.rc": "0", "r.stdout": "one\na\r\nb", "r.stdout_lines.1": "a",
				"r.stdout_lines.2": "b", "r.stderr": "two\n"},
			again: map[string]string{"r.changed": "true"},
		},
		{
			name: "raw fails",
			tasks: `  - raw: exit 4
    register: r
    ignore_errors: yes
`,
			first: map[string]string{"r.rc": "4", "r.failed": "true", "r.msg": "non-zero return code"},
			again: map[string]string{"r.rc": "4"},
		},
		{
			name: "script",
			tasks: `  - script: s.sh "a b" c
    register: s
  - script: s.sh again creates=where
    register: skipped
`,
			want: map[string]string{"where": "{home}\n"}, // the script runs in the host's home
			first: map[string]string{"s.changed": "true", "s.rc": "0", "s.stdout": "args: a b c\n", "s.stderr": "oops\n",
				"skipped.changed": "false", "skipped.skipped": "true", "skipped.msg": "where exists, matching creates option"},
			again: map[string]string{"s.changed": "true"},
		},
		{
			name: "async",
			tasks: `  - shell: sleep 1
    async: 10
    poll: 0
    register: bg
  - shell: echo polled; exit 2
    async: 10
    poll: 1
    register: p
    ignore_errors: yes
`,
			first: map[string]string{"bg.started": "1", "bg.finished": "0", "bg.changed": "true", "bg.rc": "<none>",
				"p.started": "1", "p.finished": "1", "p.rc": "2", "p.stdout": "polled", "p.stdout_lines.0": "polled",
				"p.cmd": "echo polled; exit 2", "p.failed": "true", "p.msg": "non-zero return code", "p.changed": "true"},
			again: map[string]string{"bg.started": "1", "p.finished": "1"},
		},
		{
			name: "script fails",
			tasks: `  - script: s.sh
    environment: {CODE: "3"}
    register: s
    ignore_errors: yes
`,
			first: map[string]string{"s.rc": "3", "s.failed": "true", "s.msg": "non-zero return code"},
			again: map[string]string{"s.rc": "3"},
		},
	}
}

func transferCases(url string) []moduleCase {
	return []moduleCase{
		{
			name: "get_url",
			tasks: `  - get_url: {url: "` + url + `/f.txt", dest: f.txt, mode: "0640"}
    register: g
  - get_url: {url: "` + url + `/missing", dest: m.txt}
    register: m
    ignore_errors: yes
  - get_url: {url: "` + url + `/echo", dest: e.txt, headers: {X-Test: sent}}
`,
			want:  map[string]string{"f.txt": "hello\n", "e.txt": "X-Test=sent type= body="},
			modes: map[string]os.FileMode{"f.txt": 0o640},
			first: map[string]string{"g.changed": "true", "g.status_code": "200", "g.msg": "OK (6 bytes)",
				"g.checksum_dest": "<nil>", "g.checksum_src": "f572d396fae9206628714fb2ce00f72e94f2258f",
				"m.failed": "true", "m.status_code": "404"},
			again: map[string]string{"g.changed": "false", "g.msg": "HTTP Error 304: Not Modified"},
		},
		{
			name: "uri",
			tasks: `  - uri: {url: "` + url + `/api", return_content: yes}
    register: u
  - uri: {url: "` + url + `/missing"}
    register: m
    ignore_errors: yes
  - uri: {url: "` + url + `/echo", method: POST, headers: {X-Test: sent}, body_format: json, body: {zeta: 1, alpha: [2]}, return_content: yes}
    register: e
  - shell: echo '{{ u.json | to_json }}' > uri.json
`,
			want: map[string]string{"uri.json": `{"ok": true, "n": 2}` + "\n"}, // the server's order
			first: map[string]string{"u.changed": "false", "u.status": "200", "u.json.ok": "true", "u.json.n": "2",
				"u.content": `{"ok": true, "n": 2}`, "m.failed": "true", "m.status": "404",
				"e.content": `X-Test=sent type=application/json body={"zeta":1,"alpha":[2]}`},
			again: map[string]string{"u.status": "200"},
		},
		{
			name: "unarchive",
			tasks: `  - unarchive: {src: t.tgz, dest: x}
    register: z
  - unarchive: {src: t.tar.bz2, dest: y}
    register: j
  - unarchive: {src: t.tgz, dest: nodir}
    register: bad
    ignore_errors: yes
`,
			want: map[string]string{"x/a.txt": "a", "x/sub/b.txt": "b", "y/sub/b.txt": "b"},
			first: map[string]string{"z.changed": "true", "z.handler": "TgzArchive", "z.dest": "x",
				// GNU tar reads any compression, so Ansible's TarArchive comes before TarBzipArchive.
				"j.changed": "true", "j.handler": "TarArchive",
				"bad.failed": "true", "bad.msg": "dest 'nodir' must be an existing dir", "bad.handler": "<none>", "bad.dest": "<none>"},
			again: map[string]string{"z.changed": "false", "j.changed": "false"},
		},
		{
			name: "synchronize",
			tasks: `  - synchronize: {src: tree/, dest: mirror, delete: yes}
    register: s
  - synchronize: {src: mirror/sub, dest: "{{ working_dir }}/pulled/", mode: pull}
    register: p
`,
			before: map[string]string{"mirror/stale.txt": "old"},
			want:   map[string]string{"mirror/a.txt": "a", "mirror/sub/b.txt": "b"},
			absent: []string{"mirror/stale.txt"},
			first:  map[string]string{"s.changed": "true", "s.rc": "0", "s.stdout_lines.0": "deleting stale.txt", "p.changed": "true"},
			again:  map[string]string{"s.changed": "false", "s.stdout_lines": "[]", "p.changed": "false"},
		},
	}
}

// TestModulesOverSSH runs the cases of the local hosts again on a host of
// a netns lab, reached through real sshd: each case on a home emptied first.
func TestModulesOverSSH(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skipf("no netns lab here: %v", err)
	}
	ctx := context.Background()
	lab, err := netns.Create(ctx, netns.Options{Name: fmt.Sprintf("exec-modules-%d", os.Getpid()), Hosts: []string{"a"},
		Subnet: netip.MustParsePrefix("10.235.19.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Destroy(context.Background()) })
	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	h := lab.Hosts()[0]
	home := filepath.Join(lab.StateDir(), "hosts", h.Name, "root")
	onSSH := func(t *testing.T, workflow string) (*Executor, fmt.Stringer, string, string, string) {
		entries, _ := os.ReadDir(home)
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(home, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		ex, out, homes := setupWith(t, 1, workflow, func(string, transport.Runner) (transport.Runner, error) {
			return pool.Runner(ctx, transport.Endpoint{Host: h.Address4.String(), User: "root",
				KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()})
		})
		return ex, out, home, homes["artifacts"], "/root"
	}
	bridge, _ := lab.Bridge()
	for name, cases := range map[string][]moduleCase{
		"file": fileCases(), "fact": factCases(), "command": commandCases(),
		"transfer": transferCases(moduleServer(t, net.JoinHostPort(bridge.String(), "0"))),
	} {
		t.Run(name, func(t *testing.T) { runModuleCases(t, onSSH, cases) })
	}
}

// TestEveryModuleHasOneImplementation: schema's table of module arguments
// and the implementations here name the same modules, so that a module
// validated is a module run, and a module run has its arguments checked.
func TestEveryModuleHasOneImplementation(t *testing.T) {
	names := schema.ModuleNames()
	if got := slices.Sorted(maps.Keys(moduleFuncs)); !slices.Equal(got, names) {
		t.Errorf("implemented modules %v,\nschema's %v", got, names)
	}
}
