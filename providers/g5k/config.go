package g5k

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/e2c-dev/e2c/providers"
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

// loadCredentials reads the credentials. Inside Grid'5000 the file may be
// missing: the API identifies the caller. Outside it must exist: unlike
// python-grid5000, e2c does not fall back to anonymous calls that fail later.
func loadCredentials(inside bool) (credentials, error) {
	c := credentials{URI: DefaultAPI, Timeout: time.Minute}
	file := CredentialsFile()
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
		c.URI = raw.URI
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
}

var settingKeys = []string{"job_name", "walltime", "cluster", "queue", "reservation", "job_type", "env_name",
	"key_name", "firewall_rules", "monitor", "ipv6", "project", "gateway"}

func parseConfig(req providers.Request) (config, error) {
	c := config{JobName: req.Experiment, Walltime: req.Walltime, Cluster: req.Cluster, Gateway: "auto"}
	if c.JobName == "" {
		c.JobName = "E2Clab"
	}
	if c.Walltime == 0 {
		c.Walltime = time.Hour
	}
	for k, v := range req.Settings {
		var err error
		switch k {
		case "job_name":
			c.JobName, err = str(k, v)
		case "walltime":
			var s string
			if s, err = str(k, v); err == nil {
				c.Walltime, err = time.ParseDuration(s)
			}
		case "cluster":
			c.Cluster, err = str(k, v)
		case "queue":
			c.Queue, err = str(k, v)
		case "reservation":
			c.Reservation, err = str(k, v)
		case "job_type":
			switch t := v.(type) {
			case []string:
				c.Types = t
			case []any:
				for _, x := range t {
					c.Types = append(c.Types, fmt.Sprint(x))
				}
			default:
				err = fmt.Errorf("found %v, expected a list such as [deploy]", v)
			}
		case "env_name":
			c.EnvName, err = str(k, v)
		case "key_name":
			c.KeyName, err = str(k, v)
		case "project":
			c.Project, err = str(k, v)
		case "ipv6":
			c.IPv6, _ = v.(bool)
		case "gateway":
			c.Gateway, err = str(k, v)
			if err == nil && !slices.Contains([]string{"auto", "always", "never"}, c.Gateway) {
				err = fmt.Errorf("found %q, expected auto, always or never", c.Gateway)
			}
		case "firewall_rules", "monitor":
			return c, fmt.Errorf("setting %s is not supported yet", k)
		default:
			return c, fmt.Errorf("unknown setting %q; valid settings: %s", k, strings.Join(settingKeys, ", "))
		}
		if err != nil {
			return c, fmt.Errorf("setting %s: %w", k, err)
		}
	}
	if c.EnvName != "" && !slices.Contains(c.Types, "deploy") {
		// kadeploy refuses nodes of a job without the deploy type.
		c.Types = append(c.Types, "deploy")
	}
	return c, nil
}

func str(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("found %v, expected a string", v)
	}
	return s, nil
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
