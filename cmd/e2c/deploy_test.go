package main

import (
	"strings"
	"testing"
)

// TestDeployFlagsRefused: values that cannot mean anything are refused
// before anything is read or reserved.
func TestDeployFlagsRefused(t *testing.T) {
	dir, artifacts := t.TempDir(), t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--forks", "0"}, "--forks 0: expected at least 1"},
		{[]string{"--forks", "-1"}, "--forks -1: expected at least 1"},
		{[]string{"--network", "some"}, `--network "some": expected full, rates-only or off`},
	} {
		_, err := run(t, append([]string{"deploy", dir, artifacts}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
