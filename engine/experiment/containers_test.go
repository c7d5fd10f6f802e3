package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/containers"
	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// TestContainersEndToEnd deploys a scenario whose own service definition
// runs the mosquitto test image, from an archive in ARTIFACTS_DIR, on an
// emulated host running its own dockerd (the static provider reaches the
// lab's hosts, the broker's with docker_socket): the broker is ready on
// 1883, a launch task on the other host gets an MQTT CONNACK from it, the
// container is kept for the second run of --repeat and by the step
// commands, its log is in each run folder, and destroy removes it and only
// it.
func TestContainersEndToEnd(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	archive, ref := dockerdtest.Image(t, "mosquitto")
	name := fmt.Sprintf("exp-containers-%d", os.Getpid())
	t.Cleanup(func() {
		if err := netns.Cleanup(context.Background(), name); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	ctx := context.Background()
	lab, err := netns.Create(ctx, netns.Options{Name: name, Hosts: []string{"fog", "edge"},
		Subnet: netip.MustParsePrefix("10.237.50.0/24"), StateDir: filepath.Join(t.TempDir(), "lab")})
	if err != nil {
		t.Fatal(err)
	}
	fog, edge := lab.Hosts()[0], lab.Hosts()[1]
	d := dockerdtest.Start(t, lab, fog)

	root := t.TempDir()
	dir, artifacts := filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	files := map[string]string{
		filepath.Join(dir, "layers_services.yaml"): `environment:
  job_name: e2c-containers-e2e
  static:
    user: root
    keyfile: ` + lab.KeyFile() + `
    host_keys: accept-new
    hosts:
    - {address: ` + fog.Address4.String() + `, alias: broker, docker_socket: ` + d.HostSocket + `}
    - {address: ` + edge.Address4.String() + `, alias: client}
layers:
- name: fog
  services: [{name: testbroker, quantity: 1, servers: [broker]}]
- name: edge
  services: [{name: probe, quantity: 1, servers: [client]}]
`,
		filepath.Join(dir, "services", "testbroker.yaml"): `name: testbroker
port: 1883
container:
  archive: mosquitto.tar
  ports: [1883]
  readiness: {port: 1883, timeout: 60}
`,
		// An MQTT CONNECT from the other host; the task fails unless the
		// broker accepts it (CONNACK 20 02 00 00).
		filepath.Join(dir, "workflow.yaml"): `- hosts: edge.*
  depends_on: {service_selector: "fog.*", grouping: round_robin, prefix: broker}
  launch:
  - shell: |
      bash <<'SH'
      exec 3<>/dev/tcp/{{ broker.__address__ }}/1883
      printf '\x10\x14\x00\x04MQTT\x04\x02\x00\x1e\x00\x08e2c-test' >&3
      ack=$(timeout 10 head -c 4 <&3 | od -An -tx1 | tr -d ' \n')
      echo "connack $ack"
      test "$ack" = 20020000
      SH
`,
	}
	writeTestFiles(t, files)
	os.MkdirAll(artifacts, 0o755)
	dockerdtest.PlaceImage(t, archive, filepath.Join(artifacts, "mosquitto.tar"))
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })

	// e2c's client to the daemon, for a container of another experiment,
	// which destroy must leave alone.
	pool := transport.NewPool(transport.PoolOptions{})
	t.Cleanup(func() { pool.Close() })
	e := transport.Endpoint{Host: fog.Address4.String(), User: "root", KeyFiles: []string{lab.KeyFile()}, KnownHosts: lab.KnownHostsFile()}
	h, _, err := containers.Connect(ctx, "fog", containers.PoolDialer(pool, e), d.HostSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	var out strings.Builder
	runs, err := deploy(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 1, Out: &out}, ReleaseIfInterrupted)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "connack 20020000") {
		t.Errorf("the probe did not print the broker's CONNACK:\n%s", out.String())
	}
	var ids []string
	for i, run := range runs {
		var rec results.Record
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(run, "run.json"))), &rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.Containers) != 1 {
			t.Fatalf("run %d: containers %+v", i, rec.Containers)
		}
		c := rec.Containers[0]
		if c.Host != "broker" || c.Name != "testbroker" || c.State != "running" || c.ID == "" ||
			!strings.HasPrefix(c.ImageID, "sha256:") || c.Ready == nil || c.Ready.Before(c.Start) || c.Error != "" {
			t.Errorf("run %d: container %+v", i, c)
		}
		if c.Kept != (i > 0) {
			t.Errorf("run %d: kept = %v, want it started by the first run and kept by the next", i, c.Kept)
		}
		ids = append(ids, c.ID)
		if log := readFile(t, filepath.Join(run, "services", "broker", "testbroker.log")); !strings.Contains(log, "mosquitto") {
			t.Errorf("run %d: the broker's log is %q", i, log)
		}
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("container IDs of the two runs: %v, want one container kept", ids)
	}

	// The step commands: layers-services finds the container kept, and
	// the finalize that closes the run fetches its log.
	out.Reset()
	stepDir, err := layersServices(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out})
	if err != nil {
		t.Fatalf("layers-services: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "services: broker: container testbroker kept from an earlier run") {
		t.Errorf("layers-services said:\n%s", out.String())
	}
	if err := workflow(ctx, dir, "launch", "", &out); err != nil {
		t.Fatalf("launch: %v\n%s", err, out.String())
	}
	if err := finalize(ctx, dir, "", false, &out); err != nil {
		t.Fatalf("finalize: %v\n%s", err, out.String())
	}
	if log := readFile(t, filepath.Join(stepDir, "services", "broker", "testbroker.log")); !strings.Contains(log, "mosquitto") {
		t.Errorf("step commands: the broker's log is %q", log)
	}

	foreign, err := h.Start(ctx, containers.Spec{Name: "by-hand", Image: ref, Cmd: []string{"sleep", "600"}, Network: "none", Experiment: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Remove(ctx, foreign, 0)
	out.Reset()
	if err := destroy(ctx, dir, &out); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "services: removed 1 containers on broker") {
		t.Errorf("destroy said:\n%s", out.String())
	}
	left, err := h.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != foreign {
		t.Errorf("after destroy: %+v, want only the container started by hand", left)
	}
}
