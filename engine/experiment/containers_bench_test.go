package experiment

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/containers/dockerdtest"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers/netns"
)

// BenchmarkContainerStack measures the services step of a Mosquitto and
// ZooKeeper stack (the test images, from archives in ARTIFACTS_DIR) on 2,
// 4 and 8 emulated hosts, each with its own dockerd and both containers:
// cold (fresh daemons, every image sent) and warm (the images present,
// the containers removed, so both start anew), and the bytes sent to each
// host. Run with: go test -run '^$' -bench ContainerStack -benchtime 1x
// ./engine/experiment (root; about 3 minutes).
func BenchmarkContainerStack(b *testing.B) {
	if err := netns.Preflight(); err != nil {
		b.Skip(err)
	}
	if err := netns.CheckDocker(); err != nil {
		b.Skip(err) // the emulated hosts' dockerd
	}
	mosquitto, _ := dockerdtest.Image(b, "mosquitto")
	zk, _ := dockerdtest.Image(b, "zookeeper")
	for _, n := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for range b.N {
				cold, warm, perHost := stackOnce(b, n, mosquitto, zk)
				b.ReportMetric(cold, "cold-s")
				b.ReportMetric(warm, "warm-s")
				b.ReportMetric(perHost/1e6, "MB/host")
			}
		})
	}
}

// sentRE is a services progress line's total at a host done.
var sentRE = regexp.MustCompile(`services: image (\S+): (\d+) bytes sent, (\d+) of (\d+) hosts done`)

func stackOnce(b *testing.B, n int, mosquitto, zk string) (cold, warm, perHost float64) {
	root := b.TempDir()
	dir, artifacts := filepath.Join(root, "scenario"), filepath.Join(root, "artifacts")
	os.MkdirAll(artifacts, 0o755)
	dockerdtest.PlaceImage(b, mosquitto, filepath.Join(artifacts, "mosquitto.tar"))
	dockerdtest.PlaceImage(b, zk, filepath.Join(artifacts, "zookeeper.tar"))
	writeTestFiles(b, map[string]string{
		filepath.Join(dir, "layers_services.yaml"): fmt.Sprintf(`environment:
  job_name: e2c-bench-stack-%d
  netns: {subnet: 10.237.70.0/24}
layers:
- name: fog
  services: [{name: stack, quantity: %d}]
`, os.Getpid(), n),
		filepath.Join(dir, "services", "stack.yaml"): `name: stack
subservices:
- {name: broker, hosts: ":", container: {archive: mosquitto.tar, ports: [1883]}}
- {name: zookeeper, hosts: ":", container: {archive: zookeeper.tar, ports: [2181]}}
`,
		filepath.Join(dir, "workflow.yaml"): "[]\n",
	})
	defer destroy(context.Background(), dir, &strings.Builder{})
	ctx := context.Background()
	step := func() (float64, string) {
		var out strings.Builder
		run, err := layersServices(ctx, Options{ScenarioDir: dir, ArtifactsDir: artifacts, Out: &out})
		if err != nil {
			b.Fatalf("layers-services: %v\n%s", err, out.String())
		}
		rec, err := readRecord(run)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range rec.Steps {
			if s.Name == "services" && s.End != nil {
				return s.End.Sub(s.Start).Seconds(), out.String()
			}
		}
		b.Fatalf("no services step in %s", run)
		return 0, ""
	}
	cold, out := step()
	total := 0.0
	for _, m := range sentRE.FindAllStringSubmatch(out, -1) {
		if m[3] == m[4] { // the image's last host done: its total
			v, _ := strconv.ParseFloat(m[2], 64)
			total += v
		}
	}
	// The containers go, the images stay.
	st, err := LoadState(dir)
	if err != nil {
		b.Fatal(err)
	}
	pool := transport.NewPool(transport.PoolOptions{})
	defer pool.Close()
	var said strings.Builder
	removeAllContainers(ctx, st, dir, pool, &said)
	if !strings.Contains(said.String(), "removed 2 containers") {
		b.Fatalf("removing the containers: %s", said.String())
	}
	warm, out = step()
	if strings.Contains(out, "bytes sent") {
		b.Fatalf("the warm step sent an image:\n%s", out)
	}
	return cold, warm, total / float64(n)
}
