package servicedef

import (
	"reflect"
	"testing"

	"github.com/e2c-dev/e2c/schema"
)

func TestBuiltin(t *testing.T) {
	r := New(nil)
	if got := r.Names(); !reflect.DeepEqual(got, []string{"flink", "kafka", "mosquitto"}) {
		t.Fatalf("names = %v", got)
	}
	flink := r["flink"]
	if len(flink.Subservices) != 2 || flink.Subservices[0].Name != "job_manager" || flink.Subservices[0].Info.Container != "job_manager" {
		t.Errorf("flink = %+v", flink)
	}
	if r["mosquitto"].Info.Port != 1883 {
		t.Errorf("mosquitto port = %d", r["mosquitto"].Info.Port)
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
