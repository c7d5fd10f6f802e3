package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/results"
)

// standIn is the entrypoint of the image that stands in for Apache
// Kafka's and Flink's, which no registry here serves: it checks what the
// built-in definitions give each container (its environment, its
// arguments, the containers it depends on, reached at their addresses),
// says so in its log, and listens where the real one would, for the
// definition's readiness check. Its first argument is the container's
// args: jobmanager, taskmanager, or none for a Kafka broker.
const standIn = `set -eu
listen() { printf 'listener %s\nallow_anonymous true\n' "$@" >/tmp/standin.conf; exec mosquitto -c /tmp/standin.conf; }
srvr() { exec 3<>"/dev/tcp/${1%:*}/${1#*:}"; echo srvr >&3; cat <&3; exec 3<&-; }
case "${1:-broker}" in
broker)
  echo "broker $KAFKA_BROKER_ID advertises $KAFKA_ADVERTISED_LISTENERS"
  srvr "$KAFKA_ZOOKEEPER_CONNECT"
  listen 9092 ;;
jobmanager)
  echo "job manager at $JOB_MANAGER_RPC_ADDRESS with FLINK_PROPERTIES=$FLINK_PROPERTIES"
  listen 8081 ;;
taskmanager)
  exec 3<>"/dev/tcp/$JOB_MANAGER_RPC_ADDRESS/8081"
  echo "job manager at $JOB_MANAGER_RPC_ADDRESS:8081 reachable"
  exec sleep infinity ;;
esac`

// TestKafkaFlinkStandIns deploys the built-in Kafka and Flink definitions
// on emulated hosts with their own Docker: ZooKeeper is the real one
// (Debian's, in the zookeeper test image) and answers srvr from another
// host; the brokers, job manager and task manager are the stand-in above,
// which shows that each container got its definition's name, environment
// and arguments, started after what it needs (the leader after
// zookeeper, on one host; the follower after both, and the task manager
// after the job manager, on others) and reached it at the address the plan
// gave it; and a task on the leader's host reaches it with docker exec.
func TestKafkaFlinkStandIns(t *testing.T) {
	if err := netns.Preflight(); err != nil {
		t.Skip(err)
	}
	if err := netns.CheckDocker(); err != nil {
		t.Skip(err) // the emulated hosts' dockerd
	}
	zk, _ := dockerdtest.Image(t, "zookeeper")
	mosquitto, _ := dockerdtest.Image(t, "mosquitto")
	root := t.TempDir()
	dir, artifacts := filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	dockerdtest.PlaceImage(t, zk, filepath.Join(artifacts, "zookeeper.tar"))
	dockerdtest.Derive(t, mosquitto, filepath.Join(artifacts, "standin.tar"), "e2c-test/standin:1", func(cfg map[string]any) {
		c := cfg["config"].(map[string]any)
		c["Entrypoint"], c["Cmd"] = []string{"bash", "-c", standIn, "standin"}, nil
	})
	name := fmt.Sprintf("e2c-standins-%d", os.Getpid())
	writeTestFiles(t, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): `environment:
  job_name: ` + name + `
  netns: {subnet: 10.237.52.0/24}
layers:
- name: cloud
  services:
  - name: Kafka
    quantity: 2
    archive: {zookeeper: zookeeper.tar, leader: standin.tar, follower: standin.tar}
  - name: Flink
    quantity: 2
    archive: standin.tar
    env: {FLINK_PROPERTIES: "jobmanager.memory.process.size: 1g"}
- name: edge
  services:
  - name: probe
`,
		filepath.Join(dir, "workflow.yaml"): `- hosts: edge.probe.*
  depends_on: {service_selector: "cloud.kafka.*.zookeeper.*", grouping: round_robin, prefix: zk}
  launch:
  - shell: |
      bash -c 'exec 3<>/dev/tcp/{{ zk.__address__ }}/2181; echo srvr >&3; cat <&3'
- hosts: cloud.kafka.*.leader
  launch:
  - shell: |
      docker exec leader sh -c 'echo "leader env: $KAFKA_ZOOKEEPER_CONNECT"'
`,
	})
	t.Cleanup(func() { destroy(context.Background(), dir, &strings.Builder{}) })

	var out strings.Builder
	runs, err := deploy(context.Background(), Options{ScenarioDir: dir, ArtifactsDir: artifacts, Repeat: 0, Out: &out}, ReleaseIfInterrupted)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Zookeeper version:") {
		t.Errorf("ZooKeeper did not answer srvr from the edge host:\n%s", out.String())
	}
	// The docker CLI of a host's session reaches its own daemon, as the
	// CCTV workflow's docker exec leader does.
	if !strings.Contains(out.String(), "leader env: 10.237.52.") {
		t.Errorf("docker exec leader on its host:\n%s", out.String())
	}
	var rec results.Record
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(runs[0], "run.json"))), &rec); err != nil {
		t.Fatal(err)
	}
	byName := map[string]results.Container{}
	for _, c := range rec.Containers {
		byName[c.Name] = c
		if c.State != "running" || c.Ready == nil || c.Error != "" {
			t.Errorf("container %s on %s: %+v", c.Name, c.Host, c)
		}
	}
	if names := slices.Sorted(maps.Keys(byName)); !slices.Equal(names, []string{"follower", "job_manager", "leader", "task_manager", "zookeeper"}) {
		t.Fatalf("containers %v", names)
	}
	zkRec, leader := byName["zookeeper"], byName["leader"]
	if zkRec.Host != leader.Host || leader.Start.Before(*zkRec.Ready) {
		t.Errorf("leader %+v should start on zookeeper's host after it is ready (%+v)", leader, zkRec)
	}
	logs := map[string]string{}
	for n, c := range byName {
		logs[n] = readFile(t, filepath.Join(runs[0], "services", c.Host, n+".log"))
	}
	for _, tt := range []struct{ container, want string }{
		{"zookeeper", "binding to port"},
		{"leader", "broker 1 advertises PLAINTEXT://"},
		{"leader", "Zookeeper version:"},
		{"follower", "broker 2 advertises PLAINTEXT://"},
		{"follower", "Zookeeper version:"},
		{"job_manager", "with FLINK_PROPERTIES=jobmanager.memory.process.size: 1g"},
		{"task_manager", ":8081 reachable"},
	} {
		if !strings.Contains(logs[tt.container], tt.want) {
			t.Errorf("%s's log lacks %q:\n%s", tt.container, tt.want, logs[tt.container])
		}
	}
}

// writeTestFiles writes each file's text, with its folders.
func writeTestFiles(t testing.TB, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
