package static

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/e2c-dev/e2c/engine/plan"
	"github.com/e2c-dev/e2c/engine/transport"
	"github.com/e2c-dev/e2c/providers"
)

// TestPick: a resize takes unused hosts by the same hints as Reserve,
// those released before last, and says what is missing.
func TestPick(t *testing.T) {
	c, err := parseConfig(testbed(t, map[string]any{"hosts": pis()}))
	if err != nil {
		t.Fatal(err)
	}
	used := []bool{false, true, false, false}  // picol-1 is kept
	later := []bool{false, false, true, false} // picol-2 was released
	for _, tc := range []struct {
		name      string
		instances []plan.Instance
		kept      []int
		want      [][]string
		err       string
	}{
		{"released last", []plan.Instance{inst("w", 3, "worker")}, []int{1}, [][]string{{"10.188.181.111", "picol-2"}}, ""},
		{"servers", []plan.Instance{inst("w", 1, "", "picol-2")}, []int{0}, [][]string{{"picol-2"}}, ""},
		{"nothing to add", []plan.Instance{inst("w", 1, "worker")}, []int{1}, [][]string{nil}, ""},
		{"not enough", []plan.Instance{inst("w", 5, "worker")}, []int{1}, nil,
			`static: fog.w.1 needs 4 more host(s) from cluster "worker"; 2 are unused: 10.188.181.111, picol-2`},
		{"one unused", []plan.Instance{inst("w", 3, "master")}, []int{1}, nil, `static: fog.w.1 needs 2 more host(s) from cluster "master"; 1 is unused: picol-0`},
		{"none unused", []plan.Instance{inst("w", 2, "", "picol-1")}, []int{0}, nil, "needs 2 more host(s) from servers picol-1; none is unused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			picked, err := pick(c, tc.instances, tc.kept, used, later)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			var got [][]string
			for _, idx := range picked {
				if len(idx) == 0 {
					idx = []int{} // names lists every host for nil
				}
				got = append(got, names(c.hosts, idx))
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("picked %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestResizeSSH grows and shrinks a reservation of real hosts: new hosts
// pass the preflight, every held host's /etc/hosts lists the held hosts,
// released hosts lose their block, a host taken again gets a new name,
// and asking for more than is unused changes nothing.
func TestResizeSSH(t *testing.T) {
	lab := newLab(t)
	p := New()
	ctx := context.Background()
	check := transport.NewPool(transport.PoolOptions{})
	defer check.Close()
	hosts := []any{labHost(lab, 0), labHost(lab, 1), labHost(lab, 2)}
	req := request(t, lab, "exp-resize", map[string]any{"etc_hosts": true, "hosts": hosts}, inst("w", 1, ""))
	r, err := p.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Release(ctx, r, io.Discard) })
	resize := func(quantity int, keep ...providers.Host) error {
		req.Instances = []plan.Instance{inst("w", quantity, "")}
		return p.(providers.Resizer).Resize(ctx, r, req, [][]providers.Host{keep})
	}
	block := func(i int) string {
		out := run(t, check, lab, i, "cat /etc/hosts")
		if b := strings.Index(out, "# BEGIN e2c exp-resize\n"); b >= 0 {
			return out[b:]
		}
		return ""
	}
	want := func(names ...string) string {
		b := "# BEGIN e2c exp-resize\n"
		for _, n := range names {
			b += lab.Hosts()[strings.Index("abc", n[len(n)-1:])].Address4.String() + " h-" + n + "\n"
		}
		return b + "# END e2c exp-resize\n"
	}
	a := r.Hosts[0][0]
	if err := resize(3, a); err != nil {
		t.Fatal(err)
	}
	if got := hostNames(r); !reflect.DeepEqual(got, []string{"h-a", "h-b", "h-c"}) || r.Hosts[0][0] != a {
		t.Fatalf("hosts %v", got)
	}
	for i := range 3 {
		if got := block(i); got != want("a", "b", "c") {
			t.Errorf("host %d block:\n%s", i, got)
		}
	}

	// Down to c alone; then two: the released a comes back as h-a-2.
	if err := resize(1, r.Hosts[0][2]); err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"", "", want("c")} {
		if got := block(i); got != w {
			t.Errorf("host %d block after shrinking:\n%s\nwant\n%s", i, got, w)
		}
	}
	if err := resize(2, r.Hosts[0]...); err != nil {
		t.Fatal(err)
	}
	if got := hostNames(r); !reflect.DeepEqual(got, []string{"h-c", "h-a-2"}) {
		t.Errorf("hosts %v", got)
	}
	before, _ := json.Marshal(r)
	err = resize(5, r.Hosts[0]...)
	if err == nil || !strings.Contains(err.Error(), "static: fog.w.1 needs 3 more host(s) from any host; 1 is unused: h-b") {
		t.Errorf("too many: %v", err)
	}
	if now, _ := json.Marshal(r); string(now) != string(before) {
		t.Errorf("a refused resize changed the reservation: %s", now)
	}

	// Released from its saved state: no block is left.
	var saved providers.Reservation
	json.Unmarshal(before, &saved)
	if err := p.Release(ctx, &saved, io.Discard); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := block(i); got != "" {
			t.Errorf("host %d keeps its block:\n%s", i, got)
		}
	}
}

func hostNames(r *providers.Reservation) []string {
	var out []string
	for _, hs := range r.Hosts {
		for _, h := range hs {
			out = append(out, h.Name)
		}
	}
	return out
}
