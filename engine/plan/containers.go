package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/engine/servicedef"
	"github.com/e2c-dev/e2c/engine/tmpl"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
)

// Container is a container the services step starts on a host for one
// service key, its templates rendered.
type Container struct {
	Name string `json:"name"` // what self_container is on the key's host
	Key  string `json:"key"`  // the service key it serves
	// Stage is its sub-service's position in the definition: the services
	// step has every container of a stage, on every host, ready before it
	// starts one of the next (Kafka's zookeeper, then leader, then
	// followers, whichever hosts they are on).
	Stage   int      `json:"stage,omitempty"`
	Pos     string   `json:"pos"` // where its definition is
	Image   string   `json:"image,omitempty"`
	Archive string   `json:"archive,omitempty"` // the docker save file on this machine, inside ARTIFACTS_DIR
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Env is the definition's variables with the service's env over them.
	Env         map[string]string `json:"env,omitempty"`
	Ports       []schema.Port     `json:"ports,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	NetworkMode string            `json:"network_mode"`
	Readiness   Readiness         `json:"readiness"`

	def *schema.Container // what it was rendered from, for positions
}

// Readiness is when a started container counts as ready: Port accepts a
// TCP connection on its host, or Command exits 0 inside it, or (neither)
// it runs; within Timeout (a Go duration, "2m0s").
type Readiness struct {
	Port    int      `json:"port,omitempty"`
	Command []string `json:"command,omitempty"`
	Timeout string   `json:"timeout"`
}

// Wait is how long the container may take to be ready.
func (r Readiness) Wait() time.Duration {
	d, _ := time.ParseDuration(r.Timeout)
	return d
}

// Fingerprint names everything that makes the container what it is (its
// plan.json entry), so that a container kept from an earlier deploy can be
// told from one whose definition changed since. Where the definition is
// written (Pos) is not part of it: moving a line changes no container.
func (c *Container) Fingerprint() string {
	what := *c
	what.Pos = ""
	data, _ := json.Marshal(&what) // plain data: cannot fail
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// containers renders the container of every service key whose definition
// runs one onto its host, and checks what needs the hosts: two containers
// of one host asking the same host port or the same name.
func (b *builder) containers(instances []Instance, defs servicedef.Registry) {
	subs := map[int]map[string][]any{} // per instance, each sub-service's keys' info
	for _, s := range b.inv.services {
		if subs[s.instance] == nil {
			subs[s.instance] = map[string][]any{}
		}
		if s.sub != "" {
			subs[s.instance][s.sub] = append(subs[s.instance][s.sub], s.Info)
		}
	}
	for i := range instances {
		b.checkImage(&instances[i], defs[instances[i].Name])
	}
	common := b.phaseVars(schema.Deploy)
	for _, s := range b.inv.services {
		def := s.container
		if !def.Runs() {
			continue
		}
		host := b.inv.hosts[s.host]
		in := &instances[s.instance]
		if in.Testbed == "local" {
			// Its hosts are all this machine: one Docker, where the
			// containers of two hosts would take one name and one port.
			b.problem(in.Service.At("name"), fmt.Sprintf("service %s runs container %s, and the local testbed's hosts, all this machine, run no containers: put it on emulated hosts with their own Docker (--testbed netns) or on real ones (static)",
				in.Service.Name, def.Name), "")
			continue
		}
		sc := &scope{b: b, phase: schema.Deploy, common: common, name: host.Name, rendered: map[string]any{},
			host: HostVar{"_self": s.Info, "self_container": def.Name, "subservices": subs[s.instance]}}
		host.Containers = append(host.Containers, b.container(s, in, def, sc))
	}
	// By name: a machine given to two instances is two hosts of the plan.
	var names []string
	onHost := map[string][]*Container{}
	for _, h := range b.inv.hosts {
		if _, ok := onHost[h.Name]; !ok {
			names = append(names, h.Name)
		}
		onHost[h.Name] = append(onHost[h.Name], h.Containers...)
	}
	for _, name := range names {
		b.checkHost(name, onHost[name])
	}
}

// container renders one container of service key s.
func (b *builder) container(s *Service, in *Instance, def *schema.Container, sc *scope) *Container {
	text := func(v any, key string) string { return pyText(b.render(v, def.At(key), sc)) }
	list := func(vs []string, key string) []string {
		var out []string
		for _, v := range vs {
			out = append(out, text(v, key))
		}
		return out
	}
	c := &Container{def: def, Name: def.Name, Key: s.Key, Stage: s.stage, Pos: def.Pos.String(),
		Command: list(def.Command, "command"), Args: list(def.Args, "args"), Volumes: list(def.Volumes, "volumes"),
		Ports: def.Ports, NetworkMode: def.NetworkMode,
		Readiness: Readiness{Port: def.Readiness.Port, Command: list(def.Readiness.Command, "readiness"), Timeout: def.Readiness.Timeout.String()}}
	// The service's image or archive replaces the definition's image and
	// archive.
	pick := func(m map[string]string) (string, bool) {
		v, ok := m[s.sub]
		if !ok {
			v, ok = m[""]
		}
		return v, ok
	}
	image := func(v string, at schema.Pos) string {
		out := pyText(b.render(v, at, sc))
		if tmpl.Has(v) { // a template's value is checked here; the text as written, by schema
			if err := schema.CheckImage(out); err != nil {
				b.problem(at, fmt.Sprintf("container %s: image: %v", def.Name, err), sc.name)
			}
		}
		return out
	}
	archive := func(v string, at schema.Pos) string {
		path, err := b.plan.Source("archive", pyText(b.render(v, at, sc)))
		if err != nil {
			b.problem(at, fmt.Sprintf("container %s: archive: %v", def.Name, err), sc.name)
		}
		return path
	}
	if img, ok := pick(in.Service.Image); ok {
		c.Image = image(img, in.Service.At("image"))
	} else if arc, ok := pick(in.Service.Archive); ok {
		c.Archive = archive(arc, in.Service.At("archive"))
	} else {
		c.Image = image(def.Image, def.At("image"))
		if def.Archive != "" {
			c.Archive = archive(def.Archive, def.At("archive"))
		}
	}
	c.Env = environment(def.Env, func(v any) any { return b.render(v, def.At("env"), sc) })
	own := environment(in.Service.Env, func(v any) any { return b.render(v, in.Service.At("env"), sc) })
	if len(own) > 0 && c.Env == nil {
		c.Env = map[string]string{}
	}
	maps.Copy(c.Env, own)
	return c
}

// checkImage refuses an image: or archive: in layers_services.yaml that
// replaces nothing: the service's definition runs no container, or none of
// the named sub-service.
func (b *builder) checkImage(in *Instance, def *schema.ServiceDef) {
	runs := map[string]bool{}
	if def != nil {
		for _, sub := range def.Subservices {
			runs[sub.Name] = sub.Info.Container.Runs()
		}
		if len(def.Subservices) == 0 {
			runs[""] = def.Info.Container.Runs()
		}
	}
	maps.DeleteFunc(runs, func(_ string, v bool) bool { return !v })
	names := slices.Sorted(maps.Keys(runs))
	for _, key := range []string{"image", "archive"} {
		m, at := in.Service.Image, in.Service.At(key)
		if key == "archive" {
			m = in.Service.Archive
		}
		if len(m) > 0 && len(runs) == 0 {
			b.problem(at, fmt.Sprintf("service %s: %s: its definition runs no container (only flink, kafka, mosquitto and definitions in services/ with a container image do)", in.Service.Name, key), "")
			continue
		}
		for sub := range m {
			if sub != "" && !runs[sub] {
				b.problem(at, fmt.Sprintf("service %s: %s: no sub-service %q runs a container%s; expected one of: %s",
					in.Service.Name, key, sub, suggest.Hint(sub, names), strings.Join(names, ", ")), "")
			}
		}
	}
}

// checkHost refuses two containers of a host that take the same host
// port or the same name.
func (b *builder) checkHost(host string, containers []*Container) {
	type hostPort struct {
		port  int
		proto string
	}
	ports := map[hostPort]*Container{}
	names := map[string]*Container{}
	for _, c := range containers {
		def := c.def
		if first := names[c.Name]; first != nil {
			b.problem(def.Pos, fmt.Sprintf("container %s (%s): the name is already taken by the container of %s on this host", c.Name, c.Key, first.Key), host)
		}
		names[c.Name] = c
		if c.NetworkMode == "none" {
			continue
		}
		for i, p := range c.Ports {
			hp := hostPort{p.Host, p.Protocol}
			if first := ports[hp]; first != nil && first != c {
				b.problem(def.Ports[i].Pos, fmt.Sprintf("container %s (%s): host port %d/%s is already taken by container %s (%s) on this host",
					c.Name, c.Key, p.Host, p.Protocol, first.Name, first.Key), host)
			}
			ports[hp] = c
		}
	}
}

// ContainerCount is the number of containers the plan starts.
func (p *Plan) ContainerCount() int {
	n := 0
	for _, h := range p.Hosts {
		n += len(h.Containers)
	}
	return n
}
