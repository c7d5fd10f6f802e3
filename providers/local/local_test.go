package local

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/schema"
)

func TestReserveRelease(t *testing.T) {
	p, err := providers.Get("local")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	req := providers.Request{StateDir: state, Instances: []plan.Instance{
		{Layer: "fog", Name: "gw", Index: 1, Service: &schema.Service{Quantity: 2}},
		{Layer: "edge", Name: "producer", Index: 1, Service: &schema.Service{Quantity: 1}},
	}}
	r, err := p.Reserve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Hosts) != 2 || len(r.Hosts[0]) != 2 || len(r.Hosts[1]) != 1 {
		t.Fatalf("hosts = %+v", r.Hosts)
	}
	want := []struct{ name, addr string }{{"fog-gw-1-1", "127.0.1.1"}, {"fog-gw-1-2", "127.0.1.2"}, {"edge-producer-1-1", "127.0.1.3"}}
	got := append(append([]providers.Host{}, r.Hosts[0]...), r.Hosts[1]...)
	for i, w := range want {
		h := got[i]
		if h.Name != w.name || h.Address != w.addr || h.SSH != nil || h.WorkDir != filepath.Join(state, "hosts", w.name) {
			t.Errorf("host %d = %+v, want %s at %s", i, h, w.name, w.addr)
		}
		if st, err := os.Stat(h.WorkDir); err != nil || !st.IsDir() {
			t.Errorf("work dir %s: %v", h.WorkDir, err)
		}
	}
	// Released from a copy decoded from JSON, as another process would.
	data, _ := json.Marshal(r)
	var saved providers.Reservation
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(context.Background(), &saved, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got[0].WorkDir); !os.IsNotExist(err) {
		t.Errorf("work dir still there: %v", err)
	}
	if err := p.Release(context.Background(), &saved, io.Discard); err != nil {
		t.Errorf("second release: %v", err)
	}
}

func TestReleaseRefusesOtherFolders(t *testing.T) {
	p, _ := providers.Get("local")
	dir := t.TempDir()
	r := &providers.Reservation{Provider: "local", State: json.RawMessage(`{"dirs":["` + dir + `"]}`)}
	if err := p.Release(context.Background(), r, io.Discard); err == nil {
		t.Fatal("released a folder that is not a host working area")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("folder removed: %v", err)
	}
}

func TestUnknownSetting(t *testing.T) {
	p, _ := providers.Get("local")
	_, err := p.Reserve(context.Background(), providers.Request{StateDir: t.TempDir(), Settings: block(t, "job_nme: x")})
	want := `layers_services.yaml:1:1: local: unknown key "job_nme" (did you mean "job_name"?); expected one of: job_name`
	if err == nil || err.Error() != want {
		t.Fatalf("unknown setting: %v, want %s", err, want)
	}
}

// block is a local block of layers_services.yaml written as text.
func block(t *testing.T, text string) *schema.Testbed {
	t.Helper()
	tb, err := schema.TestbedBlock("layers_services.yaml", "local", text)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}
