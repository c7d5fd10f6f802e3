package plan

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/servicedef"
)

// bigScenario has 10,000 service instances (100 cloud sinks, 1,900 fog
// gateways, 8,000 edge producers) and plays with 3 depends_on entries each.
const bigLayers = env + `layers:
- name: cloud
  services: [{name: sink, repeat: 99}]
- name: fog
  services: [{name: gw, repeat: 1899, roles: [monitoring]}]
- name: edge
  services: [{name: producer, repeat: 7999}]
`

const bigWorkflow = `
- hosts: edge.producer.*
  depends_on:
  - {service_selector: fog.gw.*, grouping: round_robin, prefix: gw}
  - {service_selector: cloud.sink.*, grouping: asarray, array_info: hostname, prefix: sinks}
  - {service_selector: "cloud.sink.[1-9].*", grouping: aggregate, prefix: sink}
  prepare:
  - copy: {src: "{{ working_dir }}/bin/", dest: /opt/bin/}
  launch:
  - shell: "producer --to {{ gw.url }} --sinks {{ sinks|join(',') }} --first {{ sink1_1.url }} --id {{ _self._id }}"
    async: 600
    poll: 0
  finalize:
  - fetch: {src: "/opt/metrics-{{ item }}", dest: "{{ working_dir }}/producers/"}
    loop: "{{ range(1, 3)|list }}"
- hosts: fog.gw.*
  depends_on:
  - {service_selector: fog.gw.*, grouping: address_match, prefix: me}
  - {service_selector: cloud.sink.*, grouping: round_robin, prefix: sink}
  - {service_selector: "monitoring:&fog.gw.1*", grouping: asarray, array_info: hostname, prefix: peers}
  launch:
  - shell: "gateway --listen {{ me.url }} --sink {{ sink.url }} --peers {{ peers|length }}"
- hosts: cloud.*
  depends_on:
  - {service_selector: fog.*, grouping: round_robin, prefix: gw}
  - {service_selector: edge.producer.1.*, grouping: address_match, prefix: none}
  - {service_selector: "cloud:!cloud.sink.1.*", grouping: asarray, array_info: hostname, prefix: others}
  launch:
  - debug: {msg: "sink {{ _self.url }} first gateway {{ gw.url }} of {{ others|length }}"}
`

// BenchmarkBuild10k plans 10,000 service instances. Besides time and
// allocations it reports heap-MB: the live heap once the plan is built
// (a lower bound of the process's peak memory for planning).
func BenchmarkBuild10k(b *testing.B) {
	sc := load(b, bigLayers, bigWorkflow, "networks:\n- {src: fog, dst: edge, delay: 50ms, rate: 150mbit}\n")
	defs := servicedef.New(nil)
	machines := Synthetic(Expand(sc.LayersServices))
	opt := Options{ScenarioDir: "/s", ArtifactsDir: "/a", RunDir: "/r", RepeatCount: 1}
	b.ReportAllocs()
	var p *Plan
	for b.Loop() {
		var err error
		if p, err = Build(sc, defs, machines, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(p.Services) != 10000 || len(p.Plays[0].Phases["finalize"][7999].Tasks[0].Items) != 2 {
		b.Fatalf("plan has %d services", len(p.Services))
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "heap-MB")
	runtime.KeepAlive(p)
}

// BenchmarkTemplateFile10k plans a template task on 10,000 hosts whose
// 12 KB file reads host variables: validate checks the file on every host.
func BenchmarkTemplateFile10k(b *testing.B) {
	artifacts := b.TempDir()
	text := strings.Repeat("line {{ inventory_hostname }} {{ _self.url }} {% for i in range(3) %}{{ i }}{% endfor %}\n", 150)
	if err := os.WriteFile(filepath.Join(artifacts, "app.j2"), []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	sc := load(b, env+"layers: [{name: edge, services: [{name: node, quantity: 10000}]}]\n",
		"- hosts: all\n  launch: [{template: {src: app.j2, dest: /etc/app}}]\n", "")
	defs, machines := servicedef.New(nil), Synthetic(Expand(sc.LayersServices))
	opt := Options{ScenarioDir: "/s", ArtifactsDir: artifacts, RunDir: "/r", RepeatCount: 1}
	for b.Loop() {
		if _, err := Build(sc, defs, machines, opt); err != nil {
			b.Fatal(err)
		}
	}
}
