package dockerinstall

import (
	"strings"
	"testing"
)

// Real os-release files, as their systems ship them.
const (
	debian12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`
	ubuntu2204 = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
`
	raspbian11 = `PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"
NAME="Raspbian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=raspbian
ID_LIKE=debian
HOME_URL="http://www.raspbian.org/"
`
	alpine319 = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
`
	fedora39 = `NAME="Fedora Linux"
VERSION="39 (Server Edition)"
ID=fedora
VERSION_ID=39
PRETTY_NAME="Fedora Linux 39 (Server Edition)"
CPE_NAME="cpe:/o:fedoraproject:fedora:39"
VARIANT_ID=server
`
)

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		osRelease string
		f         facts
		want      []string // the steps' scripts, "sudo " before those run through sudo
		err       string
	}{
		{name: "Debian 12 as root without systemd", osRelease: debian12, f: facts{root: true, sudo: true},
			want: []string{aptGet + "update", aptGet + "install -y docker.io", "service docker start"}},
		{name: "Ubuntu 22.04 with sudo and systemd", osRelease: ubuntu2204, f: facts{sudo: true, systemd: true},
			want: []string{"sudo " + aptGet + "update", "sudo " + aptGet + "install -y docker.io", "sudo systemctl enable --now docker"}},
		{name: "Raspberry Pi OS with dockerd installed but stopped", osRelease: raspbian11, f: facts{root: true, sudo: true, systemd: true, dockerd: true},
			want: []string{"systemctl enable --now docker"}},
		{name: "sudo needs a password", osRelease: ubuntu2204, f: facts{},
			err: "needs root or passwordless sudo, and `sudo -n true` fails for this user (it needs a password)"},
		{name: "Alpine", osRelease: alpine319, f: facts{root: true, sudo: true},
			err: "runs Alpine Linux v3.19 (ID alpine): e2c installs Docker only on Debian and Ubuntu; install Docker Engine there by hand"},
		{name: "Fedora", osRelease: fedora39, f: facts{root: true, sudo: true, systemd: true},
			err: "runs Fedora Linux 39 (Server Edition) (ID fedora)"},
		{name: "no os-release", f: facts{root: true, sudo: true}, err: "(ID unknown: no /etc/os-release)"},
		{name: "the platform's command first, as the login user", osRelease: fedora39, f: facts{platform: true},
			want: []string{"'/grid5000/code/bin/g5k-setup-docker' -t"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.osRelease = parseOSRelease(tc.osRelease)
			steps, err := plan(f, "/grid5000/code/bin/g5k-setup-docker", []string{"-t"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range steps {
				line := s.cmd.Script
				if s.cmd.Sudo {
					line = "sudo " + line
				}
				if strings.HasPrefix(s.cmd.Script, "apt-get") && s.cmd.Env["DEBIAN_FRONTEND"] != "noninteractive" {
					t.Errorf("%s: apt may ask questions: env %v", s.what, s.cmd.Env)
				}
				got = append(got, line)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	for _, tc := range []struct {
		text, id, like, pretty string
		debian                 bool
	}{
		{debian12, "debian", "", "Debian GNU/Linux 12 (bookworm)", true},
		{ubuntu2204, "ubuntu", "debian", "Ubuntu 22.04.4 LTS", true},
		{raspbian11, "raspbian", "debian", "Raspbian GNU/Linux 11 (bullseye)", true},
		{alpine319, "alpine", "", "Alpine Linux v3.19", false},
		{fedora39, "fedora", "", "Fedora Linux 39 (Server Edition)", false},
		{`ID='linuxmint'` + "\n" + `ID_LIKE="ubuntu debian"` + "\n# a comment\nPRETTY_NAME=\"Linux \\\"Mint\\\" 21\"\n", "linuxmint", "ubuntu debian", `Linux "Mint" 21`, true},
	} {
		kv := parseOSRelease(tc.text)
		if kv["ID"] != tc.id || kv["ID_LIKE"] != tc.like || kv["PRETTY_NAME"] != tc.pretty || debianLike(kv) != tc.debian {
			t.Errorf("%s: ID %q ID_LIKE %q PRETTY_NAME %q debian-like %v", tc.id, kv["ID"], kv["ID_LIKE"], kv["PRETTY_NAME"], debianLike(kv))
		}
	}
}

func TestLastLines(t *testing.T) {
	var b lockedBuffer
	if b.last(3) != "" {
		t.Errorf("empty output: %q", b.last(3))
	}
	for i := range 5 {
		b.Write([]byte(strings.Repeat("x", i) + "\n"))
	}
	if got, want := b.last(2), "\n    | xxx\n    | xxxx"; got != want {
		t.Errorf("last 2 lines %q, want %q", got, want)
	}
	b.Write([]byte(strings.Repeat("y", 100<<10)))
	if b.b.Len() != 64<<10 {
		t.Errorf("kept %d bytes", b.b.Len())
	}
}
