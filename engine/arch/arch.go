// Package arch names machine architectures one way, as Go (GOARCH) and
// OCI images do, whatever reports them: uname -m on a host, Docker's
// Info, an image's config.
package arch

import "strings"

// Of names the architecture machine as Go does: x86_64 is amd64, aarch64
// arm64, and every 32-bit ARM (armv6l, armv7l, armhf, and armv8l, a 64-bit
// CPU running 32-bit code) arm. A name it does not know is returned as
// it is.
func Of(machine string) string {
	switch m := strings.ToLower(machine); m {
	case "x86_64", "x86-64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "armv8":
		return "arm64"
	case "i386", "i486", "i586", "i686", "386":
		return "386"
	case "armhf", "armel", "arm":
		return "arm"
	default:
		if strings.HasPrefix(m, "armv") {
			return "arm"
		}
		return machine
	}
}
