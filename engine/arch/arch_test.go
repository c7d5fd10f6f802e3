package arch

import "testing"

func TestOf(t *testing.T) {
	for in, want := range map[string]string{
		"x86_64": "amd64", "amd64": "amd64", "x86-64": "amd64",
		"aarch64": "arm64", "arm64": "arm64", "armv8": "arm64",
		"armv6l": "arm", "armv7l": "arm", "armv8l": "arm", "armhf": "arm", "arm": "arm",
		"i686": "386", "riscv64": "riscv64", "s390x": "s390x",
	} {
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %q, want %q", in, got, want)
		}
	}
}
