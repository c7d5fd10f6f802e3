package experiment

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
)

// TestCommandsRecorded: run.json says per host how its commands ran, and
// why not through the agent; a host that falls back is said on the
// terminal.
func TestCommandsRecorded(t *testing.T) {
	for _, tt := range []struct {
		name     string
		o        Options
		commands string
		noAgent  string // in run.json and the warning; "" for none
	}{
		{"through the agent", Options{Agent: testAgent}, "agent", ""},
		{"no agent for the host's architecture", Options{Agent: func(goarch string) (string, error) {
			return "", errors.New("no e2c for linux/" + goarch)
		}}, "ssh", "no agent for"},
		{"turned off", Options{Agent: testAgent, NoAgent: true}, "ssh", "turned off (--no-agent)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, artifacts := scenario(t, "10.232.20.0/24", fourHosts, touchWorkflow)
			var out strings.Builder
			o := tt.o
			o.ScenarioDir, o.ArtifactsDir, o.Out = dir, artifacts, &out
			runs, err := deploy(context.Background(), o, Release)
			if err != nil {
				t.Fatalf("deploy: %v\n%s", err, out.String())
			}
			rec, err := readRecord(runs[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.Hosts) != 4 {
				t.Fatalf("run.json has %d hosts, want 4", len(rec.Hosts))
			}
			for _, h := range rec.Hosts {
				if h.Commands != tt.commands || !strings.Contains(h.NoAgent, tt.noAgent) || (tt.noAgent == "") != (h.NoAgent == "") {
					t.Errorf("host %s: commands %q, no_agent %q; want %q, %q", h.Name, h.Commands, h.NoAgent, tt.commands, tt.noAgent)
				}
			}
			warned := strings.Contains(out.String(), "runs its commands over an SSH session each: no agent for")
			if warned != (tt.noAgent == "no agent for") {
				t.Errorf("warning said: %v, want %v:\n%s", warned, !warned, out.String())
			}
		})
	}
}

// TestSpreadArtifacts: a large artifact that prepare copies to every host
// is spread host to host ahead of the phase, and the folder's small files
// in one bundle; all arrive whole, and the next run finds both in the
// hosts' cache and spreads nothing.
func TestSpreadArtifacts(t *testing.T) {
	files := map[string][]byte{"blob.bin": make([]byte, 3<<20)}
	for i := range files["blob.bin"] {
		files["blob.bin"][i] = byte(i*7 + i/4096)
	}
	for k := range 12 {
		small := make([]byte, 100<<10)
		for i := range small {
			small[i] = byte(i*k + i/512)
		}
		files[fmt.Sprintf("small/%02d.bin", k)] = small
	}
	files["small/again.bin"] = files["small/03.bin"] // the same content under two names
	var sums strings.Builder
	for name, b := range files {
		fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(b), name)
	}
	files["SHA256SUMS"] = []byte(sums.String())
	workflow := `
- hosts: all
  prepare:
  - copy: {src: "{{ artifacts_dir }}/big/", dest: /opt/big/}
  - shell: cd /opt/big && sha256sum -c --quiet SHA256SUMS
  finalize:
  - shell: rm -rf /opt/big
`
	dir, artifacts := scenario(t, "10.232.21.0/24", fourHosts, workflow)
	for name, b := range files {
		os.MkdirAll(filepath.Join(artifacts, "big", filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(artifacts, "big", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 1, Agent: testAgent, Out: &out}, Release)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if len(runs) != 2 {
		t.Fatalf("%d runs", len(runs))
	}
	for _, name := range []string{"blob.bin", "big (14 small files)"} {
		if n := strings.Count(out.String(), "spread "+name+" to 4 hosts in"); n != 1 || !strings.Contains(out.String(), "spread "+name+": the 4 hosts had it") {
			t.Errorf("want one spread of %s to 4 hosts (the second run has it cached, and says so), got %d:\n%s", name, n, out.String())
		}
	}
	if strings.Contains(out.String(), "failed)") && !strings.Contains(out.String(), "(0 failed)") {
		t.Errorf("a host failed:\n%s", out.String())
	}
}

// TestSpreadPerTestbed: hosts of two testbeds that do not reach each
// other (netns hosts and static hosts of another lab) each spread among
// themselves: e2c feeds one root per testbed and no host waits on a
// parent it cannot reach.
func TestSpreadPerTestbed(t *testing.T) {
	lab := staticLab(t, "10.235.11.0/24", "a", "b")
	dir, artifacts := scenario(t, "10.235.10.0/24", "", "- hosts: all\n  prepare:\n  - copy: {src: \"{{ artifacts_dir }}/big.bin\", dest: /tmp/big.bin}\n")
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): "environment:\n  job_name: e2e\n  netns: {subnet: 10.235.10.0/24}\n" + staticEnv(lab) +
			"layers:\n- name: fog\n  services: [{name: gw, quantity: 2}]\n- name: edge\n  services: [{name: node, quantity: 2, environment: static}]\n",
	})
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i * 17)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Agent: testAgent, Out: &out}, Release); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	// Two roots, 2 MB each; a third feed would make it 6.
	if !strings.Contains(out.String(), "spread big.bin to 4 hosts in") || !strings.Contains(out.String(), "(0 failed), 4 MB sent by e2c") {
		t.Errorf("want big.bin spread to 4 hosts, e2c sending it twice:\n%s", out.String())
	}
}

// TestSpreadBlobsRemoved: the files spread to hosts that outlive their
// reservation (static hosts), which the state records before the spread,
// are removed when a kept reservation that does not fit is released (a
// deploy on 3 of the 4 hosts) and by destroy.
func TestSpreadBlobsRemoved(t *testing.T) {
	lab := staticLab(t, "10.235.9.0/24", "a", "b", "c", "d")
	dir, artifacts := localScenario(t)
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	layers := func(n int) {
		writeTestFiles(t, map[string]string{
			filepath.Join(dir, "layers_services.yaml"): "environment:\n" + staticEnv(lab) +
				fmt.Sprintf("layers:\n- name: edge\n  services: [{name: node, quantity: %d}]\n", n),
		})
	}
	layers(4)
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, "workflow.yaml"): "- hosts: all\n  prepare:\n  - copy: {src: \"{{ artifacts_dir }}/big.bin\", dest: /tmp/big.bin}\n",
	})
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i * 13)
	}
	if err := os.WriteFile(filepath.Join(artifacts, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(transport.BlobDir, fmt.Sprintf("%x", sha256.Sum256(big)))
	on := func(h netns.Host) string { return filepath.Join(lab.StateDir(), "hosts", h.Name, "root", blob) }
	var out strings.Builder
	deployed := func(want ...string) {
		t.Helper()
		out.Reset()
		if _, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Agent: testAgent, Out: &out}, ReleaseIfInterrupted); err != nil {
			t.Fatalf("deploy: %v\n%s", err, out.String())
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Fatalf("deploy did not say %q:\n%s", w, out.String())
			}
		}
	}
	blobs := func(want int) {
		t.Helper()
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Blobs) != want {
			t.Errorf("the state records blobs on %d hosts, want %d: %v", len(st.Blobs), want, st.Blobs)
		}
		for _, h := range lab.Hosts() {
			_, err := os.Stat(on(h))
			if want > 0 && err != nil {
				t.Errorf("host %s: %v", h.Name, err)
			}
			if _, err := os.Stat(filepath.Dir(on(h))); want == 0 && !os.IsNotExist(err) {
				t.Errorf("host %s keeps its blobs folder: %v", h.Name, err)
			}
		}
	}
	deployed("spread big.bin to 4 hosts")
	blobs(4)

	// 3 hosts: the kept 4 do not fit and are released, their blobs first;
	// a copy to 3 hosts is not spread.
	layers(3)
	deployed("does not fit this scenario; releasing it", "removed the files spread to 4 of 4 hosts")
	if strings.Contains(out.String(), "spread big.bin") {
		t.Errorf("big.bin was spread to 3 hosts:\n%s", out.String())
	}
	blobs(0)

	layers(4)
	deployed("spread big.bin to 4 hosts")
	blobs(4)
	out.Reset()
	if err := destroy(context.Background(), dir, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "removed the files spread to 4 of 4 hosts") {
		t.Errorf("destroy did not say it removed the spread files:\n%s", out.String())
	}
	blobs(0)
}

// TestImagesRelayed: an image archive four hosts lack is spread host to
// host and loaded there by each host's docker, not sent to each; the
// containers run.
func TestImagesRelayed(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skip(err) // the emulated hosts' dockerd
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command, which loads a relayed image on a host")
	}
	mosquitto, _ := dockerdtest.Image(t, "mosquitto")
	root := t.TempDir()
	dir, artifacts := filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	dockerdtest.PlaceImage(t, mosquitto, filepath.Join(artifacts, "mosquitto.tar"))
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): fmt.Sprintf(`environment:
  job_name: e2c-relay-%d
  netns: {subnet: 10.237.71.0/24}
layers:
- name: fog
  services: [{name: broker, quantity: 4}]
`, os.Getpid()),
		filepath.Join(dir, "services", "broker.yaml"): "name: broker\ncontainer: {archive: mosquitto.tar, ports: [1883]}\n",
		filepath.Join(dir, "workflow.yaml"):           "[]\n",
	})
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })
	var out strings.Builder
	run, err := layersServices(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Agent: testAgent, Out: &out})
	if err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "spread mosquitto.tar to 4 hosts") || strings.Count(out.String(), "from its relayed copy") != 4 {
		t.Errorf("want the image spread to 4 hosts and loaded from there on each:\n%s", out.String())
	}
	rec, err := readRecord(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Containers {
		if c.State != "running" {
			t.Errorf("container %s on %s: %s %s", c.Name, c.Host, c.State, c.Error)
		}
	}
	if len(rec.Containers) != 4 {
		t.Errorf("%d containers, want 4", len(rec.Containers))
	}
}
