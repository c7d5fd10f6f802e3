package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestContainerErrors(t *testing.T) {
	const sub = "name: x\nsubservices:\n- name: a\n  container:\n    image: busybox:1.36\n"
	tests := []struct{ name, yaml, want string }{
		{"unknown field", sub + "    imgae: y\n", `x.yaml:6:5: container: unknown key "imgae" (did you mean "image"?)`},
		{"unknown readiness field", sub + "    readiness: {prot: 80}\n", `x.yaml:6:17: container.readiness: unknown key "prot" (did you mean "port"?)`},
		{"no tag", "name: x\ncontainer: {image: flink}\n", `x.yaml:2:20: container.image: "flink" has no tag: expected name:tag such as flink:1.0`},
		{"no tag, registry port", "name: x\ncontainer: {image: \"reg:5000/flink\"}\n", `x.yaml:2:20: container.image: "reg:5000/flink" has no tag`},
		{"bad reference", "name: x\ncontainer: {image: \"Flink:1\"}\n", `x.yaml:2:20: container.image: "Flink:1" is not an image reference`},
		{"readiness port too big", sub + "    readiness: {port: 70000}\n", "x.yaml:6:23: container.readiness.port: found 70000, expected a whole number from 1 to 65535"},
		{"readiness port zero", sub + "    readiness: {port: 0}\n", "x.yaml:6:23: container.readiness.port: found 0, expected a whole number from 1 to 65535"},
		{"readiness both", sub + "    readiness: {port: 80, command: [true]}\n", "x.yaml:6:36: container.readiness: both port and command are given"},
		{"readiness timeout", sub + "    readiness: {timeout: soon}\n", `x.yaml:6:26: container.readiness.timeout: found "soon", expected seconds (90)`},
		{"port range", sub + "    ports: [80, 65536]\n", `x.yaml:6:17: container.ports: found "65536", expected a port from 1 to 65535`},
		{"port protocol", sub + "    ports: [\"80/sctp\"]\n", `x.yaml:6:13: container.ports: "80/sctp": unknown protocol "sctp"`},
		{"mapped port on host network", sub + "    ports: [\"8080:80\"]\n", "x.yaml:6:13: container a: port 8080:80 maps a port, but under host networking"},
		{"network mode", sub + "    network_mode: hots\n", `x.yaml:6:19: container.network_mode: unknown value "hots" (did you mean "host"?)`},
		{"volume", sub + "    volumes: [/data]\n", `x.yaml:6:15: container.volumes: found "/data", expected SOURCE:/path/in/container[:ro]`},
		{"volume mode", sub + "    volumes: [\"/d:/data:rx\"]\n", `x.yaml:6:15: container.volumes: found "/d:/data:rx"`},
		{"relative volume source", sub + "    volumes: [\"./data:/data\"]\n", `x.yaml:6:15: container.volumes: found "./data:/data", expected SOURCE:/path/in/container[:ro], SOURCE an absolute host path or a volume name`},
		{"ports without network", sub + "    network_mode: none\n    ports: [80]\n", "x.yaml:6:19: container a: network_mode none has no network, so no ports"},
		{"no image", "name: x\ncontainer: {name: y, ports: [80]}\n", "x.yaml:2:12: container y: no image or archive, expected image: name:tag"},
		{"name", "name: x\ncontainer: {name: \"-y\", image: \"a:1\"}\n", `x.yaml:2:19: container.name: "-y" is not a container name`},
		{"env value", sub + "    env: {A: [1]}\n", "x.yaml:6:14: container.env.A: found a list, expected a single value"},
	}
	for _, tt := range tests {
		_, err := DecodeServiceDef("x.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: DecodeServiceDef(%q) = %v, want %q", tt.name, tt.yaml, err, tt.want)
		}
	}
}

// TestContainerMerge: a sub-service's container is its service's with its
// own fields over it, and defaults filled.
func TestContainerMerge(t *testing.T) {
	def, err := DecodeServiceDef("x.yaml", []byte(`name: svc
container:
  image: base:1
  volumes: ["/srv/data:/data:ro", "cache:/cache", "/srv/{{ inventory_hostname }}:/conf"]
  env: {A: "1", B: "2"}
  ports: [7000]
subservices:
  - name: one
    container: {env: {B: "3"}, args: [run]}
  - name: two
    container: {name: second, image: "reg.example:5000/other@sha256:`+strings.Repeat("a", 64)+`", ports: ["9000/udp"], readiness: {command: [ok], timeout: 2m}}
  - name: three
    container: only-a-name
`))
	if err != nil {
		t.Fatal(err)
	}
	one, two, three := def.Subservices[0].Info.Container, def.Subservices[1].Info.Container, def.Subservices[2].Info.Container
	if one.Name != "one" || one.Image != "base:1" || !reflect.DeepEqual(one.Env, map[string]any{"A": "1", "B": "3"}) ||
		!reflect.DeepEqual(one.Args, []string{"run"}) || one.NetworkMode != "host" || one.Readiness.Port != 7000 || one.Readiness.Timeout != DefaultReadinessTimeout {
		t.Errorf("one = %+v", one)
	}
	if two.Name != "second" || len(two.Ports) != 1 || two.Ports[0].Protocol != "udp" || two.Readiness.Port != 0 ||
		!reflect.DeepEqual(two.Readiness.Command, []string{"ok"}) || two.Readiness.Timeout != 2*time.Minute {
		t.Errorf("two = %+v", two)
	}
	// A name alone over a service's image still runs that image, named so.
	if three.Name != "only-a-name" || three.Image != "base:1" || !three.Runs() {
		t.Errorf("three = %+v", three)
	}
	if def.Info.Container.Name != "" {
		t.Errorf("the service's own container was changed: %+v", def.Info.Container)
	}
	alone, err := DecodeServiceDef("x.yaml", []byte("name: mine\ncontainer: mine_ctr\n"))
	if err != nil || alone.Info.Container.Name != "mine_ctr" || alone.Info.Container.Runs() {
		t.Errorf("a name alone = %+v, %v", alone.Info.Container, err)
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in   string
		want Port
	}{
		{"80", Port{Container: 80, Host: 80, Protocol: "tcp"}},
		{"8080:80", Port{Container: 80, Host: 8080, Protocol: "tcp"}},
		{"53/udp", Port{Container: 53, Host: 53, Protocol: "udp"}},
		{"1053:53/udp", Port{Container: 53, Host: 1053, Protocol: "udp"}},
	}
	for _, tt := range tests {
		if got, err := ParsePort(tt.in); err != nil || got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "x", "1:", ":1", "80/tcp/udp", "70000:1"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) accepted", bad)
		}
	}
}

func TestServiceImage(t *testing.T) {
	const head = "environment: {local: {}}\nlayers:\n- name: l\n  services:\n  - name: kafka\n"
	tests := []struct {
		yaml    string
		want    map[string]string
		archive map[string]string
		err     string
	}{
		{head + "    image: my/kafka:2.8\n", map[string]string{"": "my/kafka:2.8"}, nil, ""},
		{head + "    image: {Leader: my/kafka:2.8, zookeeper: zookeeper:3.6.4}\n", map[string]string{"leader": "my/kafka:2.8", "zookeeper": "zookeeper:3.6.4"}, nil, ""},
		{head + "    image: my/kafka\n", nil, nil, `layers.yaml:6:12: service.image: "my/kafka" has no tag`},
		{head + "    image: {leader: kafka}\n", nil, nil, `layers.yaml:6:21: service.image.leader: "kafka" has no tag`},
		{head + "    image: [a:1]\n", nil, nil, "layers.yaml:6:12: service.image: found a list, expected an image (name:tag) or a mapping"},
		{head + "    imag: a:1\n", nil, nil, `layers.yaml:6:5: service: unknown key "imag" (did you mean "image"?)`},
		{head + "    archive: kafka.tar\n", nil, map[string]string{"": "kafka.tar"}, ""},
		{head + "    image: {zookeeper: zookeeper:3.6.4}\n    archive: {Leader: kafka.tar}\n", map[string]string{"zookeeper": "zookeeper:3.6.4"}, map[string]string{"leader": "kafka.tar"}, ""},
		{head + "    image: my/kafka:2.8\n    archive: {leader: kafka.tar}\n", nil, nil, "layers.yaml:7:14: service kafka: image and archive both replace the image of the same containers: keep one"},
		{head + "    image: {leader: my/kafka:2.8}\n    archive: {leader: kafka.tar}\n", nil, nil, "layers.yaml:7:14: service kafka: image and archive both replace"},
		{head + "    archive: [a.tar]\n", nil, nil, "layers.yaml:6:14: service.archive: found a list, expected an archive (a docker save file in ARTIFACTS_DIR) or a mapping"},
	}
	for _, tt := range tests {
		ls, err := DecodeLayersServices("layers.yaml", []byte(tt.yaml))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.yaml, err)
			continue
		}
		if got := ls.Layers[0].Services[0].Image; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: image = %v, want %v", tt.yaml, got, tt.want)
		}
		if got := ls.Layers[0].Services[0].Archive; !reflect.DeepEqual(got, tt.archive) {
			t.Errorf("%q: archive = %v, want %v", tt.yaml, got, tt.archive)
		}
	}
}
