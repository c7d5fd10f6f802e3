package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/schema"
)

// TestCCTVContainers: every container the CCTV workflow addresses on a
// host (docker exec, docker cp, docker container stop and rm) is one the
// plan starts on that host.
func TestCCTVContainers(t *testing.T) {
	sc, err := schema.Load("../../examples/cctv")
	if err != nil {
		t.Fatal(err)
	}
	p := mustBuild(t, sc)
	onHost := map[string][]string{}
	for _, h := range p.Hosts {
		for _, c := range h.Containers {
			onHost[h.Name] = append(onHost[h.Name], c.Name)
			if c.Image == "" || c.NetworkMode != "host" || c.Readiness.Wait() == 0 {
				t.Errorf("%s: container %+v", h.Name, c)
			}
		}
	}
	addressed := regexp.MustCompile(`docker (?:exec|container stop|container rm) ([\w.-]+)|docker cp \S+ ([\w.-]+):`)
	seen := map[string]bool{}
	for _, pl := range p.Plays {
		for _, runs := range pl.Phases {
			for _, r := range runs {
				Walk(r.Tasks, func(task *Task) {
					cmd, _ := task.Args["cmd"].(string)
					for _, m := range addressed.FindAllStringSubmatch(cmd, -1) {
						name := m[1] + m[2]
						seen[name] = true
						if !slices.Contains(onHost[r.Host], name) {
							t.Errorf("%s addresses container %q, which the plan does not start there (it starts %v)", r.Host, name, onHost[r.Host])
						}
					}
				})
			}
		}
	}
	if want := []string{"job_manager", "leader", "task_manager", "zookeeper"}; !reflect.DeepEqual(slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	}), want) {
		t.Errorf("the workflow addresses %v, want %v", seen, want)
	}
	if got := onHost["fog-mosquitto-1-1"]; !reflect.DeepEqual(got, []string{"mosquitto"}) {
		t.Errorf("a gateway runs %v, want mosquitto", got)
	}
	if got := onHost["edge-producer-1-1"]; got != nil {
		t.Errorf("a producer (no definition) runs %v", got)
	}
}

// loadDefs loads a scenario with service definitions in services/ and an
// artifacts folder, and plans it with ARTIFACTS_DIR there.
func loadDefs(t *testing.T, layers string, defs map[string]string) (*Plan, error) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{schema.LayersServicesFile: layers, schema.WorkflowFile: "- {hosts: all, launch: [{debug: {msg: hi}}]}\n"}
	for name, text := range defs {
		files[filepath.Join(schema.ServicesDir, name)] = text
	}
	files["artifacts/images/app.tar"] = "not really an image"
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := schema.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{ScenarioDir: dir, ArtifactsDir: filepath.Join(dir, "artifacts"), RunDir: filepath.Join(dir, "run"), RepeatCount: 1}
	return Build(sc, servicedef.New(sc.ServiceDefs), Synthetic(Expand(sc.LayersServices)), opt)
}

func TestContainerPlanErrors(t *testing.T) {
	const two = "name: app\nsubservices:\n- name: a\n  hosts: \"0\"\n  container: {image: \"app:1\", ports: [80, 81]}\n- name: b\n  hosts: \"0\"\n  container: {image: \"app:1\", ports: [\"81\"]}\n"
	tests := []struct {
		name, layers string
		defs         map[string]string
		want         string
	}{
		{"same host port", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": two},
			`services/app.yaml:8:39: container b (l.app.1.b.1): host port 81/tcp is already taken by container a (l.app.1.a.1) on this host (on host l-app-1-1)`},
		{"udp and tcp share a number", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": strings.Replace(two, `["81"]`, `["81/udp"]`, 1)}, ""},
		{"same name", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": strings.Replace(two, "{image", "{name: x, image", 2)},
			`services/app.yaml:8:14: container x (l.app.1.b.1): the name is already taken by the container of l.app.1.a.1 on this host`},
		{"bridge ports apart", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\nsubservices:\n- {name: a, hosts: \"0\", container: {image: \"app:1\", network_mode: bridge, ports: [\"19092:9092\"]}}\n- {name: b, hosts: \"0\", container: {image: \"app:1\", network_mode: bridge, ports: [\"29092:9092\"]}}\n"}, ""},
		{"bridge port on a host port", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\nsubservices:\n- {name: a, hosts: \"0\", container: {image: \"app:1\", ports: [19092]}}\n- {name: b, hosts: \"0\", container: {image: \"app:1\", network_mode: bridge, ports: [\"19092:9092\"]}}\n"},
			"services/app.yaml:4:83: container b (l.app.1.b.1): host port 19092/tcp is already taken by container a (l.app.1.a.1)"},
		{"two instances on one service key's host do not collide", env + "layers:\n- {name: l, services: [{name: mosquitto, quantity: 2}, {name: mosquitto}]}\n", nil, ""},
		{"the built-in mosquitto on local", "environment: {local: {}}\nlayers:\n- {name: l, services: [{name: Mosquitto}]}\n", nil,
			`layers_services.yaml:3:31: service Mosquitto runs container mosquitto, and the local testbed's hosts, all this machine, run no containers: put it on emulated hosts with their own Docker (--testbed netns) or on real ones (static)`},
		{"local runs the services without containers", "environment: {local: {}, netns: {}}\nlayers:\n- {name: l, services: [{name: web}, {name: mosquitto, environment: netns}]}\n", nil, ""},
		{"archive outside", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {archive: /etc/passwd, image: \"app:1\"}\n"},
			`services/app.yaml:2:22: container app: archive: src "/etc/passwd" is outside ARTIFACTS_DIR`},
		{"archive climbing out", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {archive: ../layers_services.yaml}\n"},
			`services/app.yaml:2:22: container app: archive: src "../layers_services.yaml" is outside ARTIFACTS_DIR`},
		{"archive inside", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {archive: \"{{ artifacts_dir }}/images/app.tar\"}\n"}, ""},
		{"image of a plain service", env + "layers:\n- {name: l, services: [{name: web, image: \"nginx:1.25\"}]}\n", nil,
			`layers_services.yaml:3:43: service web: image: its definition runs no container`},
		{"image of an unknown sub-service", env + "layers:\n- {name: l, services: [{name: kafka, image: {leadr: \"k:1\"}}]}\n", nil,
			`service kafka: image: no sub-service "leadr" runs a container (did you mean "leader"?); expected one of: follower, leader, zookeeper`},
		{"archive of a plain service", env + "layers:\n- {name: l, services: [{name: web, archive: web.tar}]}\n", nil,
			`layers_services.yaml:3:45: service web: archive: its definition runs no container`},
		{"archive of an unknown sub-service", env + "layers:\n- {name: l, services: [{name: kafka, archive: {leadr: k.tar}}]}\n", nil,
			`service kafka: archive: no sub-service "leadr" runs a container (did you mean "leader"?)`},
		{"service archive outside", env + "layers:\n- {name: l, services: [{name: mosquitto, archive: ../m.tar}]}\n", nil,
			`layers_services.yaml:3:51: container mosquitto: archive: src "../m.tar" is outside ARTIFACTS_DIR`},
		{"undefined variable in env", env + "layers:\n- {name: l, services: [{name: app, env: {X: \"{{ nope }}\"}}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {image: \"app:1\"}\n"},
			`layers_services.yaml:3:41: undefined variable "nope" (on host l-app-1-1)`},
		{"templated service image without tag", env + "layers:\n- {name: l, services: [{name: mosquitto, image: \"{{ inventory_hostname }}\"}]}\n", nil,
			`layers_services.yaml:3:49: container mosquitto: image: "l-mosquitto-1-1" has no tag`},
		{"templated image without tag", env + "layers:\n- {name: l, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {image: \"{{ inventory_hostname }}\"}\n"},
			`services/app.yaml:2:20: container app: image: "l-app-1-1" has no tag`},
	}
	for _, tt := range tests {
		_, err := loadDefs(t, tt.layers, tt.defs)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v\nwant %q", tt.name, err, tt.want)
		}
	}
}

func containerOf(p *Plan, key string) *Container {
	for _, h := range p.Hosts {
		for _, c := range h.Containers {
			if c.Key == key {
				return c
			}
		}
	}
	return nil
}

// TestContainerRendering: templates read the key's _self and its
// instance's sub-services, the service's env goes over the definition's,
// and image: replaces the definition's image (and its archive).
func TestContainerRendering(t *testing.T) {
	p, err := loadDefs(t, env+`layers:
- name: cloud
  services:
  - {name: kafka, quantity: 3, env: {KAFKA_BROKER_ID: "{{ 40 + _self.machine_id | int }}", KAFKA_LINGER_MS: 50}, image: {leader: "my/kafka:2.8"}}
  - {name: app, image: "app:2"}
`, map[string]string{"app.yaml": "name: app\ncontainer: {archive: images/app.tar, image: \"app:1\", args: [\"{{ self_container }}\", \"{{ _self.url }}\"]}\n"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key   string
		image string
		env   map[string]string
	}{
		{"cloud.kafka.1.leader.1", "my/kafka:2.8", map[string]string{"KAFKA_BROKER_ID": "41", "KAFKA_LINGER_MS": "50",
			"KAFKA_ZOOKEEPER_CONNECT": "cloud-kafka-1-1:2181", "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://cloud-kafka-1-1:9092", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1"}},
		{"cloud.kafka.1.follower.2", "confluentinc/cp-kafka:6.2.1", map[string]string{"KAFKA_BROKER_ID": "42", "KAFKA_LINGER_MS": "50",
			"KAFKA_ZOOKEEPER_CONNECT": "cloud-kafka-1-1:2181", "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://cloud-kafka-1-3:9092", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1"}},
	}
	for _, tt := range tests {
		c := containerOf(p, tt.key)
		if c == nil || c.Image != tt.image || !reflect.DeepEqual(c.Env, tt.env) {
			t.Errorf("%s: %+v, want image %s and env %v", tt.key, c, tt.image, tt.env)
		}
	}
	// Without the service's broker id, followers number themselves after the leader.
	q, err := loadDefs(t, env+"layers:\n- {name: cloud, services: [{name: kafka, quantity: 3}]}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, id := range map[string]string{"cloud.kafka.1.leader.1": "1", "cloud.kafka.1.follower.1": "2", "cloud.kafka.1.follower.2": "3"} {
		if c := containerOf(q, key); c == nil || c.Env["KAFKA_BROKER_ID"] != id {
			t.Errorf("%s: broker id %v, want %s", key, c, id)
		}
	}
	// The service's archive replaces the definition's image, for one
	// sub-service or all.
	a, err := loadDefs(t, env+"layers:\n- {name: cloud, services: [{name: kafka, archive: {zookeeper: zk.tar}}, {name: mosquitto, archive: \"{{ artifacts_dir }}/m.tar\"}]}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"cloud.kafka.1.zookeeper.1": "/artifacts/zk.tar", "cloud.mosquitto.2.1": "/artifacts/m.tar"} {
		if c := containerOf(a, key); c == nil || c.Image != "" || !strings.HasSuffix(c.Archive, want) {
			t.Errorf("%s: %+v, want no image and archive %s", key, c, want)
		}
	}
	if c := containerOf(a, "cloud.kafka.1.leader.1"); c == nil || c.Image != "confluentinc/cp-kafka:6.2.1" || c.Archive != "" {
		t.Errorf("leader: %+v, want the definition's image", c)
	}
	app := containerOf(p, "cloud.app.2.1")
	if app == nil || app.Image != "app:2" || app.Archive != "" || !reflect.DeepEqual(app.Args, []string{"app", "cloud-app-2-1"}) {
		t.Errorf("app = %+v, want image app:2 (no archive), args [app cloud-app-2-1]", app)
	}
	r, err := loadDefs(t, env+"layers:\n- {name: cloud, services: [{name: app}]}\n", map[string]string{"app.yaml": "name: app\ncontainer: {archive: images/app.tar}\n"})
	if err != nil {
		t.Fatal(err)
	}
	if c := containerOf(r, "cloud.app.1.1"); c == nil || !strings.HasSuffix(c.Archive, "/artifacts/images/app.tar") || !filepath.IsAbs(c.Archive) {
		t.Errorf("archive = %+v, want the file inside ARTIFACTS_DIR", c)
	}
}

func TestContainerSummary(t *testing.T) {
	tests := []struct {
		c    Container
		want string
	}{
		{Container{Name: "leader", Image: "k:1", NetworkMode: "host", Ports: []schema.Port{{Container: 9092, Host: 9092, Protocol: "tcp"}}, Readiness: Readiness{Port: 9092, Timeout: "3m0s"}},
			"leader: k:1, network host, ports 9092/tcp, ready when port 9092 answers within 3m0s"},
		{Container{Name: "a", Archive: "/art/a.tar", NetworkMode: "bridge", Ports: []schema.Port{{Container: 53, Host: 1053, Protocol: "udp"}}, Readiness: Readiness{Command: []string{"test", "-f", "/ok"}, Timeout: "10s"}},
			`a: archive /art/a.tar, network bridge, ports 1053:53/udp, ready when "test -f /ok" exits 0 within 10s`},
		{Container{Name: "tm", Image: "f:1", NetworkMode: "host", Readiness: Readiness{Timeout: "2m0s"}},
			"tm: f:1, network host, ready when running within 2m0s"},
	}
	for _, tt := range tests {
		if got := tt.c.Summary(); got != tt.want {
			t.Errorf("Summary() = %q\nwant %q", got, tt.want)
		}
	}
}

func TestContainerFingerprint(t *testing.T) {
	base := func() *Container {
		return &Container{Name: "leader", Key: "k", Image: "k:1", Env: map[string]string{"A": "1", "B": "2"}, NetworkMode: "host", Readiness: Readiness{Port: 9092, Timeout: "2m0s"}}
	}
	first := base().Fingerprint()
	if again := base().Fingerprint(); again != first || len(first) != 64 {
		t.Fatalf("fingerprints of one container: %s, %s", first, again)
	}
	for name, change := range map[string]func(*Container){
		"image":     func(c *Container) { c.Image = "k:2" },
		"env":       func(c *Container) { c.Env["A"] = "3" },
		"readiness": func(c *Container) { c.Readiness.Timeout = "3m0s" },
		"ports":     func(c *Container) { c.Ports = []schema.Port{{Container: 1, Host: 1, Protocol: "tcp"}} },
	} {
		c := base()
		change(c)
		if c.Fingerprint() == first {
			t.Errorf("a changed %s keeps the fingerprint", name)
		}
	}
	moved := base()
	moved.Pos = "services/app.yaml:9:3"
	if moved.Fingerprint() != first {
		t.Error("a definition moved in its file changes the fingerprint")
	}
}
