package containers

import "testing"

func TestParseDF(t *testing.T) {
	const header = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n"
	for _, tc := range []struct {
		name, out string
		want      int64 // -1: an error
	}{
		{"one line", header + "/dev/sda1         30297152 9876543  18859176      35% /\n", 18859176},
		{"tmpfs, no trailing newline", header + "tmpfs 65536 0 65536 0% /var/tmp/lab/hosts/small", 65536},
		{"spaces in the mount point", header + "/dev/sdb1 1000 400 600 40% /mnt/my disk 50% full\n", 600},
		{"spaces in the name", header + "my fs 1000 400 600 40% /mnt\n", 600},
		{"full", header + "overlay 1000 1000 0 100% /var/lib/docker\n", 0},
		{"capacity unknown", header + "none 0 0 0 - /proc\n", 0},
		{"header only", header, -1},
		{"not POSIX output", "Filesystem Size Used Avail Use% Mounted on\n/dev/sda1 29G 9.5G 18G 35% /\n", -1},
		{"no numbers", header + "garbage here 50% /\n", -1},
		{"empty", "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDF(tc.out)
			if tc.want < 0 {
				if err == nil {
					t.Fatalf("got %d, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
