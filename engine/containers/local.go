package containers

import (
	"context"

	"github.com/moby/moby/client"
)

// Local reaches the Docker Engine of this machine, where e2c gets the
// images it sends to hosts: the one DOCKER_HOST names (and DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH, DOCKER_API_VERSION configure), else the default socket,
// as the docker CLI does. Its Host serves images only (Image, Pull, Save):
// it has no SSH connection for readiness checks or Free.
func Local(ctx context.Context) (*Host, *Daemon, error) {
	h := &Host{name: "this machine"}
	d, err := h.open(ctx, client.FromEnv)
	if err != nil {
		return nil, nil, err
	}
	return h, d, nil
}
