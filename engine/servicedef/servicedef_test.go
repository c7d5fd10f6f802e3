package servicedef

import (
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/schema"
)

// TestBuiltin checks the layout the CCTV workflow relies on: sub-services
// and container names, images, ports, and where the service's env goes.
func TestBuiltin(t *testing.T) {
	r := New(nil)
	if got := r.Names(); !reflect.DeepEqual(got, []string{"flink", "kafka", "mosquitto"}) {
		t.Fatalf("names = %v", got)
	}
	type want struct {
		image     string
		ports     []int
		readiness int
	}
	tests := []struct {
		service, sub string
		want         want
	}{
		{"flink", "job_manager", want{"flink:1.20.4-scala_2.12-java11", []int{6123, 6124, 8081}, 8081}},
		{"flink", "task_manager", want{"flink:1.20.4-scala_2.12-java11", nil, 0}},
		{"kafka", "zookeeper", want{"confluentinc/cp-zookeeper:6.2.1", []int{2181}, 0}}, // a srvr command, below
		{"kafka", "leader", want{"confluentinc/cp-kafka:6.2.1", []int{9092}, 9092}},
		{"kafka", "follower", want{"confluentinc/cp-kafka:6.2.1", []int{9092}, 9092}},
		{"mosquitto", "", want{"eclipse-mosquitto:2.0.18", []int{1883}, 1883}},
	}
	for _, tt := range tests {
		def := r[tt.service]
		c := def.Info.Container
		for _, sub := range def.Subservices {
			if sub.Name == tt.sub {
				c = sub.Info.Container
			}
		}
		name := tt.sub
		if name == "" {
			name = tt.service
		}
		if c == nil || !c.Runs() {
			t.Errorf("%s %s: no container that runs: %+v", tt.service, tt.sub, c)
			continue
		}
		var ports []int
		for _, p := range c.Ports {
			ports = append(ports, p.Host)
		}
		got := want{c.Image, ports, c.Readiness.Port}
		if c.Name != name || c.NetworkMode != "host" || !reflect.DeepEqual(got, tt.want) || c.Readiness.Timeout == 0 {
			t.Errorf("%s %s: name %q, network %q, %+v (timeout %v), want %q, host, %+v", tt.service, tt.sub, c.Name, c.NetworkMode, got, c.Readiness.Timeout, name, tt.want)
		}
		if tt.sub == "zookeeper" && !strings.Contains(strings.Join(c.Readiness.Command, " "), "echo srvr") {
			t.Errorf("kafka zookeeper: readiness %v, want it to ask srvr (its port opens before it serves)", c.Readiness.Command)
		}
		if err := schema.CheckImage(c.Image); err != nil {
			t.Errorf("%s %s: %v", tt.service, tt.sub, err)
		}
	}
}

func TestScenarioOverrides(t *testing.T) {
	own, err := schema.DecodeServiceDef("services/flink.yaml", []byte("name: Flink\nport: 9999\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := New([]*schema.ServiceDef{own})
	if r["flink"].Info.Port != 9999 || len(r["flink"].Subservices) != 0 {
		t.Errorf("flink = %+v, want the scenario's own definition", r["flink"])
	}
}
