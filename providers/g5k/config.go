package g5k

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // reservations are Europe/Paris time on any host

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/dockerinstall"
	"github.com/e2c-dev/e2c/schema"
	"github.com/e2c-dev/e2c/schema/suggest"
	"gopkg.in/yaml.v3"
)

// DefaultAPI is the API of the live platform.
const DefaultAPI = "https://api.grid5000.fr/stable"

// Gateway is the SSH access machine from outside Grid'5000.
const Gateway = "access.grid5000.fr"

// credentials are what ~/.python-grid5000.yaml holds, as the existing
// Python tools read it.
type credentials struct {
	URI      string
	Username string
	Password string
	CAFile   string // verify_ssl: a CA bundle path
	Insecure bool   // verify_ssl: false
	Timeout  time.Duration
}

// CredentialsFile is where the credentials are read; E2C_G5K_CREDENTIALS
// names another file.
func CredentialsFile() string {
	if f := os.Getenv("E2C_G5K_CREDENTIALS"); f != "" {
		return f
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".python-grid5000.yaml")
}

// loadCredentials reads the credentials file. Inside Grid'5000 the file may be
// missing: the API identifies the caller. Outside it must exist: unlike
// python-grid5000, e2c does not fall back to anonymous calls that fail later.
func loadCredentials(file string, inside bool) (credentials, error) {
	c := credentials{URI: DefaultAPI, Timeout: time.Minute}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && inside {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("credentials: %w; outside Grid'5000, write it with \"username: LOGIN\" and \"password: PASSWORD\" (mode 600)", err)
	}
	var raw struct {
		URI       string `yaml:"uri"`
		Username  string `yaml:"username"`
		Password  string `yaml:"password"`
		VerifySSL any    `yaml:"verify_ssl"`
		Timeout   *int   `yaml:"timeout"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	if raw.URI != "" {
		c.URI = strings.TrimRight(raw.URI, "/") // one API, one spelling: the record of holds compares it
	}
	c.Username, c.Password = raw.Username, raw.Password
	switch v := raw.VerifySSL.(type) {
	case nil:
	case bool:
		c.Insecure = !v
	case string:
		c.CAFile = v
	default:
		return c, fmt.Errorf("%s: verify_ssl: found %v, expected true, false or a CA bundle path", file, v)
	}
	if raw.Timeout != nil {
		// A bound is needed: a lost submission is looked for among the
		// jobs submitted before the client gave up (findSubmitted).
		if *raw.Timeout <= 0 {
			return c, fmt.Errorf("%s: timeout: found %d, expected a positive number of seconds", file, *raw.Timeout)
		}
		c.Timeout = time.Duration(*raw.Timeout) * time.Second
	}
	if c.Username == "" && !inside {
		return c, fmt.Errorf("%s has no username: outside Grid'5000 the API needs username and password", file)
	}
	return c, nil
}

// inside reports whether e2c runs on a Grid'5000 machine (frontend, node),
// where the API needs no credentials and nodes are reached directly.
func inside() bool {
	h, err := os.Hostname()
	return err == nil && strings.HasSuffix(h, ".grid5000.fr")
}

// config is the g5k block of layers_services.yaml and the request's shared
// values.
type config struct {
	JobName     string
	Walltime    time.Duration
	Cluster     string
	Queue       string
	Reservation string
	Types       []string
	EnvName     string
	KeyName     string // public key file, absolute or in ~/.ssh
	Project     string
	IPv6        bool
	Gateway     string // auto, always, never
	Docker      string // the docker key: install, or use ("" when absent)
}

// block is the g5k block of layers_services.yaml, as written.
type block struct {
	schema.Node
	JobName       string          `yaml:"job_name"`
	Walltime      schema.Walltime `yaml:"walltime"`
	Cluster       string          `yaml:"cluster"`
	Queue         string          `yaml:"queue"`
	Reservation   string          `yaml:"reservation"`
	JobType       []string        `yaml:"job_type"`
	EnvName       string          `yaml:"env_name"`
	KeyName       string          `yaml:"key_name"`
	FirewallRules any             `yaml:"firewall_rules"`
	Monitor       any             `yaml:"monitor"`
	IPv6          bool            `yaml:"ipv6"`
	Project       string          `yaml:"project"`
	Gateway       string          `yaml:"gateway"`
	Docker        string          `yaml:"docker"`
}

var (
	queues   = []string{"default", "production", "besteffort", "testing"}
	gateways = []string{"auto", "always", "never"}
)

// parseConfig reads the request's block over its shared values, reporting
// every problem of the block at its position.
func parseConfig(req providers.Request) (config, error) {
	c := config{JobName: req.Experiment, Walltime: req.Walltime, Cluster: req.Cluster, Gateway: "auto"}
	if c.Walltime == 0 {
		c.Walltime = time.Hour
	}
	var b block
	var errs schema.Errors
	if req.Settings != nil {
		errs.Add(req.Settings.Decode(&b))
	}
	c.JobName = cmp.Or(b.JobName, c.JobName)
	if b.Walltime != 0 {
		c.Walltime = time.Duration(b.Walltime)
	}
	c.Cluster = cmp.Or(b.Cluster, c.Cluster)
	c.Queue, c.Reservation, c.Types, c.EnvName, c.KeyName, c.Project, c.IPv6 = b.Queue, b.Reservation, b.JobType, b.EnvName, b.KeyName, b.Project, b.IPv6
	c.Gateway = cmp.Or(b.Gateway, c.Gateway)
	c.Docker = b.Docker
	errs.Add(dockerinstall.Check(b.Node, "g5k", b.Docker))
	if c.Queue != "" && !slices.Contains(queues, c.Queue) {
		errs.At(b.At("queue"), "g5k.queue: unknown queue %q%s; expected one of: %s", c.Queue, suggest.Hint(c.Queue, queues), strings.Join(queues, ", "))
	}
	if _, err := c.reservationAt(time.Time{}); err != nil {
		errs.At(b.At("reservation"), "g5k.reservation: %v", err)
	}
	if !slices.Contains(gateways, c.Gateway) {
		errs.At(b.At("gateway"), "g5k.gateway: found %q, expected auto, always or never", c.Gateway)
	}
	for _, k := range []string{"firewall_rules", "monitor"} {
		if b.Has(k) {
			errs.At(b.At(k), "g5k.%s: not supported by e2c yet; remove it", k)
		}
	}
	if c.EnvName != "" && !slices.Contains(c.Types, "deploy") {
		// kadeploy refuses nodes of a job without the deploy type.
		c.Types = append(c.Types, "deploy")
	}
	return c, errs.Err()
}

// reservationLayouts are the reservation forms e2c takes, Paris time: the
// API reads more (it takes anything Ruby's Time.parse does), but silently
// drops what it cannot read, "now" included, and submits a plain job.
var reservationLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "15:04:05", "15:04"}

// paris is the zone of reservations and of the API's times.
var paris = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err) // time/tzdata is linked in
	}
	return l
}()

// reservationAt is the reservation as the API reads it best,
// "YYYY-MM-DD hh:mm:ss" in Paris time, "" for none; a time of day is today
// in Paris, as for the API. With a zero now, only the form is checked.
func (c config) reservationAt(now time.Time) (string, error) {
	if c.Reservation == "" {
		return "", nil
	}
	for _, layout := range reservationLayouts {
		t, err := time.ParseInLocation(layout, c.Reservation, paris)
		if err != nil {
			continue
		}
		if now.IsZero() {
			return "", nil
		}
		if t.Year() == 0 { // a time of day
			y, m, d := now.In(paris).Date()
			t = time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, paris)
		}
		if t.Before(now) {
			return "", fmt.Errorf("g5k.reservation %q is %s, which has passed", c.Reservation, t.Format(clockLayout))
		}
		return t.Format(time.DateTime), nil
	}
	if c.Reservation == "now" {
		return "", errors.New(`found "now", which the API does not read as a date (it would submit a plain job); omit reservation to start as soon as possible`)
	}
	return "", fmt.Errorf("found %q, expected a date such as \"2026-12-01 19:00:00\" or \"2026-12-01 19:00\", or a time today such as \"19:00\" (Paris time)", c.Reservation)
}

// clockLayout shows a time with its zone.
const clockLayout = "2006-01-02 15:04:05 MST"

// clock shows a Unix time of the API: in Paris time when the user wrote
// one (a reservation), else in local time; with its zone either way.
func (c config) clock(unix int64) string {
	t := time.Unix(unix, 0)
	if c.Reservation != "" {
		t = t.In(paris)
	}
	return t.Format(clockLayout)
}

// CheckSettings reads the block without calling the API: the sites of the
// clusters are only known from the reference API, at reserve.
func (p *Provider) CheckSettings(tb *schema.Testbed, _ []plan.Instance) error {
	_, err := parseConfig(providers.Request{Settings: tb})
	return err
}

// publicKey returns the public key to install on deployed nodes and the
// private key that goes with it.
func (c config) publicKey() (pub, private string, err error) {
	home, _ := os.UserHomeDir()
	candidates := []string{"id_ed25519.pub", "id_rsa.pub", "id_ecdsa.pub"}
	if c.KeyName != "" {
		candidates = []string{c.KeyName}
	}
	for _, name := range candidates {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(home, ".ssh", name)
		}
		data, err := os.ReadFile(path)
		if err == nil {
			return strings.TrimSpace(string(data)), strings.TrimSuffix(path, ".pub"), nil
		}
		if c.KeyName != "" {
			return "", "", fmt.Errorf("key_name: %w", err)
		}
	}
	return "", "", fmt.Errorf("no public key in ~/.ssh (%s) to install on the deployed nodes: set key_name", strings.Join(candidates, ", "))
}
