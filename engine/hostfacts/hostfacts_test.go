package hostfacts

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/e2c-dev/e2c/engine/arch"
	"github.com/e2c-dev/e2c/engine/transport"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want Facts
	}{
		{"a board", "arch=armv7l\nkernel=6.1.21-v7+\ncpu= ARMv7 Processor rev 4 (v7l)\ncpus=4\nmem=948304\nmem_free=512000\nroot_free=1000\ntmp_free=2000\nuid=1000\nsudo=no\n",
			Facts{Arch: "armv7l", Kernel: "6.1.21-v7+", CPU: "ARMv7 Processor rev 4 (v7l)", CPUs: 4, MemKB: 948304, MemFreeKB: 512000, RootFreeKB: 1000, TmpFreeKB: 2000}},
		{"root, nothing else known", "arch=x86_64\ncpus=\nuid=0\nsudo=yes\n", Facts{Arch: "x86_64", Root: true, Sudo: true}},
		{"noise", "motd line\n=\nmem=lots\n", Facts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.out); got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestLearn runs the script on this machine through the local transport.
func TestLearn(t *testing.T) {
	f, err := Learn(context.Background(), transport.NewLocal(t.TempDir()), Script+Privileges)
	if err != nil {
		t.Fatal(err)
	}
	if arch.Of(f.Arch) != runtime.GOARCH || f.Kernel == "" || f.CPUs != runtime.NumCPU() || f.MemKB <= 0 || f.MemFreeKB <= 0 || f.RootFreeKB <= 0 || f.TmpFreeKB <= 0 {
		t.Errorf("facts of this machine: %+v", f)
	}
	if f.Root != (os.Getuid() == 0) || (f.Root && !f.Sudo) {
		t.Errorf("privileges: root %v, sudo %v, uid %d", f.Root, f.Sudo, os.Getuid())
	}
}
