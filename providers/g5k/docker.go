package g5k

import (
	"cmp"
	"context"
	"io"

	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/dockerinstall"
	"github.com/e2c-dev/e2c/schema"
)

// defaultSetupDocker is where Grid'5000's own Docker setup script is on the nodes
// of the standard environment; deployed images lack it.
const defaultSetupDocker = "/grid5000/code/bin/g5k-setup-docker"

var _ providers.DockerProvider = (*Provider)(nil)

// ProvideDocker, with docker: install, runs g5k-setup-docker -t (Docker's
// data in /tmp, where the disk is) as the login user on the nodes whose
// engine does not answer, and on deployed nodes without it (root on a
// Debian image) installs Debian's docker.io. The nodes go back to the
// platform with the job, Docker and all.
func (p *Provider) ProvideDocker(ctx context.Context, r *providers.Reservation, hosts []string, tb *schema.Testbed, out io.Writer) error {
	cfg, err := parseConfig(providers.Request{Settings: tb})
	if err != nil {
		return err
	}
	hs, err := dockerinstall.Hosts(r, hosts)
	if err != nil {
		return err
	}
	return dockerinstall.Provide(ctx, hs, dockerinstall.Options{
		Install:  cfg.Docker == dockerinstall.Install,
		Platform: cmp.Or(p.SetupDocker, defaultSetupDocker), Args: []string{"-t"},
		Out: out,
	})
}
