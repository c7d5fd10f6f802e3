// Package builtin is the set of providers e2c ships with.
package builtin

import (
	"github.com/e2c-dev/e2c/providers"
	"github.com/e2c-dev/e2c/providers/g5k"
	"github.com/e2c-dev/e2c/providers/local"
	"github.com/e2c-dev/e2c/providers/netns"
	"github.com/e2c-dev/e2c/providers/static"
)

// Set returns a new set of e2c's providers, g5k on the live platform.
func Set() providers.Set {
	return providers.Set{
		"local":  local.New(),
		"netns":  netns.New(),
		"static": static.New(),
		"g5k":    &g5k.Provider{},
	}
}
