package schema

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Container is what a service definition runs on each host of a
// sub-service (or of the whole service): one Docker container, named
// after the sub-service unless Name says otherwise, as E2Clab's plugins
// name theirs (job_manager, task_manager, zookeeper, leader). A container
// without Image or Archive is only a name, exposed as self_container, for
// a container the definition's deploy tasks start themselves.
type Container struct {
	Node
	Name    string
	Image   string   // name:tag or name@sha256:digest
	Archive string   // a file made with docker save, inside ARTIFACTS_DIR; may hold templates
	Command []string // replaces the image's entrypoint
	Args    []string // replaces the image's command
	// Env holds the definition's variables; the service's env in
	// layers_services.yaml is added over them. Values may hold templates.
	Env         map[string]any
	Ports       []Port
	Volumes     []string // Docker's -v: SOURCE:TARGET[:ro|rw], SOURCE a host path or a volume name
	NetworkMode string   // host (the default, as E2Clab), bridge or none
	Readiness   Readiness
}

// Runs reports whether e2c starts the container (it has an image).
func (c *Container) Runs() bool { return c != nil && (c.Image != "" || c.Archive != "") }

// Port is a port a container listens on, and the host port it takes:
// the same one under host networking.
type Port struct {
	Pos       Pos    `json:"-"`
	Container int    `json:"container"`
	Host      int    `json:"host"`
	Protocol  string `json:"protocol"` // tcp or udp
}

// Readiness says when a started container is ready: when Port accepts a
// TCP connection on the host, or when Command exits 0 inside the
// container, or (neither) as soon as it runs; within Timeout.
type Readiness struct {
	Node
	Port    int
	Command []string
	Timeout time.Duration
}

// DefaultReadinessTimeout is how long a container may take to be ready
// when its definition does not say (EnOSlib waits as long for its registry).
const DefaultReadinessTimeout = 120 * time.Second

// NetworkModes are the network modes a container may ask for.
var NetworkModes = []string{"host", "bridge", "none"}

var (
	containerKeys = []string{"name", "image", "archive", "command", "args", "env", "ports", "volumes", "network_mode", "readiness"}
	readinessKeys = []string{"port", "command", "timeout"}
	// imageRE is a Docker reference with a tag or a digest: [registry/]path:tag or path@sha256:hex.
	imageRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$`)
	nameOK  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) // Docker's container names
)

// CheckImage checks an image reference: it must name a tag or a digest,
// so that every run and every host runs the same image.
func CheckImage(s string) error {
	if imageRE.MatchString(s) {
		return nil
	}
	last := s[strings.LastIndex(s, "/")+1:]
	if !strings.ContainsAny(last, ":@") {
		return fmt.Errorf("%q has no tag: expected name:tag such as %s:1.0 (without one Docker takes latest, which changes under you)", s, s)
	}
	return fmt.Errorf("%q is not an image reference: expected [registry/]name:tag or name@sha256:digest, in lower case", s)
}

// container reads a sub-service's (or a service's) container: a mapping,
// or a name alone.
func (d *decoder) container(n *yaml.Node) *Container {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode {
		return &Container{Node: Node{Pos: d.pos(n), keys: map[string]Pos{"name": d.pos(n)}}, Name: d.containerName(n)}
	}
	fs, node := d.fields(n, "container", containerKeys)
	c := &Container{Node: node}
	for _, f := range fs {
		key := "container." + f.key
		switch f.key {
		case "name":
			c.Name = d.containerName(f.v)
		case "image":
			c.Image = d.image(f.v, key)
		case "archive":
			c.Archive = d.str(f.v, key)
		case "command":
			c.Command = d.strings(f.v, key)
		case "args":
			c.Args = d.strings(f.v, key)
		case "env":
			c.Env = d.envVars(f.v, key)
		case "ports":
			c.Ports = d.ports(f.v)
		case "volumes":
			c.Volumes = d.volumes(f.v)
		case "network_mode":
			c.NetworkMode = d.oneOf(f.v, key, NetworkModes)
		case "readiness":
			c.Readiness = d.readiness(f.v)
		}
	}
	return c
}

func (d *decoder) containerName(n *yaml.Node) string {
	s := d.str(n, "container.name")
	if s != "" && !nameOK.MatchString(s) {
		d.errorf(n, "container.name: %q is not a container name: letters, digits, '_', '.' and '-', starting with a letter or digit", s)
	}
	return s
}

func (d *decoder) image(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s == "" || strings.Contains(s, "{{") {
		return s
	}
	if err := CheckImage(s); err != nil {
		d.errorf(n, "%s: %v", what, err)
	}
	return s
}

// ports reads a list of ports, each a number (the same port on the host)
// or Docker's "HOST:CONTAINER", with /tcp or /udp.
func (d *decoder) ports(n *yaml.Node) []Port {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "container.ports: found %s, expected a list such as [8081, \"6123/tcp\"]", describe(n))
		return nil
	}
	var out []Port
	for _, c := range n.Content {
		c = resolve(c)
		text := d.str(c, "container.ports")
		p, err := ParsePort(text)
		if err != nil {
			d.errorf(c, "container.ports: %v", err)
			continue
		}
		p.Pos = d.pos(c)
		out = append(out, p)
	}
	return out
}

// ParsePort reads "PORT", "HOST:CONTAINER", each with an optional
// /tcp or /udp (tcp by default).
func ParsePort(s string) (Port, error) {
	p := Port{Protocol: "tcp"}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return p, fmt.Errorf("%q: unknown protocol %q, expected tcp or udp", s, proto)
		}
		p.Protocol = proto
	}
	num := func(t string) (int, bool) {
		v, err := strconv.Atoi(t)
		return v, err == nil && v >= 1 && v <= 65535
	}
	host, ctr, pair := strings.Cut(spec, ":")
	var ok1, ok2 bool
	if pair {
		p.Host, ok1 = num(host)
		p.Container, ok2 = num(ctr)
	} else {
		p.Container, ok1 = num(spec)
		p.Host, ok2 = p.Container, ok1
	}
	if !ok1 || !ok2 {
		return p, fmt.Errorf("found %q, expected a port from 1 to 65535 or HOST:CONTAINER (such as 9092 or \"19092:9092/tcp\")", s)
	}
	return p, nil
}

func (d *decoder) volumes(n *yaml.Node) []string {
	vs := d.strings(n, "container.volumes")
	items := []*yaml.Node{resolve(n)}
	if items[0].Kind == yaml.SequenceNode {
		items = items[0].Content
	}
	for i, v := range vs {
		parts := strings.Split(v, ":")
		src := parts[0]
		ok := (len(parts) == 2 || len(parts) == 3) && strings.HasPrefix(parts[1], "/") &&
			(strings.HasPrefix(src, "/") || nameOK.MatchString(src) || strings.HasPrefix(src, "{{"))
		if ok && len(parts) == 3 {
			ok = parts[2] == "ro" || parts[2] == "rw"
		}
		if !ok && i < len(items) {
			d.errorf(resolve(items[i]), "container.volumes: found %q, expected SOURCE:/path/in/container[:ro], SOURCE an absolute host path or a volume name", v)
		}
	}
	return vs
}

func (d *decoder) readiness(n *yaml.Node) Readiness {
	fs, node := d.fields(n, "container.readiness", readinessKeys)
	r := Readiness{Node: node}
	for _, f := range fs {
		key := "container.readiness." + f.key
		switch f.key {
		case "port":
			r.Port = d.integer(f.v, key, 1, 65535)
		case "command":
			r.Command = d.strings(f.v, key)
		case "timeout":
			r.Timeout = d.duration(f.v, key)
		}
	}
	if node.Has("port") && node.Has("command") {
		d.errs.At(node.At("command"), "container.readiness: both port and command are given: keep one")
	}
	return r
}

// duration reads seconds (90) or a Go duration ("90s", "2m").
func (d *decoder) duration(n *yaml.Node, what string) time.Duration {
	s := d.str(n, what)
	if s == "" {
		return 0
	}
	if secs, err := strconv.Atoi(s); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		d.errorf(n, "%s: found %q, expected seconds (90) or a duration such as \"90s\" or \"2m\", more than zero", what, s)
		return 0
	}
	return t
}

// withDefaults fills what a container leaves out: its name (the
// sub-service's or service's, given), host networking, and the readiness
// check (its first TCP port, if it has one) and timeout. It reports what
// only the whole container shows, once merged.
func (d *decoder) withDefaults(c *Container, name string) {
	if c.Name == "" {
		c.Name = name
	}
	if !c.Runs() {
		for k := range c.keys {
			if k != "name" { // more than a name: it was meant to run
				d.errs.At(c.Pos, "container %s: no image or archive, expected image: name:tag (write container: NAME alone to name a container your deploy tasks start)", c.Name)
				break
			}
		}
		return
	}
	if c.NetworkMode == "" {
		c.NetworkMode = "host"
	}
	if c.NetworkMode == "none" && (len(c.Ports) > 0 || c.Readiness.Port != 0) {
		d.errs.At(c.At("network_mode"), "container %s: network_mode none has no network, so no ports and no readiness port: remove them, or check readiness with a command", c.Name)
	}
	for _, p := range c.Ports {
		if c.NetworkMode == "host" && p.Host != p.Container {
			d.errs.At(p.Pos, "container %s: port %d:%d maps a port, but under host networking the container's ports are the host's: write %d (or network_mode: bridge)", c.Name, p.Host, p.Container, p.Container)
		}
	}
	if c.Readiness.Port == 0 && len(c.Readiness.Command) == 0 && !c.Readiness.Has("port") {
		for _, p := range c.Ports {
			if p.Protocol == "tcp" {
				c.Readiness.Port = p.Host
				break
			}
		}
	}
	if c.Readiness.Timeout == 0 {
		c.Readiness.Timeout = DefaultReadinessTimeout
	}
}

// merged returns base with what over writes put over it (over's env
// added to base's), for a sub-service's container under its service's.
func merged(base, over *Container) *Container {
	switch {
	case base == nil:
		return over.clone()
	case over == nil:
		return base.clone()
	}
	out := base.clone()
	for k, p := range over.keys {
		out.keys[k] = p
	}
	out.Pos = over.Pos
	set := func(key string, f func()) {
		if over.Has(key) {
			f()
		}
	}
	set("name", func() { out.Name = over.Name })
	set("image", func() { out.Image = over.Image })
	set("archive", func() { out.Archive = over.Archive })
	set("command", func() { out.Command = over.Command })
	set("args", func() { out.Args = over.Args })
	set("ports", func() { out.Ports = over.Ports })
	set("volumes", func() { out.Volumes = over.Volumes })
	set("network_mode", func() { out.NetworkMode = over.NetworkMode })
	set("readiness", func() { out.Readiness = over.Readiness })
	if len(over.Env) > 0 {
		out.Env = maps.Clone(base.Env)
		if out.Env == nil {
			out.Env = map[string]any{}
		}
		maps.Copy(out.Env, over.Env)
	}
	return out
}

func (c *Container) clone() *Container {
	if c == nil {
		return nil
	}
	out := *c
	out.keys = maps.Clone(c.keys)
	if out.keys == nil {
		out.keys = map[string]Pos{}
	}
	return &out
}
